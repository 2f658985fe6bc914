// cuda_stub.cpp: the CUDA entry points of a build configured without a CUDA compiler.
#include <stdexcept>

#include "core/backend.h"

namespace mnistgan {

bool cuda_backend_built() { return false; }

std::string cuda_unavailable_reason() {
  return "this build has no CUDA backend (configured without a CUDA compiler)";
}

std::unique_ptr<Backend> make_cuda_backend(int) {
  throw std::runtime_error(cuda_unavailable_reason() + "; use --device cpu");
}

}  // namespace mnistgan
