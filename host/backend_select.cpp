// backend_select.cpp: --device cpu|cuda|auto -> a Backend.
#include <stdexcept>

#include "backend.h"

namespace mnistgan {

std::unique_ptr<Backend> make_backend(const std::string& device, const BackendOptions& options) {
  if (device == "cpu") return make_cpu_backend();
  if (device == "cuda") {
    if (!cuda_backend_built())
      throw std::runtime_error(
          "--device cuda: this build has no CUDA backend (no CUDA compiler was found when it "
          "was configured); rebuild with the CUDA toolkit installed, or use --device cpu");
    return make_cuda_backend(options);
  }
  if (device == "auto") {
    if (cuda_backend_built() && cuda_unavailable_reason().empty())
      return make_cuda_backend(options);
    return make_cpu_backend();
  }
  throw std::invalid_argument("--device: unknown device '" + device +
                              "'; expected cpu, cuda or auto");
}

}  // namespace mnistgan
