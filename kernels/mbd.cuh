// mbd.cuh: minibatch discrimination (Salimans et al. 2016), forward and backward.
//
// M (groups*B, K*C) viewed as (groups, B, K, C); O (groups*B, K); within each group:
//   forward:  O[i,k]    = sum_{j != i} e_ijk,   e_ijk = exp(-sum_c |M[i,k,c] - M[j,k,c]|)
//   backward: dM[i,k,c] = sum_{j != i} (dO[i,k] + dO[j,k]) e_ijk * -sign(M[i,k,c] - M[j,k,c])
// O(groups B^2 K C) work; B up to 1024 (x 2 groups), K = 100 and C = 5 by default.
//
// Version: block = 8 warps; lane = one of 32 consecutive kernels k, each warp owns RI rows
// i with M[i,k,:] (and the gradient accumulators) in registers. Rows j stream through
// shared memory in tiles stored (j, c, k) so that a warp's 32 lanes read 32 consecutive
// words. Every (i,k) output is produced by one thread looping j = 0..B-1 in order (the same
// order as the CPU reference), so results are deterministic and there are no atomics.
// C is a template bound: C = 5 (the default) exactly, otherwise the next of 4/8/16/32.
// Grid (K / 32, row tiles, models x groups): 4 rows per warp when that gives kMbdFillBlocks
// blocks, else 1 (at batch 64: 64 blocks instead of 16).
// O and dO have row stride ldo (0: K), so O can be written straight into columns of the
// discriminator's [h | o] features. models: model z's M, O/dO and dM start z times the
// MbdModelStrides further on.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

namespace mnistgan {

constexpr int kMbdMaxC = 32;  // largest C (dims per kernel) the CUDA kernels support
constexpr int kMbdFillBlocks = 132;  // an H100's SMs: the grid aims at one block each

// How far model z's tensors are from model 0's, in floats (O and dO share o).
struct MbdModelStrides {
  long long m = 0, o = 0, dm = 0;
};

// Throw std::invalid_argument on a non-positive size, ldo in (0, K) or C > kMbdMaxC.
void mbd_forward(const float* M, float* O, int groups, int B, int K, int C, int ldo, int models,
                 const MbdModelStrides& ms, cudaStream_t stream);
void mbd_backward(const float* M, const float* dO, float* dM, int groups, int B, int K, int C,
                  int ldo, int models, const MbdModelStrides& ms, cudaStream_t stream);

}  // namespace mnistgan
