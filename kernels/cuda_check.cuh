// cuda_check.cuh: the one error-checking family for CUDA, cuBLAS and cuDNN calls.
//
//   CUDA_CHECK(cudaMemcpyAsync(...));   CUBLAS_CHECK(cublasSgemm(...));
//   CUDNN_CHECK(cudnnCreate(...));      CUDA_CHECK_LAUNCH();   // after every launch
//   MNISTGAN_LAUNCH(grid, block, smem, stream, kernel)(args...);   // kernel<<<...>>>(args...)
//
// A failing call throws std::runtime_error("file:line: <the call as written>: <error>"),
// so the message names both the place and the API that failed. Nothing here aborts: the
// caller (ultimately main) decides what to do with the exception.
#pragma once

#include <cublas_v2.h>     // cublasStatus_t, cublasGetStatusString
#include <cuda_runtime.h>  // cudaError_t, cudaGetErrorString, cudaGetLastError

#include <stdexcept>  // std::runtime_error
#include <string>     // std::string, std::to_string

#include "launch.cuh"  // MNISTGAN_LAUNCH

#if defined(MNISTGAN_HAVE_CUDNN)
#include <cudnn.h>  // cudnnStatus_t, cudnnGetErrorString
#endif

namespace mnistgan {
namespace cuda_detail {

[[noreturn]] inline void throw_api_error(const char* file, int line, const char* call,
                                         const std::string& what) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + ": " +
                           what);
}

inline void check_cuda(cudaError_t e, const char* file, int line, const char* call) {
  if (e != cudaSuccess)
    throw_api_error(file, line, call,
                    std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")");
}

inline void check_cublas(cublasStatus_t s, const char* file, int line, const char* call) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw_api_error(file, line, call,
                    std::string("cuBLAS status ") + std::to_string(static_cast<int>(s)) + " (" +
                        cublasGetStatusString(s) + ")");
}

#if defined(MNISTGAN_HAVE_CUDNN)
inline void check_cudnn(cudnnStatus_t s, const char* file, int line, const char* call) {
  if (s != CUDNN_STATUS_SUCCESS)
    throw_api_error(file, line, call,
                    std::string("cuDNN status ") + std::to_string(static_cast<int>(s)) + " (" +
                        cudnnGetErrorString(s) + ")");
}
#endif

}  // namespace cuda_detail
}  // namespace mnistgan

#define CUDA_CHECK(call) ::mnistgan::cuda_detail::check_cuda((call), __FILE__, __LINE__, #call)
#define CUBLAS_CHECK(call) ::mnistgan::cuda_detail::check_cublas((call), __FILE__, __LINE__, #call)
#if defined(MNISTGAN_HAVE_CUDNN)
#define CUDNN_CHECK(call) ::mnistgan::cuda_detail::check_cudnn((call), __FILE__, __LINE__, #call)
#endif
// After every kernel launch: catches bad launch configurations (and, in a debug session
// with CUDA_LAUNCH_BLOCKING=1, errors from the kernel itself) at the launch site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
