// linear.cu: the grouped split-K SGEMM of the linear layer (see linear.cuh).
#include <cuda_runtime.h>  // launches, float4, atomicAdd, __threadfence

#include <algorithm>  // std::min, std::max
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string

#include "core/formulas.h"  // activate, activation_grad, dropout_*
#include "cuda_check.cuh"   // CUDA_CHECK_LAUNCH, MNISTGAN_LAUNCH
#include "device_util.cuh"  // load_bypassing_l1
#include "linear.cuh"

namespace mnistgan {
namespace {

constexpr int BM = kLinearBM, BN = kLinearBN, BK = kLinearBK, TM = kLinearTM, TN = kLinearTN;
constexpr int kTileFloats = BM * BN;
static_assert(TM % 4 == 0 && TN % 4 == 0, "float4 shared-memory reads need TM, TN % 4 == 0");
static_assert(BM % TM == 0 && BN % TN == 0 && (BM * BK) % kLinearThreads == 0 &&
                  (BN * BK) % kLinearThreads == 0,
              "the tiles split evenly over the threads");

// One C (M, N) = A (M, K) B (K, N) of a launch. Element (m, k) of model z's A is at
// a[z * a_model + m * a_sm + k * a_sk]; B and C likewise (C's columns are contiguous).
struct Problem {
  int M = 0, N = 0, K = 0;
  const float* a = nullptr;
  long long a_sm = 0, a_sk = 0, a_model = 0;
  bool a_k_contig = true;  // a_sk == 1 (else a_sm == 1): which way loads coalesce
  // nullptr, or the saved output Y at A's offsets (model stride gate_model): A's element is
  // then activation_grad(Y, dY), the backward pass's dZ.
  const float* gate = nullptr;
  long long gate_model = 0;
  const float* b = nullptr;
  long long b_sk = 0, b_sn = 0, b_model = 0;
  bool b_k_contig = true;  // b_sk == 1 (else b_sn == 1)
  int ones_col = -1;       // a column of B that is all ones (db), or -1
  float* c = nullptr;
  long long c_sm = 0, c_model = 0;
  float* c_ones = nullptr;  // where C's column ones_col goes, one float per row m (db)
  long long c_ones_model = 0;
  const float* bias = nullptr;  // per column n, added before the activation
  long long bias_model = 0;
  // Dropout (Launch::drop): on A's elements as they load (the backward's dY, element (m, k) of
  // the mask index m * drop_sm + k * drop_sk), or on C's in the epilogue (the forward's Y,
  // index m * drop_sm + n).
  bool drop_a = false, drop_c = false;
  long long drop_sm = 0, drop_sk = 0;
  Activation act = Activation::kNone;  // applied to C in the epilogue
  bool accumulate = false;             // C += instead of C =
  int tiles_m = 0, tiles_n = 0, split_k = 1, k_per_split = 0;
  int block_begin = 0;         // this problem's first blockIdx.x
  long long ws_offset = 0;     // its partial tiles' offset in one model's share of the workspace
  int counter_offset = 0;      // its tiles' first counter in one model's share
};

constexpr int kMaxProblems = 2;

struct Launch {
  Problem p[kMaxProblems];
  int count = 0;
  Activation gate_act = Activation::kNone;
  float slope = 0.0f;
  float* partials = nullptr;
  long long partials_model = 0;  // floats of the workspace per model
  unsigned* counters = nullptr;
  long long counters_model = 0;
  // The dropout key of the problems with drop_a or drop_c; step read by the kernel.
  uint64_t drop_seed = 0;
  uint32_t drop_stream = 0, drop_threshold = 0;
  float drop_scale = 1.0f;
  const int64_t* drop_step = nullptr;  // model z's step: drop_step[z * drop_step_model]
  long long drop_step_model = 0;
  const uint64_t* drop_seeds = nullptr;  // nullptr, or model z's seed drop_seeds[z]
};

static __global__ void __launch_bounds__(kLinearThreads) linear_kernel(const Launch L) {
  // k-major tiles; +4 keeps rows 16-byte aligned (float4 reads) and shifts banks per row.
  __shared__ __align__(16) float As[BK][BM + 4];
  __shared__ __align__(16) float Bs[BK][BN + 4];
  __shared__ int s_last;

  const Problem& P = L.p[L.count > 1 && static_cast<int>(blockIdx.x) >= L.p[1].block_begin];
  const long long z = blockIdx.z;
  const int tiles = P.tiles_m * P.tiles_n;
  const int local = static_cast<int>(blockIdx.x) - P.block_begin;
  const int split = local / tiles, tile = local % tiles;
  const int m0 = tile / P.tiles_n * BM, n0 = tile % P.tiles_n * BN;
  const int k_begin = split * P.k_per_split, k_end = min(P.K, k_begin + P.k_per_split);
  const float* A = P.a + z * P.a_model;
  const float* gate = P.gate != nullptr ? P.gate + z * P.gate_model : nullptr;
  const float* B = P.b + z * P.b_model;
  const int tx = threadIdx.x % (BN / TN), ty = threadIdx.x / (BN / TN);
  const uint64_t drop_step = (P.drop_a || P.drop_c) && L.drop_step != nullptr
                                 ? static_cast<uint64_t>(L.drop_step[z * L.drop_step_model])
                                 : 0;
  const uint64_t drop_seed = L.drop_seeds != nullptr ? L.drop_seeds[z] : L.drop_seed;

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
    // Consecutive threads take consecutive addresses along the contiguous dimension.
#pragma unroll
    for (int e = threadIdx.x; e < BM * BK; e += kLinearThreads) {
      const int m = P.a_k_contig ? e / BK : e % BM, k = P.a_k_contig ? e % BK : e / BM;
      const int gm = m0 + m, gk = k0 + k;
      float v = 0.0f;
      if (gm < P.M && gk < k_end) {
        const long long at = gm * P.a_sm + gk * P.a_sk;
        v = A[at];
        if (P.drop_a) {
          const bool keep = dropout_keep(drop_seed, L.drop_stream,
                                         static_cast<uint64_t>(gm * P.drop_sm + gk * P.drop_sk),
                                         drop_step, L.drop_threshold);
          v = dropout_activation_grad(gate != nullptr ? gate[at] : 0.0f, v, L.gate_act, L.slope,
                                      keep, L.drop_scale);
        } else if (gate != nullptr) {
          v = activation_grad(gate[at], v, L.gate_act, L.slope);
        }
      }
      As[k][m] = v;
    }
#pragma unroll
    for (int e = threadIdx.x; e < BN * BK; e += kLinearThreads) {
      const int n = P.b_k_contig ? e / BK : e % BN, k = P.b_k_contig ? e % BK : e / BN;
      const int gn = n0 + n, gk = k0 + k;
      float v = 0.0f;
      if (gn < P.N && gk < k_end) v = gn == P.ones_col ? 1.0f : B[gk * P.b_sk + gn * P.b_sn];
      Bs[k][n] = v;
    }
    __syncthreads();  // the tiles are complete
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[TM], w[TN];
#pragma unroll
      for (int i = 0; i < TM; i += 4) {
        const float4 t = *reinterpret_cast<const float4*>(&As[k][ty * TM + i]);
        a[i] = t.x, a[i + 1] = t.y, a[i + 2] = t.z, a[i + 3] = t.w;
      }
#pragma unroll
      for (int j = 0; j < TN; j += 4) {
        const float4 t = *reinterpret_cast<const float4*>(&Bs[k][tx * TN + j]);
        w[j] = t.x, w[j + 1] = t.y, w[j + 2] = t.z, w[j + 3] = t.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], w[j], acc[i][j]);
    }
    __syncthreads();  // every thread is done with the tiles before they are overwritten
  }

  if (P.split_k > 1) {
    float* partials = L.partials + z * L.partials_model + P.ws_offset;
    float* mine = partials + (static_cast<long long>(split) * tiles + tile) * kTileFloats;
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; j += 4)
        *reinterpret_cast<float4*>(&mine[(ty * TM + i) * BN + tx * TN + j]) =
            make_float4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]);
    __threadfence();  // the partial is visible device-wide before the ticket is taken
    __syncthreads();  // every thread's part is stored
    if (threadIdx.x == 0) {
      unsigned* counter = L.counters + z * L.counters_model + P.counter_offset + tile;
      s_last = atomicAdd(counter, 1u) == static_cast<unsigned>(P.split_k - 1);
      if (s_last) *counter = 0;  // every slice has arrived: ready for the next launch
    }
    __syncthreads();  // s_last is set
    if (!s_last) return;
    __threadfence();
    // The fixed order: slice 0, 1, ..., split_k - 1, whichever block arrived last.
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        const int at = (ty * TM + i) * BN + tx * TN + j;
        float s = 0.0f;
        for (int sl = 0; sl < P.split_k; ++sl)
          s += load_bypassing_l1(partials + (static_cast<long long>(sl) * tiles + tile) *
                                                kTileFloats + at);
        acc[i][j] = s;
      }
  }

  float* C = P.c + z * P.c_model;
  const float* bias = P.bias != nullptr ? P.bias + z * P.bias_model : nullptr;
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int gm = m0 + ty * TM + i;
    if (gm >= P.M) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int gn = n0 + tx * TN + j;
      if (gn >= P.N) continue;
      float v = acc[i][j];
      if (bias != nullptr) v += bias[gn];
      v = activate(v, P.act, L.slope);
      if (P.drop_c)
        v = dropout_output(v,
                           dropout_keep(drop_seed, L.drop_stream,
                                        static_cast<uint64_t>(gm * P.drop_sm + gn), drop_step,
                                        L.drop_threshold),
                           L.drop_scale);
      float* dst = gn == P.ones_col ? P.c_ones + z * P.c_ones_model + gm : C + gm * P.c_sm + gn;
      *dst = P.accumulate ? *dst + v : v;
    }
  }
}

