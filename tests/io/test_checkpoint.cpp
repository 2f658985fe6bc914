// test_checkpoint.cpp: the checkpoint format round-trips, and refuses truncated, corrupt,
// wrong-version and mis-shaped files with a message naming the file.
#include <gtest/gtest.h>
#include <zlib.h>  // crc32, to write a version-1 file

#include <algorithm>  // std::remove_if
#include <cstdint>
#include <cstring>
#include <string>

#include "model/model_checkpoint.h"
#include "core/json_integer.h"
#include "model/model.h"

namespace mnistgan {
namespace {

Checkpoint small_checkpoint() {
  Checkpoint ck;
  ck.header["step"] = 123;
  ck.header["seed"] = 7;
  ck.tensors.push_back({"a", {2, 3}, {1, 2, 3, 4, 5, 6}});
  ck.tensors.push_back({"b", {1}, {-0.5f}});
  return ck;
}

void expect_refused(const std::string& bytes, const std::string& expected_fragment) {
  try {
    parse_checkpoint(bytes, "some/file.ckpt");
    FAIL() << "accepted a bad checkpoint (expected: " << expected_fragment << ")";
  } catch (const CheckpointError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("some/file.ckpt"), std::string::npos) << what;
    EXPECT_NE(what.find(expected_fragment), std::string::npos) << what;
  }
}

TEST(Checkpoint, RoundTrip) {
  const Checkpoint ck = small_checkpoint();
  const Checkpoint back = parse_checkpoint(serialize_checkpoint(ck), "mem");
  EXPECT_EQ(back.header, ck.header);
  ASSERT_EQ(back.tensors.size(), 2u);
  EXPECT_EQ(back.tensors[0].name, "a");
  EXPECT_EQ(back.tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(back.tensors[0].data, ck.tensors[0].data);
  EXPECT_EQ(back.find("b")->data[0], -0.5f);
}

TEST(Checkpoint, RefusesEveryTruncation) {
  const std::string bytes = serialize_checkpoint(small_checkpoint());
  for (size_t len = 0; len < bytes.size(); ++len)
    EXPECT_THROW(parse_checkpoint(bytes.substr(0, len), "f"), CheckpointError) << len;
}

TEST(Checkpoint, RefusesCorruptionWrongMagicAndVersion) {
  std::string bytes = serialize_checkpoint(small_checkpoint());
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;
  expect_refused(flipped, "CRC");
  std::string magic = bytes;
  magic[0] = 'X';
  expect_refused(magic, "magic");
  std::string version = bytes;
  version[8] = 99;
  expect_refused(version, "version 99");
  expect_refused("", "magic");
}

TEST(Checkpoint, MissingFileNamesThePath) {
  try {
    load_checkpoint("/nonexistent/dir/x.ckpt");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/x.ckpt"), std::string::npos);
  }
}

TEST(Checkpoint, ModelRoundTripAndShapeMismatch) {
  auto backend = make_cpu_backend();
  ModelShape shape;
  shape.image_pixels = 16;
  shape.latent_dim = 4;
  shape.hidden_g = {8};
  shape.hidden_d = {8, 6};
  shape.mbd_kernels = 3;
  shape.mbd_dims = 2;
  Gan a(*backend, shape, 4), b(*backend, shape, 4);
  a.init_params(1);
  b.init_params(2);
  Checkpoint ck;
  store_model(*backend, a, ck);
  restore_model(*backend, b, parse_checkpoint(serialize_checkpoint(ck), "mem"), "mem");
  for (Network* n : {&a.generator(), &a.discriminator()}) {
    Network& m = n == &a.generator() ? b.generator() : b.discriminator();
    EXPECT_EQ(0, std::memcmp(n->params, m.params, n->size * sizeof(float)));
  }
  ModelShape other = shape;
  other.hidden_g = {9};
  Gan c(*backend, other, 4);
  try {
    restore_model(*backend, c, ck, "x.ckpt");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("G.fc0.weight"), std::string::npos) << e.what();
  }
}

// The EMA generator round-trips as "<name>@ema"; a version-1 file (before the EMA existed)
// still loads, with no EMA; a file claiming a version from the future is refused.
TEST(Checkpoint, EmaRoundTripsAndVersion1StillLoads) {
  auto backend = make_cpu_backend();
  ModelShape shape;
  shape.image_pixels = 16;
  shape.latent_dim = 4;
  shape.hidden_g = {8};
  shape.hidden_d = {8};
  shape.mbd_kernels = 2;
  shape.mbd_dims = 2;
  Gan a(*backend, shape, 4), b(*backend, shape, 4);
  a.init_params(1);
  a.enable_ema();
  const float shifted[3] = {0.25f, -0.5f, 0.75f};
  backend->to_backend(a.generator_ema(), shifted, sizeof(shifted));
  b.init_params(2);
  Checkpoint ck;
  store_model(*backend, a, ck);
  ASSERT_NE(ck.find("G.fc0.weight@ema"), nullptr);
  EXPECT_EQ(ck.find("D.fc0.weight@ema"), nullptr) << "only G is averaged";
  const std::string bytes = serialize_checkpoint(ck);
  EXPECT_TRUE(restore_model(*backend, b, parse_checkpoint(bytes, "mem"), "mem"));
  ASSERT_TRUE(b.has_ema());
  EXPECT_EQ(0,
            std::memcmp(a.generator_ema(), b.generator_ema(), a.generator().size * sizeof(float)));

  // Version 1: the same layout without "@ema" tensors; the CRC covers the version field.
  Checkpoint old = ck;
  old.tensors.erase(std::remove_if(old.tensors.begin(), old.tensors.end(),
                                   [](const CheckpointTensor& t) {
                                     return t.name.find("@ema") != std::string::npos;
                                   }),
                    old.tensors.end());
  std::string v1 = serialize_checkpoint(old);
  const auto with_version = [](std::string file, uint32_t version) {
    std::memcpy(&file[8], &version, 4);
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(file.data() + 8), file.size() - 12));
    std::memcpy(&file[file.size() - 4], &crc, 4);
    return file;
  };
  Gan c(*backend, shape, 4);
  c.init_params(3);
  EXPECT_FALSE(restore_model(*backend, c, parse_checkpoint(with_version(v1, 1), "v1.ckpt"), "v1"));
  EXPECT_FALSE(c.has_ema());
  EXPECT_EQ(0, std::memcmp(a.generator().params, c.generator().params,
                           a.generator().size * sizeof(float)));
  expect_refused(with_version(v1, kCheckpointVersion + 1), "not supported");
}

