// host_device.h: what a function needs to be compiled both for the CPU and, through
// kernels/, for the GPU (formulas.h, philox.h), and the rounding helpers they share.
//
// MNISTGAN_HD marks such a function: __host__ __device__ under nvcc, plain inline in C++
// (the CPU backend, and the CUDA emulation, whose __host__/__device__ are empty anyway).
//
// The *_rn helpers are one IEEE operation each, rounded to nearest, never fused with a
// neighbour into an FMA: __fadd_rn and friends on the device (nvcc contracts a*b+c in
// device code otherwise), the plain operator on the host, where CMakeLists.txt compiles
// C++ with -ffp-contract=off. Where a formula writes a plain operator instead, each side
// rounds as its compiler does: unfused on the host, possibly fused by nvcc on the device.
#pragma once

#include <cstdint>  // uint32_t

#if defined(__CUDACC__)
#define MNISTGAN_HD __host__ __device__ __forceinline__
#else
#define MNISTGAN_HD inline
#endif

// The device intrinsics only in nvcc's device pass: the emulation defines __CUDA_ARCH__ as
// well, but its intrinsics are the plain operators (tests/cuda_emu/cuda_runtime.h).
#if defined(__CUDA_ARCH__) && !defined(MNISTGAN_CUDA_EMU)
#define MNISTGAN_DEVICE_INTRINSICS 1
#else
#define MNISTGAN_DEVICE_INTRINSICS 0
#endif

namespace mnistgan {

#if MNISTGAN_DEVICE_INTRINSICS
MNISTGAN_HD float add_rn(float a, float b) { return __fadd_rn(a, b); }
MNISTGAN_HD float sub_rn(float a, float b) { return __fsub_rn(a, b); }
MNISTGAN_HD float mul_rn(float a, float b) { return __fmul_rn(a, b); }
MNISTGAN_HD float div_rn(float a, float b) { return __fdiv_rn(a, b); }
MNISTGAN_HD float sqrt_rn(float a) { return __fsqrt_rn(a); }
// The quiet NaN 0x7fc00000.
MNISTGAN_HD float quiet_nan() { return __int_as_float(0x7fc00000); }
#else
MNISTGAN_HD float add_rn(float a, float b) { return a + b; }
MNISTGAN_HD float sub_rn(float a, float b) { return a - b; }
MNISTGAN_HD float mul_rn(float a, float b) { return a * b; }
MNISTGAN_HD float div_rn(float a, float b) { return a / b; }
MNISTGAN_HD float sqrt_rn(float a) { return __builtin_sqrtf(a); }
MNISTGAN_HD float quiet_nan() { return __builtin_nanf(""); }
#endif

}  // namespace mnistgan
