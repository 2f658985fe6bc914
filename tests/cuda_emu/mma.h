// mma.h (emulation): nvcuda::wmma for the TF32 m16n16k8 shape that kernels/linear.cu uses.
//
// A fragment's elements are spread over the 32 lanes of the warp as on the GPU, with this
// emulator's own (documented, unspecified on the GPU) mapping: lane l holds the tile's
// elements l, l + 32, l + 64, ... in row-major order of the tile (A: 16x8, B: 8x16,
// accumulator: 16x16). Code that only goes through load/store/fill/mma and per-element
// maps (as the CUDA docs allow) cannot tell the difference. Every operation is a warp
// collective: all 32 lanes must arrive, or the emulator reports a divergent barrier.
// mma_sync reads only the upper 19 bits of TF32 inputs (as the tensor cores do), so a
// missing __float_to_tf32 changes the rounding (truncation) instead of going unnoticed.
#pragma once

#include <cstdint>      // uint32_t
#include <cstring>      // std::memcpy
#include <type_traits>  // std::is_same_v

#include "cuda_runtime.h"

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ < 800
#error "the emulated build defines __CUDA_ARCH__ >= 800 so that TF32 WMMA bodies compile"
#endif

namespace cuda_emu {
void count_mma();
}

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

namespace detail {
template <class Use, int M, int N, int K>
struct Shape;  // rows x cols of the tile this fragment holds
template <int M, int N, int K>
struct Shape<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct Shape<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct Shape<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};
inline float tf32_truncate(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u &= 0xffffe000u;  // keep sign, exponent and the top 10 mantissa bits
  std::memcpy(&x, &u, 4);
  return x;
}
}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  using shape = detail::Shape<Use, M, N, K>;
  static constexpr int num_elements = shape::rows * shape::cols / 32;
  float x[num_elements];
};

// Round to nearest, ties away from zero, to a 10-bit mantissa (cvt.rna.tf32.f32).
inline float __float_to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u += 0x1000u;  // finite: round half away
  u &= 0xffffe000u;
  std::memcpy(&x, &u, 4);
  return x;
}

template <class Use, int M, int N, int K, class T, class L>
void fill_fragment(fragment<Use, M, N, K, T, L>& f, float v) {
  for (float& e : f.x) e = v;
}

// Element (r, c) of a tile stored at p with leading dimension ldm.
template <class Use, int M, int N, int K, class T, class L>
void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const float* p, unsigned ldm) {
  using S = typename fragment<Use, M, N, K, T, L>::shape;
  static_assert(!std::is_same_v<L, void>, "an accumulator load needs a layout_t argument");
  cuda_emu::syncwarp(0xffffffffu);
  const int lane = cuda_emu::lane_id();
  for (int e = 0; e < f.num_elements; ++e) {
    const int idx = lane + 32 * e, r = idx / S::cols, c = idx % S::cols;
    f.x[e] = std::is_same_v<L, row_major> ? p[static_cast<size_t>(r) * ldm + c]
                                          : p[static_cast<size_t>(c) * ldm + r];
  }
}

template <int M, int N, int K, class T>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm,
                       layout_t layout) {
  using S = typename fragment<accumulator, M, N, K, T>::shape;
  cuda_emu::syncwarp(0xffffffffu);
  const int lane = cuda_emu::lane_id();
  for (int e = 0; e < f.num_elements; ++e) {
    const int idx = lane + 32 * e, r = idx / S::cols, c = idx % S::cols;
    if (layout == mem_row_major)
      p[static_cast<size_t>(r) * ldm + c] = f.x[e];
    else
      p[static_cast<size_t>(c) * ldm + r] = f.x[e];
  }
}

// D = A B + C over the warp: every lane publishes its fragments, computes its own D
// elements from everyone's, and writes them only after the whole warp has read (D may be C).
template <int M, int N, int K, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d,
              const fragment<matrix_a, M, N, K, precision::tf32, LA>& a,
              const fragment<matrix_b, M, N, K, precision::tf32, LB>& b,
              const fragment<accumulator, M, N, K, float>& c) {
  struct Operands {
    const float *a, *b, *c;
  };
  const Operands mine{a.x, b.x, c.x};
  cuda_emu::warp_publish(0xffffffffu, &mine);
  auto element = [](int which, int idx) {  // idx-th element of the tile, from its lane
    const auto* o = static_cast<const Operands*>(cuda_emu::warp_slot(idx % 32));
    const float* x = which == 0 ? o->a : which == 1 ? o->b : o->c;
    return x[idx / 32];
  };
  const int lane = cuda_emu::lane_id();
  float out[fragment<accumulator, M, N, K, float>::num_elements];
  for (int e = 0; e < d.num_elements; ++e) {
    const int idx = lane + 32 * e, r = idx / N, col = idx % N;
    float acc = element(2, idx);
    for (int k = 0; k < K; ++k)
      acc += detail::tf32_truncate(element(0, r * K + k)) *
             detail::tf32_truncate(element(1, k * N + col));
    out[e] = acc;
  }
  cuda_emu::warp_done(0xffffffffu);
  for (int e = 0; e < d.num_elements; ++e) d.x[e] = out[e];
  if (lane == 0) cuda_emu::count_mma();
}

}  // namespace wmma
}  // namespace nvcuda
