// cuda_runtime.h (emulation): the subset of the CUDA runtime and device built-ins that
// kernels/ and host/backends/cuda_backend.cu use, for compiling them as ordinary C++ on a CPU.
//
// Not NVIDIA's header: this directory is on the include path only of the emulated build
// (-DMNISTGAN_CUDA_EMU=ON), which also defines MNISTGAN_CUDA_EMU and __CUDA_ARCH__ = 900.
// How the emulation works (fibers per block, barriers, shuffled order, streams, graphs)
// is described in README.md, "CUDA emulation"; the machinery is in emu.cpp.
#pragma once

#include <math.h>  // expf, fabsf, log1pf, tanhf, fmaf, fmaxf, isfinite, pow, sqrt (global)

#include <cstddef>      // size_t
#include <cstdint>      // uint64_t
#include <cstring>      // std::memcpy
#include <functional>   // std::function
#include <map>          // std::map
#include <string>       // std::string
#include <tuple>        // std::tuple, std::apply
#include <type_traits>  // std::decay_t, std::is_pointer_v
#include <utility>      // std::forward, std::index_sequence
#include <vector>       // std::vector

#if !defined(MNISTGAN_CUDA_EMU)
#error "tests/cuda_emu/ is the CPU emulation of CUDA: build with -DMNISTGAN_CUDA_EMU"
#endif

// ---- qualifiers ----------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// One copy per kernel instantiation, shared by all the fibers of the running block (blocks
// run one at a time), so it behaves as per-block shared memory. Every such static lies in
// the section mnistgan_emu_shared (GCC drops the attribute in a function template: emu.cpp
// finds those by name), which the emulator fills with 0xff bytes (NaN in every float)
// before each block, so a read before the block's own write sees NaN, not a stale
// value of the previous block or launch (and, under TSan, its shadow is reset, so two blocks
// never race on it). No initialiser is allowed, as in CUDA.
#define __shared__ __attribute__((section("mnistgan_emu_shared"))) static
#define __align__(n) __attribute__((aligned(n)))

// ---- vector types --------------------------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

// ---- error codes and runtime types ---------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureWrongThread = 908,
};
using cudaError = cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaMemoryType {
  cudaMemoryTypeUnregistered = 0,
  cudaMemoryTypeHost = 1,
  cudaMemoryTypeDevice = 2,
  cudaMemoryTypeManaged = 3,
};
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};
constexpr unsigned cudaStreamDefault = 0x0, cudaStreamNonBlocking = 0x1;

namespace cuda_emu {
struct Stream;
struct Graph;
struct Event;
}  // namespace cuda_emu
using cudaStream_t = cuda_emu::Stream*;
using cudaGraph_t = cuda_emu::Graph*;
using cudaGraphExec_t = cuda_emu::Graph*;
struct CUgraphNode_st;
using cudaGraphNode_t = CUgraphNode_st*;
using cudaEvent_t = cuda_emu::Event*;

struct cudaPointerAttributes {
  cudaMemoryType type = cudaMemoryTypeUnregistered;
  int device = 0;
  void* devicePointer = nullptr;
  void* hostPointer = nullptr;
};
struct cudaDeviceProp {
  char name[256] = {};
  size_t totalGlobalMem = 0;
  size_t sharedMemPerBlock = 0;
  int warpSize = 32;
  int maxThreadsPerBlock = 1024;
  int maxThreadsDim[3] = {};
  int maxGridSize[3] = {};
  int major = 0, minor = 0;
  int multiProcessorCount = 0;
};
struct cudaFuncAttributes {
  size_t sharedSizeBytes = 0;
  int maxThreadsPerBlock = 1024;
  int numRegs = 0;
  int ptxVersion = 0, binaryVersion = 0;
};

