// test_fuzz_found.cpp: one regression test per bug the fuzz targets (fuzz/) led to, and a
// replay of the committed fuzz corpus (fuzz/corpus/), so the normal test build, without
// clang or sanitizers, still checks that every input there is loaded or refused with the
// documented exception.
//   1. A checkpoint tensor with a zero dimension made parse_checkpoint memcpy to a null
//      pointer (UB; fuzz_checkpoint, UBSan, within the first thousand inputs).
//   2. A non-integer number where the config or header holds an integer (1e99 for
//      latent_dim, 1e300 for step) was converted with a plain cast (UB in nlohmann's get_to
//      and value(); found through the fuzz_checkpoint harness).
//   3. `mnistgan sample` built the model from the stored config without checking it, so a
//      negative width became a size_t-wrapped allocation of exabytes.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "../fuzz/fuzz_common.h"  // fuzz_config, fix_checkpoint_crc
#include "io/atomic_file.h"
#include "core/backend.h"
#include "model/model_checkpoint.h"
#include "core/config.h"
#include "eval/eval.h"
#include "io/idx.h"
#include "model/model.h"
#include "model/sample.h"
#include "test_paths.h"  // source_dir

namespace mnistgan {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(testpaths::source_dir()) / "fuzz" / "corpus";

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// --- 1 -----------------------------------------------------------------------------------
TEST(FuzzFound, CheckpointTensorWithZeroDimension) {
  Checkpoint ck;
  ck.header["step"] = 1;
  ck.tensors.push_back({"empty", {3, 0}, {}});
  ck.tensors.push_back({"after", {2}, {1.5f, -2.0f}});
  const Checkpoint back = parse_checkpoint(serialize_checkpoint(ck), "mem");
  ASSERT_EQ(back.tensors.size(), 2u);
  EXPECT_EQ(back.tensors[0].shape, (std::vector<int64_t>{3, 0}));
  EXPECT_TRUE(back.tensors[0].data.empty());
  EXPECT_EQ(back.tensors[1].data, (std::vector<float>{1.5f, -2.0f}));
}

// --- 2 -----------------------------------------------------------------------------------
TEST(FuzzFound, ConfigIntegerFieldsRefuseNonIntegers) {
  const nlohmann::json good = TrainConfig{};
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, nlohmann::json>>{{"latent_dim", 4e99},
                                                           {"latent_dim", 2.5},
                                                           {"latent_dim", 4294967296LL},
                                                           {"batch_size", "64"},
                                                           {"steps", -1e300},
                                                           {"hidden_g", {256, 1e99}},
                                                           {"hidden_d", 7},
                                                           {"seed", -1}}) {
    nlohmann::json j = good;
    j[key] = value;
    TrainConfig c;
    const std::string what = error_of([&] { from_json(j, c); });
    EXPECT_NE(what.find(key), std::string::npos) << key << " = " << value.dump() << ": " << what;
  }
  // The extremes that do fit still load.
  nlohmann::json j = good;
  j["seed"] = UINT64_MAX;
  j["steps"] = INT64_MAX;
  j["latent_dim"] = -4;  // in range for int; validate() is what refuses it
  TrainConfig c;
  from_json(j, c);
  EXPECT_EQ(c.seed, UINT64_MAX);
  EXPECT_EQ(c.steps, INT64_MAX);
  EXPECT_EQ(c.latent_dim, -4);
}

TEST(FuzzFound, HeaderIntRefusesNonIntegers) {
  nlohmann::json h = {{"step", 1e300}, {"big", 18446744073709551615ULL}, {"ok", 42}};
  EXPECT_EQ(header_int(h, "ok", -1, "f.ckpt"), 42);
  EXPECT_EQ(header_int(h, "absent", -1, "f.ckpt"), -1);
  for (const char* key : {"step", "big"}) {
    const std::string what = error_of([&] { header_int(h, key, 0, "f.ckpt"); });
    EXPECT_NE(what.find("f.ckpt"), std::string::npos) << what;
    EXPECT_NE(what.find(key), std::string::npos) << what;
  }
  EXPECT_NE(error_of([] { header_int(nlohmann::json(3), "G", 0, "f.ckpt"); }).find("f.ckpt"),
            std::string::npos);

  // restore_model reads the Adam step counts through it.
  std::unique_ptr<Backend> backend = make_cpu_backend();
  Gan gan(*backend, model_shape_of(fuzz_config(), 16), 2, 1);  // 4x4 images
  gan.init_params(1);
  Checkpoint ck;
  store_model(*backend, gan, ck);
  ck.header["adam_step"]["G"] = 1e300;
  const std::string what = error_of([&] { restore_model(*backend, gan, ck, "f.ckpt"); });
  EXPECT_NE(what.find("'G'"), std::string::npos) << what;
}

