// gather.cuh: gather one training batch from the device-resident uint8 dataset, scaled to
// [-1, 1], exactly as backend.h's gather_batch (and, with gather_labels, the same batch's
// labels, for conditional runs):
//
//   batch = (*step) * batches_per_step + batch_offset      (global batch counter)
//   epoch = batch / batches_per_epoch, slot = epoch % 2, b = batch % batches_per_epoch
//   out[r, p] = dataset[perm[slot * n_images + b * rows + r], p] / 127.5f - 1.0f
//
//   dataset (n_images, pixels) uint8, perm (2, n_images) int32, out (rows, pixels) float.
//   The scaling is computed as static_cast<float>(v) / 127.5f - 1.0f with IEEE-rounded
//   intrinsics, bit for bit the CPU's expression.
//
// Version: grid (ceil(pixels / 256), rows); every thread reads the step counter, so the
// launch replays correctly from a CUDA graph. An index outside [0, n_images) in perm
// (corrupt data) writes NaN for that row instead of reading out of bounds, so the
// trainer's non-finite guard reports it.
// gather_labels: out[r] = labels[perm[slot * n_images + b * rows + r]] with the same batch
// arithmetic; labels (n_images) uint8, out (rows) int32; an index outside [0, n_images)
// writes -1 (one_hot turns it into a NaN row). One thread per row.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstdint>  // uint8_t, int32_t, int64_t

namespace mnistgan {

constexpr int kGatherThreads = 256;

// Throws std::invalid_argument on non-positive sizes, null pointers, or when a batch does
// not fit in an epoch (batches_per_epoch * rows > n_images).
// Element strides between consecutive models' buffers (gather_batch's `models`, blockIdx.z;
// gather_labels's, blockIdx.y, with `dataset` the labels' stride).
struct GatherModelStrides {
  long long dataset = 0, perm = 0, step = 0, out = 0;
};

void gather_batch(const uint8_t* dataset, const int32_t* perm, int n_images, int pixels, int rows,
                  const int64_t* step, int batches_per_step, int batch_offset,
                  int64_t batches_per_epoch, float* out, cudaStream_t stream, int models = 1,
                  const GatherModelStrides& ms = {});

// Throws as gather_batch.
void gather_labels(const uint8_t* labels, const int32_t* perm, int n_images, int rows,
                   const int64_t* step, int batches_per_step, int batch_offset,
                   int64_t batches_per_epoch, int32_t* out, cudaStream_t stream, int models = 1,
                   const GatherModelStrides& ms = {});

}  // namespace mnistgan