// One check of "a JSON integer that fits" (json_integer.h) behind both the config reader and
// the header fields; header_uint is the one a classifier's uint64 seed is read with.
TEST(Checkpoint, JsonIntegerAndHeaderUintHoldWhatFitsAndRefuseTheRest) {
  EXPECT_EQ(json_integer<int>(nlohmann::json(-4)), -4);
  EXPECT_EQ(json_integer<uint64_t>(nlohmann::json(UINT64_MAX)), UINT64_MAX);
  EXPECT_EQ(json_integer<int64_t>(nlohmann::json(INT64_MIN)), INT64_MIN);
  for (const nlohmann::json& bad : {nlohmann::json(1e300), nlohmann::json(2.0), nlohmann::json("7"),
                                    nlohmann::json(true), nlohmann::json(4294967296LL)})
    EXPECT_FALSE(json_integer<int>(bad).has_value()) << bad.dump();
  EXPECT_FALSE(json_integer<uint64_t>(nlohmann::json(-1)).has_value());
  EXPECT_FALSE(json_integer<int64_t>(nlohmann::json(UINT64_MAX)).has_value());

  const nlohmann::json h = {{"seed", UINT64_MAX}, {"neg", -1}, {"big", 1e300}};
  EXPECT_EQ(header_uint(h, "seed", 0, "c.ckpt"), UINT64_MAX);
  EXPECT_EQ(header_uint(h, "absent", 9, "c.ckpt"), 9u);
  for (const char* key : {"neg", "big"}) {
    try {
      header_uint(h, key, 0, "c.ckpt");
      ADD_FAILURE() << key << " accepted";
    } catch (const CheckpointError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("c.ckpt"), std::string::npos) << what;
      EXPECT_NE(what.find(key), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace mnistgan
