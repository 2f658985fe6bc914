// one_hot.cuh: integer labels -> one-hot float rows, exactly as backend.h's one_hot:
//
//   out[r, c] = (c == labels[r]) ? 1 : 0        labels (rows) int32, out (rows, classes)
//   a label outside [0, classes) makes the whole row NaN, so the divergence guard sees it.
//
// Version: one thread per output element in a grid-stride loop (the output is at most a few
// thousand floats: one launch, no tuning).
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstdint>  // int32_t

namespace mnistgan {

constexpr int kOneHotThreads = 256;

// Throws std::invalid_argument on null pointers or non-positive rows/classes.
// models (the grid's y): model z reads labels + z * labels_stride, writes out + z * out_stride.
void one_hot(const int32_t* labels, float* out, int rows, int classes, cudaStream_t stream,
             int models = 1, long long labels_stride = 0, long long out_stride = 0);

}  // namespace mnistgan
