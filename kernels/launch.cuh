// launch.cuh: MNISTGAN_LAUNCH, the one way kernels are launched in this project.
//
//   MNISTGAN_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...);
//
// With nvcc it is exactly kernel<<<grid, block, shared_bytes, stream>>>(args...). In the
// CPU emulation build (-DMNISTGAN_CUDA_EMU, tests/cuda_emu/) the same source compiles as
// plain C++ and the macro calls the emulator's launcher instead, so kernels/*.cu exist
// once for both. The kernel comes last so that a template kernel's commas
// (linear_v2_kernel<64, 64, 16, 4, 4, true>) need no extra parentheses; a grid expression
// with template commas must be hoisted into a local first.
#pragma once

#if defined(MNISTGAN_CUDA_EMU)
#define MNISTGAN_LAUNCH(grid, block, shared_bytes, stream, ...) \
  ::cuda_emu::launch((grid), (block), (shared_bytes), (stream), #__VA_ARGS__, __VA_ARGS__)
#else
#define MNISTGAN_LAUNCH(grid, block, shared_bytes, stream, ...) \
  __VA_ARGS__<<<(grid), (block), (shared_bytes), (stream)>>>
#endif
