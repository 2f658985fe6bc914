// cpu_mbd.h: the CPU backend's minibatch-discrimination forward and backward (the math
// and shapes are in backend.h). In a file of its own because it is compiled with
// -ffast-math so the exp() over K kernels vectorises (glibc's libmvec); nothing else is.
#pragma once

namespace mnistgan {

// M (groups*B, K*C) -> O (groups*B, K).
void mbd_forward_cpu(const float* M, float* O, int groups, int B, int K, int C);
// M (groups*B, K*C), dO (groups*B, K) -> dM (groups*B, K*C).
void mbd_backward_cpu(const float* M, const float* dO, float* dM, int groups, int B, int K, int C);

}  // namespace mnistgan
