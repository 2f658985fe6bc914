// fuzz_checkpoint: the checkpoint loader and what `mnistgan train --resume` and
// `mnistgan sample` do with what it returns, on arbitrary bytes.
//
// Each input is parsed as it is and, when its CRC-32 trailer does not match, once more with
// the CRC fixed up: a mutated file almost never has a valid CRC, and without the fix-up the
// fuzzer would never get past that check into the header, tensor table and restore code.
// A parsed checkpoint then goes through
//   - the resume path: from_json of the stored config (as the shape-flag check does), then
//     TrainingState::restore into a small CPU model (weights, Adam state, step), so every
//     name and shape check of restore_model runs;
//   - the sample path: the model rebuilt from the stored config and image size, restored
//     without the optimiser state, when that model is small (a valid config can describe a
//     model of gigabytes, which is not a bug but is no use to allocate here).
// Contract under test: every bad input is refused with an exception that `mnistgan`'s main
// reports as a one-line error (CheckpointError, std::invalid_argument, nlohmann's
// json::exception); anything else, a crash, UB or a leak is a bug.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/backend.h"
#include "model/model_checkpoint.h"
#include "core/config.h"
#include "train/disk_space.h"  // model_parameter_count
#include "fuzz_common.h"
#include "model/model.h"
#include "model/sample.h"  // stored_model
#include "train/trainer.h"

namespace mnistgan {
namespace {

constexpr char kSource[] = "fuzz.ckpt";
// Largest model the sample path builds: 1M parameters (4 MB per buffer).
constexpr uint64_t kMaxSampleParams = uint64_t{1} << 20;

// Mirrors Run::go (host/train/trainer.cpp) on --resume: the stored config for the shape-flag
// check, the step for the disk-space estimate, then the restore.
void resume_path(TrainingState& state, const Checkpoint& ck) {
  TrainConfig stored = state.config();
  if (ck.header.contains("config")) from_json(ck.header.at("config"), stored);
  header_int(ck.header, "step", 0, kSource);
  state.restore(ck, kSource);
}

// Mirrors run_sample (host/model/sample.cpp) up to the restore.
void sample_path(Backend& backend, const Checkpoint& ck) {
  const StoredModel stored = stored_model(ck, kSource);  // sample's and eval's own checks
  const ModelShape shape = model_shape_of(stored.config, stored.rows * stored.cols);
  if (model_parameter_count(shape) > kMaxSampleParams) return;
  Gan gan(backend, shape, 1, 1);
  restore_model(backend, gan, ck, kSource, /*with_optimizer=*/false);
}

void run_one(Backend& backend, TrainingState& state, const std::string& bytes) {
  Checkpoint ck;
  try {
    ck = parse_checkpoint(bytes, kSource);
  } catch (const CheckpointError&) {
    return;
  }
  for (auto* path : {+[](Backend&, TrainingState&s, const Checkpoint&c) { resume_path(s, c); },
                     +[](Backend&b, TrainingState&, const Checkpoint&c) { sample_path(b, c); }}) {
    try {
      path(backend, state, ck);
    } catch (const CheckpointError&) {
    } catch (const std::invalid_argument&) {
    } catch (const nlohmann::json::exception&) {
    }
  }
}

}  // namespace
}  // namespace mnistgan

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnistgan;
  // Built once: a restore overwrites all of the state it reads.
  static std::unique_ptr<Backend> backend = make_cpu_backend();
  static TrainingState state(*backend, fuzz_config(), fuzz_images());

  std::string bytes(reinterpret_cast<const char*>(data), size);
  run_one(*backend, state, bytes);
  if (fix_checkpoint_crc(bytes)) run_one(*backend, state, bytes);
  return 0;
}
