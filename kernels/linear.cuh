// linear.cuh: the linear layer forward and backward as one grouped, split-K SGEMM launch each,
// with the bias, the activation and its derivative fused in.
//
// Shapes (row-major, as backend.h), for each of `models` same-shaped models m (blockIdx.z):
//   forward:   Y (rows, out) = act(X (rows, in) W^T + b)      X, Y with row strides ld.x, ld.y
//   backward:  dZ = dY * act'(Y)  (read from the saved output Y on load; act none: dZ = dY)
//              dX (rows, in)  = dZ W            (or += with accumulate_dx)
//              dW (out, in)   = dZ^T X
//              db (out)       = column sums of dZ: the dW problem's extra column in, whose
//                               B operand is a virtual column of ones
//   dX is one GEMM problem and dW (+db) another, both in the same launch (grouped GEMM).
//   Dropout (op_types.h's Dropout, on when p > 0): the forward epilogue writes
//   dropout_output(act(.), keep, 1 / (1 - p)); the backward pass redraws the same mask where it
//   loads dY (the A operand of both problems), dZ = dropout_activation_grad(Y, dY, ...), so a
//   layer with dropout costs no extra launch and no mask buffer. keep is element
//   r * out + c's Philox test (core/formulas.h's dropout_keep), the step read on the device.
//   With models, model z's step is dropout.step[z * ms.drop_step] and its seed
//   dropout_seeds[z] (a device array of `models`), or dropout.seed when that is nullptr.
// Model m's tensors start at the pointer plus m times its model stride (ModelStrides).
//
// One kernel, v3 (v1 cuBLAS + epilogue, v2 tiled SIMT / TF32 WMMA: kernels/dev/linear_dev.cuh):
//   block tile kLinearBM x kLinearBN of C, K walked in kLinearBK steps through shared memory
//   (stored k-major: As[k][m], Bs[k][n]), each of the 256 threads a kLinearTM x kLinearTN
//   register tile read as float4 from shared memory. Global loads are coalesced along
//   whichever of an operand's dimensions is contiguous (a per-problem flag).
//   Split-K: at rows 64-256 the output has too few tiles to fill a GPU (132 SMs on an H100),
//   so a problem's K range is cut into split_k slices, one block each. Every slice writes its
//   partial tile to a workspace and takes a ticket (integer atomic) on its tile's counter; the
//   last to arrive adds the split_k partials in slice order 0, 1, ... (a fixed order, whatever
//   order the blocks ran in: bitwise repeatable, no float atomics), applies the epilogue,
//   stores C and re-zeroes the counter for the next launch. The split is chosen from the SM
//   count and the tile count (linear_split_k), so on one device a shape always runs the same
//   sums.
// Not timed yet: the benchmark compares v3 with v1 and cuBLASLt's fused epilogue at the next
// GPU loan; the tile constants are the knobs.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstddef>  // size_t

#include "core/op_types.h"  // Activation, Dropout, RowStrides

namespace mnistgan {

constexpr int kLinearBM = 64, kLinearBN = 64, kLinearBK = 16, kLinearTM = 4, kLinearTN = 4;
constexpr int kLinearThreads = (kLinearBM / kLinearTM) * (kLinearBN / kLinearTN);  // 256
constexpr int kLinearMaxSplitK = 16;
// A slice covers at least this many K-tiles (64 of K): shorter slices cost more in partials
// traffic than they gain in parallelism.
constexpr int kLinearMinTilesPerSplit = 4;

// Device memory a launch's split-K reduction uses; owned by the caller (the backend), left as
// found (counters zero) by every launch. Launches sharing it must be stream-ordered.
struct LinearWorkspace {
  float* partials = nullptr;  // partial tiles
  size_t partial_floats = 0;
  unsigned* counters = nullptr;  // zero-initialised tickets, one per output tile
  size_t counter_count = 0;
  int sm_count = 132;  // multiprocessors: the split aims at about one block per SM
  // 0: choose the split from sm_count; 1: never split; n > 1: split n ways where K allows
  // (tests force both paths).
  int split_k_override = 0;
};

// How far each tensor of model m is from model 0's, in floats (0 for a shared tensor).
struct ModelStrides {
  long long x = 0, w = 0, b = 0, y = 0, dy = 0, dx = 0, dw = 0, db = 0;
  long long drop_step = 0;  // between the models' dropout step counters (int64 elements)
};

// Floats of LinearWorkspace::partials and counters a backend allocates so that every layer of
// this project's model (up to 2048 rows, widths up to 1024) can be split as the SM count asks.
constexpr size_t kLinearWorkspaceFloats = size_t{8} << 20;  // 32 MiB
constexpr size_t kLinearWorkspaceCounters = size_t{1} << 16;

// Y = act(X W^T + b) for `models` models; b may be nullptr. Throws std::invalid_argument on a
// bad shape or pointer, a dropout p outside [0, 1) or dropout after tanh, std::runtime_error
// on a launch error.
void linear_forward(const LinearWorkspace& ws, const float* X, const float* W, const float* b,
                    float* Y, int rows, int in, int out, Activation act, float slope,
                    RowStrides ld, int models, const ModelStrides& ms, cudaStream_t stream,
                    const Dropout& dropout = {}, const uint64_t* dropout_seeds = nullptr);

// dZ = dY * act'(Y); dX (=, or += with accumulate_dx) dZ W; dW = dZ^T X; db = column sums of
// dZ. Any of dX, dW, db may be nullptr (db needs dW). Y may be nullptr for act none.
void linear_backward(const LinearWorkspace& ws, const float* X, const float* W, const float* Y,
                     const float* dY, float* dX, float* dW, float* db, int rows, int in, int out,
                     Activation act, float slope, bool accumulate_dx, RowStrides ld, int models,
                     const ModelStrides& ms, cudaStream_t stream, const Dropout& dropout = {},
                     const uint64_t* dropout_seeds = nullptr);

// The split of a problem with `tiles` output tiles and K-extent k when a launch has
// `total_tiles` tiles in all (exposed for the tests).
int linear_split_k(const LinearWorkspace& ws, int tiles, int total_tiles, int k);

}  // namespace mnistgan
