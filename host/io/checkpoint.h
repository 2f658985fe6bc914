// checkpoint.h: the checkpoint file format (model/model_checkpoint.h maps a Gan onto it).
//
// Layout (little-endian):
//   "MNGANCKP"                       8-byte magic
//   u32 version                      kCheckpointVersion
//   u32 header_bytes, header         JSON: config, step, epoch, seed, RNG/shuffle state
//   u32 tensor_count
//   per tensor: u32 name_bytes, name, u32 rank, i64 dims[rank], f32 data[prod(dims)]
//   u32 crc32                        zlib CRC-32 of every byte after the magic
// Files are written to a temp file, fsynced and renamed, so a crash leaves either the old
// file or the new one. Loading checks every length against the bytes that are left before
// allocating, then the CRC, so a truncated or corrupt file is refused with a message.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>


namespace mnistgan {

// Version 2 added the EMA generator ("<name>@ema" tensors, header "ema"); version 1 files
// (no EMA) still load.
constexpr uint32_t kCheckpointVersion = 2;
constexpr uint32_t kCheckpointOldestVersion = 1;

class CheckpointError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct CheckpointTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

struct Checkpoint {
  nlohmann::json header;
  std::vector<CheckpointTensor> tensors;
  const CheckpointTensor* find(const std::string& name) const;
};

std::string serialize_checkpoint(const Checkpoint& checkpoint);
// `source` names the file in error messages.
Checkpoint parse_checkpoint(const std::string& bytes, const std::string& source);
void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);  // atomic
Checkpoint load_checkpoint(const std::string& path);

// object[key] as an integer, or `fallback` when the key is absent. Throws CheckpointError
// naming `source` and the key when object is not a JSON object or the value is not an
// integer that fits int64_t: nlohmann's value() would convert 1e300 to an integer, which
// is undefined behaviour (fuzz/fuzz_checkpoint.cpp feeds such headers).
int64_t header_int(const nlohmann::json& object, const std::string& key, int64_t fallback,
                   const std::string& source);
// The same for a field that holds an unsigned 64-bit value (a seed): refuses negatives.
uint64_t header_uint(const nlohmann::json& object, const std::string& key, uint64_t fallback,
                     const std::string& source);

}  // namespace mnistgan