// --- 3 -----------------------------------------------------------------------------------
TEST(FuzzFound, SampleRefusesAnInvalidStoredConfig) {
  const fs::path dir =
      fs::temp_directory_path() /
      ("mnistgan_fuzz_found_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  fs::create_directories(dir);
  for (const auto& [key, value, expected] :
       std::vector<std::tuple<std::string, nlohmann::json, std::string>>{
           {"latent_dim", -4, "--latent-dim"},
           {"hidden_g", {8, -1}, "--hidden-g"},
           {"image_rows", 1e300, "image_rows"},
           {"image_cols", 0, "image size"}}) {
    Checkpoint ck;
    ck.header["step"] = 1;
    ck.header["config"] = TrainConfig{};
    if (key.rfind("image_", 0) == 0) {
      ck.header[key] = value;
    } else {
      ck.header["config"][key] = value;
    }
    const std::string path = (dir / "bad.ckpt").string();
    save_checkpoint(path, ck);
    SampleOptions options;
    options.checkpoint = path;
    options.out = (dir / "out.png").string();
    options.device = "cpu";
    const std::string what = error_of([&] { run_sample(options); });
    EXPECT_NE(what.find(path), std::string::npos) << key << ": " << what;
    EXPECT_NE(what.find(expected), std::string::npos) << key << ": " << what;
    EXPECT_FALSE(fs::exists(options.out));
    // `mnistgan eval` rebuilds the generator the same way and must refuse the same file
    // before it looks for its classifier.
    EvalOptions eval;
    eval.checkpoint = path;
    eval.classifier = (dir / "no_classifier.bin").string();
    eval.device = "cpu";
    const std::string eval_what = error_of([&] { run_eval(eval); });
    EXPECT_NE(eval_what.find(expected), std::string::npos) << "eval, " << key << ": " << eval_what;
  }
  fs::remove_all(dir);
}

// --- the committed corpus ----------------------------------------------------------------
std::vector<fs::path> corpus_files(const std::string& target) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(kCorpus / target))
    if (entry.is_regular_file()) files.push_back(entry.path());
  return files;
}

TEST(FuzzFound, IdxCorpusLoadsOrThrowsDataError) {
  for (const char* target : {"fuzz_idx_images", "fuzz_idx_labels"}) {
    const std::vector<fs::path> files = corpus_files(target);
    EXPECT_GE(files.size(), 4u) << target;
    for (const fs::path& file : files) {
      const std::string bytes = read_file(file.string(), size_t{1} << 20);
      const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
      const bool valid = file.filename().string().rfind("valid", 0) == 0;
      try {
        if (std::string(target) == "fuzz_idx_images") {
          parse_idx_images(data, bytes.size(), file.string());
        } else {
          parse_idx_labels(data, bytes.size(), file.string());
        }
        EXPECT_TRUE(valid) << file << " loaded";
      } catch (const DataError& e) {
        EXPECT_FALSE(valid) << file << ": " << e.what();
        EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
      }
    }
  }
}

TEST(FuzzFound, CheckpointCorpusParsesOrThrowsCheckpointError) {
  const std::vector<fs::path> files = corpus_files("fuzz_checkpoint");
  EXPECT_GE(files.size(), 5u);
  for (const fs::path& file : files) {
    std::string bytes = read_file(file.string(), size_t{1} << 20);
    const std::string name = file.filename().string();
    // As written: the valid seed loads, every broken one is refused by the loader itself.
    if (name == "valid.ckpt") {
      EXPECT_EQ(parse_checkpoint(bytes, name).header.value("step", 0), 2) << name;
    } else if (name.rfind("bad_", 0) == 0 && name != "bad_shape.ckpt") {
      EXPECT_THROW(parse_checkpoint(bytes, name), CheckpointError) << name;
    }
    fix_checkpoint_crc(bytes);  // as fuzz_checkpoint does, to reach the rest
    try {
      const Checkpoint ck = parse_checkpoint(bytes, file.string());
      if (ck.header.contains("config")) {
        TrainConfig c;
        from_json(ck.header.at("config"), c);
      }
      header_int(ck.header, "step", 0, file.string());
    } catch (const CheckpointError&) {
    } catch (const std::invalid_argument&) {
    }
  }
}

}  // namespace
}  // namespace mnistgan