int ceil_div(long long a, long long b) { return static_cast<int>((a + b - 1) / b); }

void check_shape(const char* op, int rows, int in, int out, int models, RowStrides ld) {
  if (rows < 1 || in < 1 || out < 1 || models < 1 || models > 65535)
    throw std::invalid_argument(std::string(op) + ": rows=" + std::to_string(rows) +
                                ", in=" + std::to_string(in) + ", out=" + std::to_string(out) +
                                ", models=" + std::to_string(models) +
                                ": every dimension must be >= 1 (models <= 65535)");
  if ((ld.x != 0 && ld.x < in) || (ld.y != 0 && ld.y < out))
    throw std::invalid_argument(std::string(op) + ": row stride ld.x=" + std::to_string(ld.x) +
                                " / ld.y=" + std::to_string(ld.y) +
                                " is below the row's width (in " + std::to_string(in) + ", out " +
                                std::to_string(out) + "); pass 0 for packed rows");
}

// The dropout precondition (op_types.h), then the launch's key.
void set_dropout(const char* op, Launch& L, const Dropout& d, Activation act,
                 const ModelStrides& ms, const uint64_t* dropout_seeds) {
  check_dropout(op, d, act);
  L.drop_seed = d.seed;
  L.drop_stream = d.stream;
  L.drop_threshold = dropout_threshold(d.p);
  L.drop_scale = dropout_scale(d.p);
  L.drop_step = d.step;
  L.drop_step_model = ms.drop_step;
  L.drop_seeds = dropout_seeds;
}

