// backend_select.cpp: --device cpu|cuda|auto -> a Backend, and the one check of that flag.
#include <stdexcept>

#include "core/backend.h"

namespace mnistgan {

void validate_device_flag(const std::string& device) {
  if (device != "cpu" && device != "cuda" && device != "auto")
    throw std::invalid_argument("--device: unknown device '" + device +
                                "'; expected cpu, cuda or auto");
}

std::string resolve_device(const std::string& device) {
  validate_device_flag(device);
  if (device == "cpu") return "cpu";
  if (!cuda_backend_built()) {
    if (device == "auto") return "cpu";
    throw std::runtime_error(
        "--device cuda: this build has no CUDA backend (no CUDA compiler was found when it "
        "was configured); rebuild with the CUDA toolkit installed, or use --device cpu");
  }
  const std::string why = cuda_unavailable_reason();
  if (device == "auto") return why.empty() ? "cuda" : "cpu";
  if (!why.empty()) throw std::runtime_error("--device cuda: " + why + "; use --device cpu");
  return "cuda";
}

std::unique_ptr<Backend> make_backend(const std::string& device) {
  return resolve_device(device) == "cuda" ? make_cuda_backend() : make_cpu_backend();
}

}  // namespace mnistgan