// ---- the emulator's interface (emu.cpp) -------------------------------------------------------
namespace cuda_emu {

// Built-ins of the fiber that is running now.
struct ThreadState {
  uint3 thread_idx, block_idx, block_dim, grid_dim;
};
extern ThreadState* g_current;

// A pointer-typed kernel parameter: its value and its 0-based position in the parameter list.
struct PointerArg {
  const void* p;
  int index;
};

// Runs `body` as a grid: every block's threads as fibers (see emu.cpp); `entry` is the
// kernel's address (its templated __shared__ statics are found by it). Enqueued on
// `stream` (recorded when it is capturing). Sets the last error on a bad configuration.
// Each of `pointers` must be null or point into a live device (or pinned host) allocation,
// or the launch fails with cudaErrorIllegalAddress and a line naming the kernel and argument.
void enqueue_kernel(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                    std::function<void()> body, const void* entry, const char* what,
                    std::vector<PointerArg> pointers = {});

// Device-side collectives, called by the fibers.
void syncthreads();
void syncwarp(unsigned mask);
// Publishes 8 bytes for this lane, waits for the warp, returns lane `src`'s 8 bytes
// (its own when src is out of [0, width) of its segment), then waits again so no lane
// overwrites its slot before every lane has read.
uint64_t warp_exchange(unsigned mask, uint64_t mine, int src_lane);
// Publishes one pointer for this lane and waits for the warp; read the others with
// warp_slot(lane) until warp_done() (a second barrier). For WMMA.
void warp_publish(unsigned mask, const void* mine);
const void* warp_slot(int lane);
void warp_done(unsigned mask);
int lane_id();

// Counters for tests (what actually ran).
struct Stats {
  unsigned long long kernels = 0, blocks = 0, threads = 0, block_barriers = 0, warp_ops = 0,
                     mma_ops = 0, gemms = 0;
  // Stream-ordered memsets and copies, counted when they run (as kernels are): a captured
  // graph's memset and copy nodes are work items of a step as its kernels are.
  unsigned long long memsets = 0, copies = 0;
  // Kernel launches by the kernel's name as written at the launch (MNISTGAN_LAUNCH).
  std::map<std::string, unsigned long long> kernels_by_name;
};
Stats& stats();

// Launch helper behind MNISTGAN_LAUNCH (kernels/launch.cuh): converts the arguments to the
// kernel's parameter types once, as a real launch copies them, and runs it on every thread.
template <class... Params>
struct Launcher {
  void (*kernel)(Params...);
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;
  const char* name;  // the kernel as written at the launch, for fault messages
  template <class... Args>
  void operator()(Args&&... args) const {
    static_assert(sizeof...(Args) == sizeof...(Params), "kernel launched with the wrong arity");
    std::tuple<std::decay_t<Params>...> copied(std::forward<Args>(args)...);
    auto k = kernel;
    // Every pointer argument, as the kernel will see it: checked at the launch and again
    // when the launch runs (a graph replays it later, after buffers may have been freed).
    std::vector<PointerArg> pointers;
    collect_pointers(copied, pointers, std::index_sequence_for<Params...>{});
    enqueue_kernel(
        grid, block, shared_bytes, stream, [k, copied] { std::apply(k, copied); },
        reinterpret_cast<const void*>(k), name, std::move(pointers));
  }

 private:
  template <class Tuple, size_t... I>
  static void collect_pointers(const Tuple& t, std::vector<PointerArg>& out,
                               std::index_sequence<I...>) {
    (add_pointer(std::get<I>(t), static_cast<int>(I), out), ...);
  }
  template <class T>
  static void add_pointer(const T& v, int index, std::vector<PointerArg>& out) {
    if constexpr (std::is_pointer_v<T>)
      out.push_back({reinterpret_cast<const void*>(v), index});
  }
};
template <class... Params>
Launcher<Params...> launch(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                           const char* name, void (*kernel)(Params...)) {
  return Launcher<Params...>{kernel, grid, block, shared_bytes, stream, name};
}

}  // namespace cuda_emu

// ---- device built-ins -------------------------------------------------------------------------
#define threadIdx (::cuda_emu::g_current->thread_idx)
#define blockIdx (::cuda_emu::g_current->block_idx)
#define blockDim (::cuda_emu::g_current->block_dim)
#define gridDim (::cuda_emu::g_current->grid_dim)
#define warpSize 32

