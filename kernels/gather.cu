// gather.cu: batch gather + scaling to [-1, 1] (see gather.cuh).
#include <cuda_runtime.h>  // dim3, blockIdx

#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "core/formulas.h"  // gather_perm_index, gathered_pixel, gathered_label
#include "cuda_check.cuh"   // CUDA_CHECK_LAUNCH
#include "gather.cuh"

namespace mnistgan {
namespace {

static __global__ void __launch_bounds__(kGatherThreads)
    gather_kernel(const uint8_t* __restrict__ dataset, const int32_t* __restrict__ perm,
                  int n_images, int pixels, const int64_t* __restrict__ step, int batches_per_step,
                  int batch_offset, int64_t batches_per_epoch, float* __restrict__ out,
                  GatherModelStrides ms) {
  const long long z = blockIdx.z;
  dataset += z * ms.dataset, perm += z * ms.perm, step += z * ms.step, out += z * ms.out;
  const int r = blockIdx.y, rows = gridDim.y;
  const int p = blockIdx.x * kGatherThreads + threadIdx.x;
  if (p >= pixels) return;
  const int32_t image = perm[gather_perm_index(*step, batches_per_step, batch_offset,
                                               batches_per_epoch, n_images, rows, r)];
  out[static_cast<size_t>(r) * pixels + p] = gathered_pixel(dataset, image, n_images, pixels, p);
}

static __global__ void __launch_bounds__(kGatherThreads)
    gather_labels_kernel(const uint8_t* __restrict__ labels, const int32_t* __restrict__ perm,
                         int n_images, int rows, const int64_t* __restrict__ step,
                         int batches_per_step, int batch_offset, int64_t batches_per_epoch,
                         int32_t* __restrict__ out, GatherModelStrides ms) {
  const long long z = blockIdx.y;
  labels += z * ms.dataset, perm += z * ms.perm, step += z * ms.step, out += z * ms.out;
  const int r = blockIdx.x * kGatherThreads + threadIdx.x;
  if (r >= rows) return;
  const int32_t image = perm[gather_perm_index(*step, batches_per_step, batch_offset,
                                               batches_per_epoch, n_images, rows, r)];
  out[r] = gathered_label(labels, image, n_images);
}

// The checks gather_batch and gather_labels share; `what` names the op.
void check_gather(const char* what, int n_images, int pixels, int rows, int batches_per_step,
                  int batch_offset, int64_t batches_per_epoch) {
  const std::string op = what;
  if (n_images < 1 || pixels < 1 || rows < 1 || batches_per_step < 1 || batch_offset < 0 ||
      batches_per_epoch < 1)
    throw std::invalid_argument(op + ": n_images=" + std::to_string(n_images) + ", pixels=" +
                                std::to_string(pixels) + ", rows=" + std::to_string(rows) +
                                ", batches_per_step=" + std::to_string(batches_per_step) +
                                ", batch_offset=" + std::to_string(batch_offset) +
                                ", batches_per_epoch=" + std::to_string(batches_per_epoch) +
                                ": sizes must be >= 1 and the offset >= 0");
  if (batches_per_epoch * rows > n_images)
    throw std::invalid_argument(op + ": " + std::to_string(batches_per_epoch) + " batches of " +
                                std::to_string(rows) + " rows exceed the " +
                                std::to_string(n_images) +
                                " images of an epoch; lower batches_per_epoch");
  if (rows > 65535) throw std::invalid_argument(op + ": at most 65535 rows per batch");
}

}  // namespace

void gather_batch(const uint8_t* dataset, const int32_t* perm, int n_images, int pixels, int rows,
                  const int64_t* step, int batches_per_step, int batch_offset,
                  int64_t batches_per_epoch, float* out, cudaStream_t stream, int models,
                  const GatherModelStrides& ms) {
  if (dataset == nullptr || perm == nullptr || step == nullptr || out == nullptr)
    throw std::invalid_argument("gather_batch: dataset, perm, step and out must be non-null");
  check_gather("gather_batch", n_images, pixels, rows, batches_per_step, batch_offset,
               batches_per_epoch);
  if (models < 1 || models > 65535)
    throw std::invalid_argument("gather_batch: models " + std::to_string(models) +
                                " is outside [1, 65535]");
  const dim3 grid((pixels + kGatherThreads - 1) / kGatherThreads, rows,
                  static_cast<unsigned>(models));
  MNISTGAN_LAUNCH(grid, kGatherThreads, 0, stream, gather_kernel)
  (dataset, perm, n_images, pixels, step, batches_per_step, batch_offset, batches_per_epoch, out,
   ms);
  CUDA_CHECK_LAUNCH();
}

void gather_labels(const uint8_t* labels, const int32_t* perm, int n_images, int rows,
                   const int64_t* step, int batches_per_step, int batch_offset,
                   int64_t batches_per_epoch, int32_t* out, cudaStream_t stream, int models,
                   const GatherModelStrides& ms) {
  if (labels == nullptr || perm == nullptr || step == nullptr || out == nullptr)
    throw std::invalid_argument("gather_labels: labels, perm, step and out must be non-null");
  check_gather("gather_labels", n_images, /*pixels=*/1, rows, batches_per_step, batch_offset,
               batches_per_epoch);
  if (models < 1 || models > 65535)
    throw std::invalid_argument("gather_labels: models " + std::to_string(models) +
                                " is outside [1, 65535]");
  const dim3 grid((rows + kGatherThreads - 1) / kGatherThreads, static_cast<unsigned>(models));
  MNISTGAN_LAUNCH(grid, kGatherThreads, 0, stream, gather_labels_kernel)
  (labels, perm, n_images, rows, step, batches_per_step, batch_offset, batches_per_epoch, out, ms);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mnistgan
