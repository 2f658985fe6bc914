// cpu_mbd.cpp: see cpu_mbd.h.
//
// Each group's M is first transposed from (B, K, C) to (B, C, K) so that, for one pair of
// rows (i, j), every loop runs over the K kernels with unit stride and vectorises. Each
// unordered pair is visited once (e_ijk = e_jik) and feeds both rows.
#include "backends/cpu_mbd.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace mnistgan {

namespace {

// Mt (B, C, K) from M (B, K, C).
void to_ckk(const float* M, float* Mt, int B, int K, int C) {
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < K; ++k)
      for (int c = 0; c < C; ++c)
        Mt[(static_cast<size_t>(b) * C + c) * K + k] = M[(static_cast<size_t>(b) * K + k) * C + c];
}

// e (K) = exp(-sum_c |Mt[i,c,:] - Mt[j,c,:]|).
void pair_similarity(const float* __restrict mi, const float* __restrict mj, float* __restrict e,
                     int K, int C) {
  for (int k = 0; k < K; ++k) e[k] = 0.0f;
  for (int c = 0; c < C; ++c)
    for (int k = 0; k < K; ++k) e[k] += std::fabs(mi[c * K + k] - mj[c * K + k]);
  for (int k = 0; k < K; ++k) e[k] = std::exp(-e[k]);
}

}  // namespace

void mbd_forward_cpu(const float* M, float* O, int groups, int B, int K, int C) {
  const size_t KC = static_cast<size_t>(K) * C;
  std::vector<float> Mt(B * KC), e(K);
  for (int g = 0; g < groups; ++g) {
    to_ckk(M + g * B * KC, Mt.data(), B, K, C);
    float* Og = O + static_cast<size_t>(g) * B * K;
    for (size_t i = 0; i < static_cast<size_t>(B) * K; ++i) Og[i] = 0.0f;
    for (int i = 0; i < B; ++i) {
      float* __restrict oi = Og + static_cast<size_t>(i) * K;
      for (int j = i + 1; j < B; ++j) {
        float* __restrict oj = Og + static_cast<size_t>(j) * K;
        pair_similarity(&Mt[i * KC], &Mt[j * KC], e.data(), K, C);
        for (int k = 0; k < K; ++k) {
          oi[k] += e[k];
          oj[k] += e[k];
        }
      }
    }
  }
}

// dM[i,k,c] = sum_{j != i} (dO[i,k] + dO[j,k]) e_ijk * -sign(M[i,k,c] - M[j,k,c]).
void mbd_backward_cpu(const float* M, const float* dO, float* dM, int groups, int B, int K, int C) {
  const size_t KC = static_cast<size_t>(K) * C;
  std::vector<float> Mt(B * KC), dMt(B * KC), e(K);
  for (int g = 0; g < groups; ++g) {
    to_ckk(M + g * B * KC, Mt.data(), B, K, C);
    std::fill(dMt.begin(), dMt.end(), 0.0f);
    const float* dOg = dO + static_cast<size_t>(g) * B * K;
    for (int i = 0; i < B; ++i) {
      const float* mi = &Mt[i * KC];
      float* __restrict di = &dMt[i * KC];
      for (int j = i + 1; j < B; ++j) {
        const float* mj = &Mt[j * KC];
        float* __restrict dj = &dMt[j * KC];
        pair_similarity(mi, mj, e.data(), K, C);
        for (int k = 0; k < K; ++k) e[k] *= dOg[i * K + k] + dOg[j * K + k];
        for (int c = 0; c < C; ++c)
          for (int k = 0; k < K; ++k) {
            const float diff = mi[c * K + k] - mj[c * K + k];
            const float s = diff > 0.0f ? e[k] : (diff < 0.0f ? -e[k] : 0.0f);
            di[c * K + k] -= s;
            dj[c * K + k] += s;
          }
      }
    }
    float* dMg = dM + g * B * KC;
    for (int b = 0; b < B; ++b)
      for (int k = 0; k < K; ++k)
        for (int c = 0; c < C; ++c)
          dMg[(static_cast<size_t>(b) * K + k) * C + c] =
              dMt[(static_cast<size_t>(b) * C + c) * K + k];
  }
}

}  // namespace mnistgan