inline void __syncthreads() { cuda_emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { cuda_emu::syncwarp(mask); }
// Fibers of a block run on one OS thread and switch only at barriers: every memory access
// is already visible to the others, so a fence has nothing to order.
inline void __threadfence() {}
inline void __threadfence_block() {}

template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &var, sizeof(T));
  const int lane = cuda_emu::lane_id(), seg = lane % width;
  const int src = seg + static_cast<int>(delta) < width ? lane + static_cast<int>(delta) : -1;
  bits = cuda_emu::warp_exchange(mask, bits, src);
  std::memcpy(&var, &bits, sizeof(T));
  return var;
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
  uint64_t bits = 0;
  std::memcpy(&bits, &var, sizeof(T));
  const int lane = cuda_emu::lane_id(), src = lane ^ lane_mask;
  bits = cuda_emu::warp_exchange(mask, bits, (src / width == lane / width) ? src : -1);
  std::memcpy(&var, &bits, sizeof(T));
  return var;
}
template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
  uint64_t bits = 0;
  std::memcpy(&bits, &var, sizeof(T));
  const int lane = cuda_emu::lane_id();
  bits = cuda_emu::warp_exchange(mask, bits, (lane / width) * width + src_lane % width);
  std::memcpy(&var, &bits, sizeof(T));
  return var;
}

// Atomics: GCC's __atomic builtins (acquire-release, on the value's bits), so a ThreadSanitizer
// build sees them as atomic accesses: two atomics never race, an atomic and a plain access
// to one address from unordered threads do. Fibers never switch inside one of these.
namespace cuda_emu {
template <class T, class F>
T atomic_update(T* address, F f) {  // *address = f(old) as one atomic step; returns old
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "atomics on 4- or 8-byte values");
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  Bits* bits = reinterpret_cast<Bits*>(address);
  Bits expected = __atomic_load_n(bits, __ATOMIC_ACQUIRE);
  for (;;) {
    T old, next;
    std::memcpy(&old, &expected, sizeof(T));
    next = f(old);
    Bits desired;
    std::memcpy(&desired, &next, sizeof(T));
    if (__atomic_compare_exchange_n(bits, &expected, desired, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
      return old;
  }
}
}  // namespace cuda_emu
template <class T>
T atomicAdd(T* address, T value) {
  return cuda_emu::atomic_update(address, [value](T old) { return old + value; });
}
template <class T>
T atomicExch(T* address, T value) {
  return cuda_emu::atomic_update(address, [value](T) { return value; });
}
template <class T>
T atomicMax(T* address, T value) {
  return cuda_emu::atomic_update(address, [value](T old) { return value > old ? value : old; });
}

// IEEE single operations with round-to-nearest and no contraction into FMA (the emulated
// build compiles with -ffp-contract=off, so plain operators are never fused either).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
inline int __float_as_int(float f) {
  int i;
  std::memcpy(&i, &f, 4);
  return i;
}
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

// ---- runtime API ------------------------------------------------------------------------------
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaFuncGetAttributes_emu(cudaFuncAttributes* attributes, const void* func);
template <class F>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, F* func) {
  return cudaFuncGetAttributes_emu(attributes, reinterpret_cast<const void*>(func));
}

cudaError_t cudaMalloc(void** p, size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaStreamQuery(cudaStream_t stream);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                 unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
// The number of recorded operations (kernels, memsets, copies, cuBLAS calls) in *num_nodes;
// nodes must be nullptr (handles of single nodes are not emulated).
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* num_nodes);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

namespace cuda_emu {
// Queues a host-side operation (a cuBLAS call) on `stream` like a kernel; returns the
// error a real enqueue would (e.g. the stream is in an invalidated capture).
cudaError_t enqueue_host_op(cudaStream_t stream, std::function<void()> op);
// True for memory from cudaMalloc (device memory), anywhere inside a live allocation.
bool is_device_pointer(const void* p);
// "" when p is null or inside a live device or pinned allocation (its end included: an empty
// range may start there); otherwise what p is (host memory, freed device memory).
std::string check_device_pointer(const void* p);
}  // namespace cuda_emu