// Splits, block ranges and workspace offsets of the launch's problems, then launches it.
void plan_and_launch(const LinearWorkspace& ws, Launch& L, int models, cudaStream_t stream) {
  int total_tiles = 0;
  for (int p = 0; p < L.count; ++p) {
    Problem& P = L.p[p];
    P.tiles_m = ceil_div(P.M, BM);
    P.tiles_n = ceil_div(P.N, BN);
    total_tiles += P.tiles_m * P.tiles_n;
  }
  long long partial_floats = 0, counters = 0;
  for (int p = 0; p < L.count; ++p) {
    Problem& P = L.p[p];
    const int tiles = P.tiles_m * P.tiles_n;
    const int k_tiles = ceil_div(P.K, BK);
    const int split = linear_split_k(ws, tiles, total_tiles * models, P.K);
    P.k_per_split = ceil_div(k_tiles, split) * BK;
    P.split_k = ceil_div(P.K, P.k_per_split);  // no empty slice
    P.ws_offset = partial_floats;
    P.counter_offset = static_cast<int>(counters);
    if (P.split_k > 1) {
      partial_floats += static_cast<long long>(P.split_k) * tiles * kTileFloats;
      counters += tiles;
    }
  }
  const bool fits = static_cast<size_t>(partial_floats * models) <= ws.partial_floats &&
                    static_cast<size_t>(counters * models) <= ws.counter_count &&
                    (partial_floats == 0 || (ws.partials != nullptr && ws.counters != nullptr));
  if (!fits) {  // too big for the workspace: every problem unsplit
    for (int p = 0; p < L.count; ++p) {
      L.p[p].split_k = 1;
      L.p[p].k_per_split = ceil_div(L.p[p].K, BK) * BK;
    }
    partial_floats = counters = 0;
  }
  L.partials = ws.partials;
  L.partials_model = partial_floats;
  L.counters = ws.counters;
  L.counters_model = counters;
  long long blocks = 0;
  for (int p = 0; p < L.count; ++p) {
    L.p[p].block_begin = static_cast<int>(blocks);
    blocks += static_cast<long long>(L.p[p].split_k) * L.p[p].tiles_m * L.p[p].tiles_n;
  }
  if (blocks > 0x7fffffffLL)
    throw std::invalid_argument("linear: more than 2^31 - 1 blocks; the layer is too large");
  const dim3 grid(static_cast<unsigned>(blocks), 1, static_cast<unsigned>(models));
  MNISTGAN_LAUNCH(grid, kLinearThreads, 0, stream, linear_kernel)(L);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

int linear_split_k(const LinearWorkspace& ws, int tiles, int total_tiles, int k) {
  const int k_tiles = ceil_div(k, BK);
  if (ws.split_k_override == 1 || tiles < 1 || total_tiles < 1) return 1;
  if (ws.split_k_override > 1) return std::max(1, std::min(ws.split_k_override, k_tiles));
  const int most = std::min(kLinearMaxSplitK, k_tiles / kLinearMinTilesPerSplit);
  return std::max(1, std::min(ceil_div(ws.sm_count, total_tiles), most));
}

void linear_forward(const LinearWorkspace& ws, const float* X, const float* W, const float* b,
                    float* Y, int rows, int in, int out, Activation act, float slope,
                    RowStrides ld, int models, const ModelStrides& ms, cudaStream_t stream,
                    const Dropout& dropout, const uint64_t* dropout_seeds) {
  check_shape("linear_forward", rows, in, out, models, ld);
  if (X == nullptr || W == nullptr || Y == nullptr)
    throw std::invalid_argument("linear_forward: X, W and Y must be non-null (only b may be)");
  const int ldx = ld.x != 0 ? ld.x : in, ldy = ld.y != 0 ? ld.y : out;
  Launch L;
  L.count = 1;
  L.slope = slope;
  Problem& P = L.p[0];
  P.M = rows, P.N = out, P.K = in;
  P.a = X, P.a_sm = ldx, P.a_sk = 1, P.a_model = ms.x, P.a_k_contig = true;
  P.b = W, P.b_sk = 1, P.b_sn = in, P.b_model = ms.w, P.b_k_contig = true;  // B (k, n) = W[n, k]
  P.c = Y, P.c_sm = ldy, P.c_model = ms.y;
  P.bias = b, P.bias_model = ms.b;
  P.act = act;
  set_dropout("linear_forward", L, dropout, act, ms, dropout_seeds);
  P.drop_c = dropout.on(), P.drop_sm = out;  // Y's element (r, c) is mask element r * out + c
  plan_and_launch(ws, L, models, stream);
}

void linear_backward(const LinearWorkspace& ws, const float* X, const float* W, const float* Y,
                     const float* dY, float* dX, float* dW, float* db, int rows, int in, int out,
                     Activation act, float slope, bool accumulate_dx, RowStrides ld, int models,
                     const ModelStrides& ms, cudaStream_t stream, const Dropout& dropout,
                     const uint64_t* dropout_seeds) {
  check_shape("linear_backward", rows, in, out, models, ld);
  if (dY == nullptr) throw std::invalid_argument("linear_backward: dY must be non-null");
  if (act != Activation::kNone && Y == nullptr)
    throw std::invalid_argument("linear_backward: the activation's derivative needs Y");
  if (dW != nullptr && X == nullptr)
    throw std::invalid_argument("linear_backward: dW needs X; pass X or dW = nullptr");
  if (dX != nullptr && W == nullptr)
    throw std::invalid_argument("linear_backward: dX needs W; pass W or dX = nullptr");
  if (db != nullptr && dW == nullptr)
    throw std::invalid_argument("linear_backward: db is computed with dW; pass dW too");
  const int ldx = ld.x != 0 ? ld.x : in, ldy = ld.y != 0 ? ld.y : out;
  const float* gate = act != Activation::kNone ? Y : nullptr;
  Launch L;
  L.gate_act = act;
  L.slope = slope;
  set_dropout("linear_backward", L, dropout, act, ms, dropout_seeds);
  if (dX != nullptr) {  // dX (rows, in) = dZ (rows, out) W (out, in)
    Problem& P = L.p[L.count++];
    P.M = rows, P.N = in, P.K = out;
    P.a = dY, P.a_sm = ldy, P.a_sk = 1, P.a_model = ms.dy, P.a_k_contig = true;
    P.gate = gate, P.gate_model = ms.y;
    P.drop_a = dropout.on(), P.drop_sm = out, P.drop_sk = 1;  // A (m, k) = dY (row m, col k)
    P.b = W, P.b_sk = in, P.b_sn = 1, P.b_model = ms.w, P.b_k_contig = false;
    P.c = dX, P.c_sm = ldx, P.c_model = ms.dx;
    P.accumulate = accumulate_dx;
  }
  if (dW != nullptr) {  // [dW | db] (out, in + 1) = dZ^T (out, rows) [X | 1] (rows, in + 1)
    Problem& P = L.p[L.count++];
    P.M = out, P.N = in + (db != nullptr ? 1 : 0), P.K = rows;
    P.a = dY, P.a_sm = 1, P.a_sk = ldy, P.a_model = ms.dy, P.a_k_contig = false;
    P.gate = gate, P.gate_model = ms.y;
    P.drop_a = dropout.on(), P.drop_sm = 1, P.drop_sk = out;  // A (m, k) = dY (row k, col m)
    P.b = X, P.b_sk = ldx, P.b_sn = 1, P.b_model = ms.x, P.b_k_contig = false;
    P.ones_col = db != nullptr ? in : -1;
    P.c = dW, P.c_sm = in, P.c_model = ms.dw;
    P.c_ones = db, P.c_ones_model = ms.db;
  }
  if (L.count > 0) plan_and_launch(ws, L, models, stream);
}

}  // namespace mnistgan
