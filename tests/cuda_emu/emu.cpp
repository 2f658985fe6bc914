// emu.cpp: the machinery behind tests/cuda_emu/cuda_runtime.h.
//
//   fibers     each block's threads run as fibers on the calling OS thread (a small
//              x86-64 context switch below; ucontext elsewhere), one block at a time.
//   barriers   __syncthreads waits for every thread of the block, a warp collective for
//              every lane of its warp; a thread that exits while others wait at a barrier,
//              or threads waiting at different barriers, end the launch with an error.
//   order      between barriers the runnable threads run in an order shuffled by
//              MNISTGAN_EMU_SEED (default 1), and the blocks of a grid in a shuffled order.
//   memory     device memory is host heap memory (ASan sees overruns), filled with 0xff
//              bytes (a NaN in every float) when allocated; copies check their ranges.
//   streams    work on a created stream runs when it is enqueued; a capturing stream
//              records it into a graph instead, and a graph launch replays the records.
//              Work on the legacy default stream (stream 0, cudaMemcpy, cudaMemset) is
//              deferred until something orders it: a synchronisation of the legacy stream or
//              the device, a blocking stream's work, a synchronous device-to-host copy,
//              cudaFree. Non-blocking streams do not wait for it, as on a GPU, so a kernel on
//              one that reads what a legacy-stream copy writes sees the old bytes.
//   errors     a failed launch is sticky, as on a GPU: every later call returns it.
//              MNISTGAN_EMU_FAULT_AT_KERNEL=N makes the process's N-th kernel launch fail so
//              (for tests of how a program ends after a device fault).
#include <sys/mman.h>  // mmap, mprotect
#include <unistd.h>    // sysconf

#include <algorithm>  // std::shuffle
#include <chrono>     // std::chrono::steady_clock
#include <cstdio>     // std::fprintf
#include <cstdlib>    // std::getenv, posix_memalign
#include <map>        // std::map
#include <memory>     // std::unique_ptr, std::make_shared
#include <mutex>      // std::mutex
#include <random>     // std::mt19937_64
#include <string>
#include <thread>  // std::this_thread::get_id
#include <vector>

#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#define MNISTGAN_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MNISTGAN_EMU_ASAN 1
#endif
#endif
#if defined(MNISTGAN_EMU_ASAN)
#include <sanitizer/asan_interface.h>         // __asan_unpoison_memory_region
#include <sanitizer/common_interface_defs.h>  // __sanitizer_start/finish_switch_fiber
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace cuda_emu {

ThreadState* g_current = nullptr;

namespace {

// ---- errors -----------------------------------------------------------------------------------
cudaError_t g_last_error = cudaSuccess;    // cleared by cudaGetLastError
cudaError_t g_sticky_error = cudaSuccess;  // a failed kernel: every later call returns it

cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) g_last_error = e;
  return e;
}

// ---- context switch ---------------------------------------------------------------------------
#if defined(__x86_64__)
// switch_context(&save_sp, next_sp): pushes the callee-saved registers and the FP control
// words, saves rsp, loads next_sp and pops the same frame from it. A new fiber's stack is
// prepared with that frame and fiber_entry as the return address.
extern "C" void mnistgan_emu_switch(void** save_sp, void* next_sp);
asm(R"(
  .text
  .globl mnistgan_emu_switch
  .type mnistgan_emu_switch,@function
mnistgan_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size mnistgan_emu_switch,.-mnistgan_emu_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");
#endif

enum class State { kReady, kAtSyncthreads, kAtWarp, kDone };

struct Fiber {
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t ctx;
#endif
  char* stack = nullptr;  // usable region (a guard page lies below it)
  size_t stack_bytes = 0;
  ThreadState builtins{};
  int tid = 0;
  State state = State::kReady;
  unsigned warp_mask = 0;
  bool failed = false;
#if defined(MNISTGAN_EMU_ASAN)
  void* fake_stack = nullptr;
#endif
};

#if defined(MNISTGAN_EMU_ASAN)
constexpr size_t kStackBytes = 512u << 10;  // instrumented frames are several times larger
#else
constexpr size_t kStackBytes = 128u << 10;
#endif

struct Scheduler {
  std::vector<std::unique_ptr<Fiber>> pool;  // reused across launches: stacks mapped once
  Fiber* running = nullptr;
#if defined(__x86_64__)
  void* sched_sp = nullptr;
#else
  ucontext_t sched_ctx;
#endif
#if defined(MNISTGAN_EMU_ASAN)
  const void* sched_stack_bottom = nullptr;
  size_t sched_stack_size = 0;
  void* sched_fake_stack = nullptr;
#endif
  // The running block.
  const std::function<void()>* body = nullptr;
  int nthreads = 0;
  std::vector<uint64_t> slots;         // warp_exchange: one word per thread
  std::vector<const void*> ptr_slots;  // warp_publish: one pointer per thread
  std::string error;                   // set by a fiber that found a fault
  std::mt19937_64 rng;
  bool seeded = false;
};
Scheduler& sched() {
  static Scheduler s;
  return s;
}

uint64_t seed_from_env() {
  const char* s = std::getenv("MNISTGAN_EMU_SEED");
  return s != nullptr && *s != '\0' ? std::strtoull(s, nullptr, 10) : 1;
}

// MNISTGAN_EMU_FAULT_AT_KERNEL: the 1-based kernel launch that faults; 0 (unset): none.
unsigned long long fault_at_kernel() {
  static const unsigned long long n = [] {
    const char* s = std::getenv("MNISTGAN_EMU_FAULT_AT_KERNEL");
    return s != nullptr && *s != '\0' ? std::strtoull(s, nullptr, 10) : 0ull;
  }();
  return n;
}

std::mt19937_64& rng() {
  Scheduler& s = sched();
  if (!s.seeded) s.rng.seed(seed_from_env()), s.seeded = true;
  return s.rng;
}

Fiber* fiber(size_t i) {
  Scheduler& s = sched();
  while (s.pool.size() <= i) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* m = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      std::fprintf(stderr, "cuda_emu: cannot map a fiber stack\n");
      std::abort();
    }
    mprotect(m, page, PROT_NONE);  // a stack overflow faults instead of corrupting memory
    auto f = std::make_unique<Fiber>();
    f->stack = static_cast<char*>(m) + page;
    f->stack_bytes = kStackBytes;
    s.pool.push_back(std::move(f));
  }
  return s.pool[i].get();
}

// Into and out of fibers, with the ASan fiber annotations that keep its stack
// bookkeeping right across the switch.
void switch_to_fiber(Fiber* f) {
  Scheduler& s = sched();
  s.running = f;
  g_current = &f->builtins;
#if defined(MNISTGAN_EMU_ASAN)
  __sanitizer_start_switch_fiber(&s.sched_fake_stack, f->stack, f->stack_bytes);
#endif
#if defined(__x86_64__)
  mnistgan_emu_switch(&s.sched_sp, f->sp);
#else
  swapcontext(&s.sched_ctx, &f->ctx);
#endif
#if defined(MNISTGAN_EMU_ASAN)
  __sanitizer_finish_switch_fiber(s.sched_fake_stack, nullptr, nullptr);
#endif
  s.running = nullptr;
  g_current = nullptr;
}

void switch_to_scheduler(bool exiting) {
  Scheduler& s = sched();
  Fiber* f = s.running;
#if defined(MNISTGAN_EMU_ASAN)
  __sanitizer_start_switch_fiber(exiting ? nullptr : &f->fake_stack, s.sched_stack_bottom,
                                 s.sched_stack_size);
#else
  (void)exiting;
#endif
#if defined(__x86_64__)
  mnistgan_emu_switch(&f->sp, s.sched_sp);
#else
  swapcontext(&f->ctx, &s.sched_ctx);
#endif
#if defined(MNISTGAN_EMU_ASAN)
  __sanitizer_finish_switch_fiber(f->fake_stack, &s.sched_stack_bottom, &s.sched_stack_size);
#endif
}

[[noreturn]] void fiber_main() {
#if defined(MNISTGAN_EMU_ASAN)
  Scheduler& s0 = sched();
  __sanitizer_finish_switch_fiber(nullptr, &s0.sched_stack_bottom, &s0.sched_stack_size);
#endif
  (*sched().body)();
  sched().running->state = State::kDone;
  switch_to_scheduler(true);
  __builtin_unreachable();
}

#if defined(__x86_64__)
extern "C" void mnistgan_emu_fiber_entry() { fiber_main(); }
#endif

void prepare(Fiber* f) {
#if defined(MNISTGAN_EMU_ASAN)
  __asan_unpoison_memory_region(f->stack, f->stack_bytes);  // frames of abandoned fibers
#endif
#if defined(__x86_64__)
  // Frame popped by mnistgan_emu_switch: FP control words, r15..r12, rbx, rbp, return
  // address. After the ret, rsp % 16 == 8, as at the entry of any function.
  uintptr_t top = reinterpret_cast<uintptr_t>(f->stack + f->stack_bytes) & ~uintptr_t{15};
  uint64_t* sp = reinterpret_cast<uint64_t*>(top) - 1;  // so that rsp % 16 == 8 after the ret
  *--sp = reinterpret_cast<uint64_t>(&mnistgan_emu_fiber_entry);
  for (int r = 0; r < 6; ++r) *--sp = 0;
  *--sp = 0x037F00001F80ull;  // mxcsr 0x1f80 (low word), x87 control word 0x037f (high)
  f->sp = sp;
#else
  getcontext(&f->ctx);
  f->ctx.uc_stack.ss_sp = f->stack;
  f->ctx.uc_stack.ss_size = f->stack_bytes;
  f->ctx.uc_link = nullptr;
  makecontext(&f->ctx, reinterpret_cast<void (*)()>(&fiber_main), 0);
#endif
#if defined(MNISTGAN_EMU_ASAN)
  f->fake_stack = nullptr;
#endif
}

[[noreturn]] void device_fault(const std::string& what);

Fiber& self() {
  Fiber* f = sched().running;
  if (f == nullptr) {
    std::fprintf(stderr, "cuda_emu: a device built-in was called outside a kernel\n");
    std::abort();
  }
  return *f;
}

void wait(State state, unsigned mask = 0) {
  Fiber& f = self();
  f.state = state;
  f.warp_mask = mask;
  switch_to_scheduler(false);
  if (f.failed) device_fault("");  // the scheduler abandoned this block; never returns
}

// A fault found inside a fiber: record it and leave the block for good.
[[noreturn]] void device_fault(const std::string& what) {
  Scheduler& s = sched();
  if (!what.empty() && s.error.empty()) s.error = what;
  s.running->failed = true;
  s.running->state = State::kDone;
  switch_to_scheduler(true);
  __builtin_unreachable();
}

std::string describe(const Fiber& f) {
  const ThreadState& b = f.builtins;
  return "thread (" + std::to_string(b.thread_idx.x) + "," + std::to_string(b.thread_idx.y) + "," +
         std::to_string(b.thread_idx.z) + ") of block (" + std::to_string(b.block_idx.x) + "," +
         std::to_string(b.block_idx.y) + "," + std::to_string(b.block_idx.z) + ")";
}

// Releases every barrier that all its threads have reached. Returns "" or the fault.
std::string release_barriers(bool& released) {
  Scheduler& s = sched();
  released = false;
  const int n = s.nthreads;
  for (int w0 = 0; w0 < n; w0 += 32) {
    const int w1 = std::min(n, w0 + 32);
    int waiting = 0, done = 0;
    for (int t = w0; t < w1; ++t) {
      const State st = fiber(t)->state;
      waiting += st == State::kAtWarp;
      done += st == State::kDone;
    }
    if (waiting == 0 || waiting + done != w1 - w0) continue;
    if (done != 0)
      return "warp collective in warp " + std::to_string(w0 / 32) + ": " + std::to_string(done) +
             " lane(s) exited while " + std::to_string(waiting) +
             " wait (the mask names lanes that never arrive)";
    for (int t = w0; t < w1; ++t) {
      const unsigned mask = fiber(t)->warp_mask;
      const unsigned lanes = w1 - w0 == 32 ? 0xffffffffu : (1u << (w1 - w0)) - 1;
      if (mask != fiber(w0)->warp_mask || (mask & lanes) != lanes)
        return "warp collective in warp " + std::to_string(w0 / 32) +
               " with a partial or differing mask (the emulator supports full warps only)";
    }
    for (int t = w0; t < w1; ++t) fiber(t)->state = State::kReady;
    released = true;
  }
  int waiting = 0, done = 0;
  for (int t = 0; t < n; ++t) {
    waiting += fiber(t)->state == State::kAtSyncthreads;
    done += fiber(t)->state == State::kDone;
  }
  if (waiting != 0 && waiting + done == n) {
    if (done != 0) {
      for (int t = 0; t < n; ++t)
        if (fiber(t)->state == State::kDone)
          return "__syncthreads: " + std::to_string(waiting) + " thread(s) wait while " +
                 std::to_string(done) + " exited, e.g. " + describe(*fiber(t)) +
                 " (a barrier in divergent code)";
    }
    for (int t = 0; t < n; ++t) fiber(t)->state = State::kReady;
    ++stats().block_barriers;
    released = true;
  }
  if (!released && done != n) {
    int at_sync = 0, at_warp = 0;
    for (int t = 0; t < n; ++t) {
      at_sync += fiber(t)->state == State::kAtSyncthreads;
      at_warp += fiber(t)->state == State::kAtWarp;
    }
    return "deadlock: " + std::to_string(at_sync) + " thread(s) at __syncthreads, " +
           std::to_string(at_warp) + " at a warp collective, " + std::to_string(done) +
           " exited (threads of one warp or block wait at different barriers)";
  }
  return "";
}

// Runs one block to completion. Returns "" or the fault.
std::string run_block(dim3 grid, dim3 block, uint3 block_idx) {
  Scheduler& s = sched();
  const int n = static_cast<int>(block.x * block.y * block.z);
  s.nthreads = n;
  s.error.clear();
  for (int t = 0; t < n; ++t) {
    Fiber* f = fiber(t);
    prepare(f);
    f->tid = t;
    f->state = State::kReady;
    f->failed = false;
    f->builtins.thread_idx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
    f->builtins.block_idx = block_idx;
    f->builtins.block_dim = {block.x, block.y, block.z};
    f->builtins.grid_dim = {grid.x, grid.y, grid.z};
  }
  std::vector<int> order;
  order.reserve(n);
  for (;;) {
    order.clear();
    for (int t = 0; t < n; ++t)
      if (fiber(t)->state == State::kReady) order.push_back(t);
    if (order.empty()) {
      bool released = false;
      const std::string fault = release_barriers(released);
      if (!fault.empty()) return fault;
      if (!released) return "";  // every thread is done
      continue;
    }
    std::shuffle(order.begin(), order.end(), rng());
    for (int t : order) {
      Fiber* f = fiber(t);
      if (f->state != State::kReady) continue;
      switch_to_fiber(f);
      if (!s.error.empty()) {
        // Abandon the block: mark everyone so a resumed fiber would leave at once.
        for (int u = 0; u < n; ++u) fiber(u)->failed = true;
        return s.error;
      }
    }
  }
}

void run_grid(dim3 grid, dim3 block, const std::function<void()>& body, const char* what) {
  if (g_sticky_error != cudaSuccess) return;  // a faulted context runs nothing more
  Scheduler& s = sched();
  s.body = &body;
  const int n = static_cast<int>(block.x * block.y * block.z);
  s.slots.assign(n, 0);
  s.ptr_slots.assign(n, nullptr);
  const size_t nblocks = static_cast<size_t>(grid.x) * grid.y * grid.z;
  std::vector<size_t> blocks(nblocks);
  for (size_t i = 0; i < nblocks; ++i) blocks[i] = i;
  std::shuffle(blocks.begin(), blocks.end(), rng());
  ++stats().kernels_by_name[what];
  if (++stats().kernels == fault_at_kernel()) {
    std::fprintf(stderr,
                 "cuda_emu: %s failed: injected fault (MNISTGAN_EMU_FAULT_AT_KERNEL=%llu)\n", what,
                 fault_at_kernel());
    g_sticky_error = set_error(cudaErrorLaunchFailure);
    s.body = nullptr;
    return;
  }
  for (size_t i : blocks) {
    const uint3 idx{static_cast<unsigned>(i % grid.x), static_cast<unsigned>(i / grid.x % grid.y),
                    static_cast<unsigned>(i / (static_cast<size_t>(grid.x) * grid.y))};
    const std::string fault = run_block(grid, block, idx);
    ++stats().blocks;
    stats().threads += n;
    if (!fault.empty()) {
      std::fprintf(stderr,
                   "cuda_emu: %s failed in block (%u,%u,%u) of grid (%u,%u,%u) x block "
                   "(%u,%u,%u): %s\n",
                   what, idx.x, idx.y, idx.z, grid.x, grid.y, grid.z, block.x, block.y, block.z,
                   fault.c_str());
      g_sticky_error = set_error(cudaErrorLaunchFailure);
      break;
    }
  }
  s.body = nullptr;
}

// ---- memory -----------------------------------------------------------------------------------
std::map<uintptr_t, size_t>& allocations() {  // start -> bytes
  static std::map<uintptr_t, size_t> m;
  return m;
}
std::map<uintptr_t, size_t>& pinned() {
  static std::map<uintptr_t, size_t> m;
  return m;
}

// The allocation that holds [p, p + bytes) entirely, if any.
bool inside(const std::map<uintptr_t, size_t>& m, const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = m.upper_bound(a);
  if (it == m.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + std::max<size_t>(it->second, 1);
}

// ---- streams and graphs -----------------------------------------------------------------------
using Op = std::function<void()>;

}  // namespace

struct Graph {
  std::vector<Op> ops;
};
struct Stream {
  unsigned flags = 0;
  Graph* capture = nullptr;  // recording when non-null
  bool invalidated = false;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id capture_thread;
};
struct Event {
  std::chrono::steady_clock::time_point when;
  bool recorded = false;
};

namespace {

Stream& legacy_stream() {
  static Stream s;
  return s;
}
Stream* resolve(cudaStream_t stream) { return stream != nullptr ? stream : &legacy_stream(); }

// Legacy-stream work that nothing has ordered yet, in issue order.
std::vector<Op>& legacy_pending() {
  static std::vector<Op> v;
  return v;
}
void flush_legacy() {
  std::vector<Op> ops;
  ops.swap(legacy_pending());
  for (Op& op : ops) op();
}

std::vector<Stream*>& live_streams() {
  static std::vector<Stream*> v{&legacy_stream()};
  return v;
}

// The capture this thread has open in a mode that forbids unsafe calls, if any.
Stream* forbidding_capture() {
  for (Stream* s : live_streams())
    if (s->capture != nullptr && s->mode != cudaStreamCaptureModeRelaxed &&
        (s->mode == cudaStreamCaptureModeGlobal || s->capture_thread == std::this_thread::get_id()))
      return s;
  return nullptr;
}

// A call that is not allowed while a capture is open (a synchronisation, an allocation):
// as on a GPU, it fails and invalidates the capture.
cudaError_t check_capture_safe(const char* call) {
  Stream* s = forbidding_capture();
  if (s == nullptr) return cudaSuccess;
  std::fprintf(stderr, "cuda_emu: %s during a stream capture: not allowed, capture invalidated\n",
               call);
  s->invalidated = true;
  return set_error(cudaErrorStreamCaptureUnsupported);
}

cudaError_t enqueue(cudaStream_t stream, Op op) {
  if (g_sticky_error != cudaSuccess) return g_sticky_error;
  Stream* s = resolve(stream);
  if (s->capture != nullptr) {
    if (s->invalidated) return set_error(cudaErrorStreamCaptureInvalidated);
    s->capture->ops.push_back(std::move(op));
    return cudaSuccess;
  }
  if (s == &legacy_stream()) {
    // The legacy stream synchronises with every blocking stream; one in capture breaks it.
    if (cudaError_t e = check_capture_safe("work on the legacy default stream"); e != cudaSuccess)
      return e;
    legacy_pending().push_back(std::move(op));
    return g_sticky_error;
  }
  if ((s->flags & cudaStreamNonBlocking) == 0) flush_legacy();  // blocking streams wait for it
  op();
  return g_sticky_error;
}

cudaError_t check_stream(cudaStream_t stream) {
  if (stream == nullptr) return cudaSuccess;
  for (Stream* s : live_streams())
    if (s == stream) return cudaSuccess;
  return set_error(cudaErrorInvalidResourceHandle);
}

}  // namespace

void enqueue_kernel(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                    std::function<void()> body, const char* what) {
  const unsigned long long threads = static_cast<unsigned long long>(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    std::fprintf(stderr,
                 "cuda_emu: invalid launch configuration grid (%u,%u,%u) block (%u,%u,%u)\n",
                 grid.x, grid.y, grid.z, block.x, block.y, block.z);
    set_error(cudaErrorInvalidConfiguration);
    return;
  }
  if (shared_bytes != 0) {
    std::fprintf(stderr, "cuda_emu: dynamic shared memory is not emulated\n");
    set_error(cudaErrorInvalidConfiguration);
    return;
  }
  if (check_stream(stream) != cudaSuccess) return;
  std::string name = what;
  enqueue(stream, [grid, block, body = std::move(body), name] {
    run_grid(grid, block, body, name.c_str());
  });
}

void syncthreads() { wait(State::kAtSyncthreads); }

void syncwarp(unsigned mask) {
  ++stats().warp_ops;
  wait(State::kAtWarp, mask);
}

int lane_id() { return self().tid % 32; }

uint64_t warp_exchange(unsigned mask, uint64_t mine, int src_lane) {
  Scheduler& s = sched();
  const int tid = self().tid, w0 = tid - tid % 32;
  s.slots[tid] = mine;
  syncwarp(mask);
  const int src = w0 + src_lane;
  const uint64_t got = src_lane >= 0 && src_lane < 32 && src < s.nthreads ? s.slots[src] : mine;
  syncwarp(mask);
  return got;
}

void warp_publish(unsigned mask, const void* mine) {
  sched().ptr_slots[self().tid] = mine;
  syncwarp(mask);
}
const void* warp_slot(int lane) {
  Scheduler& s = sched();
  const int tid = self().tid, src = tid - tid % 32 + lane;
  if (src >= s.nthreads) device_fault("WMMA in a warp with fewer than 32 threads");
  return s.ptr_slots[src];
}
void warp_done(unsigned mask) { syncwarp(mask); }

void count_mma() { ++stats().mma_ops; }

Stats& stats() {
  static Stats s;
  return s;
}

cudaError_t enqueue_host_op(cudaStream_t stream, std::function<void()> op) {
  if (cudaError_t e = check_stream(stream); e != cudaSuccess) return e;
  return enqueue(stream, std::move(op));
}

bool is_device_pointer(const void* p) { return inside(allocations(), p, 1); }

bool device_range(const void* p, size_t bytes) { return inside(allocations(), p, bytes); }

}  // namespace cuda_emu

using cuda_emu::g_sticky_error;

// ---- runtime API ------------------------------------------------------------------------------

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInsufficientDriver:
      return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorInvalidResourceHandle:
      return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady:
      return "cudaErrorNotReady";
    case cudaErrorIllegalAddress:
      return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported:
      return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated:
      return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureWrongThread:
      return "cudaErrorStreamCaptureWrongThread";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorLaunchFailure:
      return "emulated kernel fault (see the cuda_emu line on stderr)";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "operation failed due to a previous error during capture";
    default:
      return cudaGetErrorName(e);
  }
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = g_sticky_error != cudaSuccess ? g_sticky_error : cuda_emu::g_last_error;
  cuda_emu::g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  return g_sticky_error != cudaSuccess ? g_sticky_error : cuda_emu::g_last_error;
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : cuda_emu::set_error(cudaErrorInvalidValue);
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* version) {
  *version = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = 13000;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return cuda_emu::set_error(cudaErrorInvalidValue);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "CPU emulation of sm_90");
  prop->totalGlobalMem = size_t{16} << 30;
  prop->sharedMemPerBlock = 48u << 10;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->major = 9;
  prop->minor = 0;
  // As an H100/H200: linear v2 picks 64x64 tiles only when they give >= 132 blocks, so both
  // of its tile sizes run in the tests.
  prop->multiProcessorCount = 132;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  if (cudaError_t e = cuda_emu::check_capture_safe("cudaDeviceSynchronize"); e != cudaSuccess)
    return e;
  cuda_emu::flush_legacy();
  return g_sticky_error;
}
cudaError_t cudaFuncGetAttributes_emu(cudaFuncAttributes* attributes, const void* func) {
  if (attributes == nullptr || func == nullptr) return cuda_emu::set_error(cudaErrorInvalidValue);
  *attributes = cudaFuncAttributes{};
  attributes->binaryVersion = attributes->ptxVersion = 90;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = nullptr;
  if (cudaError_t e = cuda_emu::check_capture_safe("cudaMalloc"); e != cudaSuccess) return e;
  if (g_sticky_error != cudaSuccess) return g_sticky_error;
  if (bytes == 0) return cudaSuccess;
  void* m = nullptr;
  if (posix_memalign(&m, 256, bytes) != 0) return cuda_emu::set_error(cudaErrorMemoryAllocation);
  std::memset(m, 0xff, bytes);  // NaN in every float: reads of unwritten memory show
  cuda_emu::allocations()[reinterpret_cast<uintptr_t>(m)] = bytes;
  *p = m;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (p == nullptr) return cudaSuccess;
  if (cudaError_t e = cuda_emu::check_capture_safe("cudaFree"); e != cudaSuccess) return e;
  auto& m = cuda_emu::allocations();
  auto it = m.find(reinterpret_cast<uintptr_t>(p));
  if (it == m.end()) {
    std::fprintf(stderr, "cuda_emu: cudaFree(%p): not the start of a device allocation\n", p);
    return cuda_emu::set_error(cudaErrorInvalidValue);
  }
  cuda_emu::flush_legacy();  // cudaFree waits for the device
  m.erase(it);
  std::free(p);
  return g_sticky_error;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) {
  *p = std::malloc(bytes == 0 ? 1 : bytes);
  if (*p == nullptr) return cuda_emu::set_error(cudaErrorMemoryAllocation);
  cuda_emu::pinned()[reinterpret_cast<uintptr_t>(*p)] = bytes;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) {
  if (p == nullptr) return cudaSuccess;
  if (cuda_emu::pinned().erase(reinterpret_cast<uintptr_t>(p)) == 0)
    return cuda_emu::set_error(cudaErrorInvalidValue);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* p) {
  *attributes = cudaPointerAttributes{};
  if (cuda_emu::inside(cuda_emu::allocations(), p, 1)) {
    attributes->type = cudaMemoryTypeDevice;
    attributes->devicePointer = const_cast<void*>(p);
  } else if (cuda_emu::inside(cuda_emu::pinned(), p, 1)) {
    attributes->type = cudaMemoryTypeHost;
    attributes->hostPointer = attributes->devicePointer = const_cast<void*>(p);
  }
  return cudaSuccess;
}

namespace {
// Both ends of a copy must be where `kind` says, with every byte inside its allocation.
cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                       const char* call) {
  const bool dst_dev = cuda_emu::device_range(dst, bytes),
             src_dev = cuda_emu::device_range(src, bytes);
  bool ok = dst != nullptr && src != nullptr;
  switch (kind) {
    case cudaMemcpyHostToDevice:
      ok = ok && dst_dev && !cuda_emu::is_device_pointer(src);
      break;
    case cudaMemcpyDeviceToHost:
      ok = ok && src_dev && !cuda_emu::is_device_pointer(dst);
      break;
    case cudaMemcpyDeviceToDevice:
      ok = ok && dst_dev && src_dev;
      break;
    case cudaMemcpyHostToHost:
      ok = ok && !cuda_emu::is_device_pointer(dst) && !cuda_emu::is_device_pointer(src);
      break;
    case cudaMemcpyDefault:
      ok = ok && (cuda_emu::is_device_pointer(dst) ? dst_dev : true) &&
           (cuda_emu::is_device_pointer(src) ? src_dev : true);
      break;
  }
  if (ok) return cudaSuccess;
  std::fprintf(stderr,
               "cuda_emu: %s(%p <- %p, %zu bytes, kind %d): an end is not where the kind says "
               "or runs past its allocation\n",
               call, dst, src, bytes, static_cast<int>(kind));
  return cuda_emu::set_error(cudaErrorInvalidValue);
}
}  // namespace

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (bytes == 0) return g_sticky_error;
  if (cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpyAsync"); e != cudaSuccess)
    return e;
  if (cudaError_t e = cuda_emu::check_stream(stream); e != cudaSuccess) return e;
  // From pageable host memory the call returns once the source is staged, so the caller may
  // reuse it at once even if the copy runs later (deferred legacy-stream work). A captured
  // copy reads the host memory when the graph runs, as on a GPU.
  const bool pageable_source = !cuda_emu::is_device_pointer(src) &&
                               !cuda_emu::inside(cuda_emu::pinned(), src, 1) &&
                               cuda_emu::resolve(stream)->capture == nullptr;
  if (pageable_source) {
    auto staged = std::make_shared<std::vector<unsigned char>>(
        static_cast<const unsigned char*>(src), static_cast<const unsigned char*>(src) + bytes);
    return cuda_emu::set_error(cuda_emu::enqueue(
        stream, [dst, staged] {
          ++cuda_emu::stats().copies;
          std::memcpy(dst, staged->data(), staged->size());
        }));
  }
  return cuda_emu::set_error(
      cuda_emu::enqueue(stream, [dst, src, bytes] {
        ++cuda_emu::stats().copies;
        std::memcpy(dst, src, bytes);
      }));
}
// On the legacy stream (cudaMemcpyAsync stages a pageable source); a copy to the host
// returns when the data is there.
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = cuda_emu::check_capture_safe("cudaMemcpy"); e != cudaSuccess) return e;
  const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
  if (e == cudaSuccess && !cuda_emu::is_device_pointer(dst)) cuda_emu::flush_legacy();
  return e;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return g_sticky_error;
  if (!cuda_emu::device_range(p, bytes)) {
    std::fprintf(stderr,
                 "cuda_emu: cudaMemsetAsync(%p, %zu bytes): not inside a device allocation\n", p,
                 bytes);
    return cuda_emu::set_error(cudaErrorInvalidValue);
  }
  if (cudaError_t e = cuda_emu::check_stream(stream); e != cudaSuccess) return e;
  return cuda_emu::set_error(
      cuda_emu::enqueue(stream, [p, value, bytes] {
        ++cuda_emu::stats().memsets;
        std::memset(p, value, bytes);
      }));
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (cudaError_t e = cuda_emu::check_capture_safe("cudaMemset"); e != cudaSuccess) return e;
  return cudaMemsetAsync(p, value, bytes, nullptr);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  auto* s = new cuda_emu::Stream;
  s->flags = flags;
  cuda_emu::live_streams().push_back(s);
  *stream = s;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  auto& v = cuda_emu::live_streams();
  auto it = std::find(v.begin(), v.end(), stream);
  if (stream == nullptr || it == v.end())
    return cuda_emu::set_error(cudaErrorInvalidResourceHandle);
  v.erase(it);
  delete stream->capture;
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (cudaError_t e = cuda_emu::check_stream(stream); e != cudaSuccess) return e;
  if (cudaError_t e = cuda_emu::check_capture_safe("cudaStreamSynchronize"); e != cudaSuccess)
    return e;
  if (stream == nullptr || (stream->flags & cudaStreamNonBlocking) == 0) cuda_emu::flush_legacy();
  return g_sticky_error;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t, unsigned) {
  if (cuda_emu::check_stream(stream) != cudaSuccess) return cudaErrorInvalidResourceHandle;
  cuda_emu::flush_legacy();  // the event may stand for legacy-stream work
  return g_sticky_error;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new cuda_emu::Event;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (event == nullptr) return cuda_emu::set_error(cudaErrorInvalidResourceHandle);
  return cuda_emu::enqueue(stream, [event] {
    event->when = std::chrono::steady_clock::now();
    event->recorded = true;
  });
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (cudaError_t e = cuda_emu::check_capture_safe("cudaEventSynchronize"); e != cudaSuccess)
    return e;
  cuda_emu::flush_legacy();
  return event != nullptr ? g_sticky_error : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (start == nullptr || end == nullptr || !start->recorded || !end->recorded)
    return cuda_emu::set_error(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (stream == nullptr) return cuda_emu::set_error(cudaErrorStreamCaptureUnsupported);
  if (cudaError_t e = cuda_emu::check_stream(stream); e != cudaSuccess) return e;
  if (stream->capture != nullptr) return cuda_emu::set_error(cudaErrorInvalidValue);
  stream->capture = new cuda_emu::Graph;
  stream->invalidated = false;
  stream->mode = mode;
  stream->capture_thread = std::this_thread::get_id();
  return g_sticky_error;
}
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  *graph = nullptr;
  if (stream == nullptr || stream->capture == nullptr)
    return cuda_emu::set_error(cudaErrorInvalidValue);
  if (stream->capture_thread != std::this_thread::get_id())
    return cuda_emu::set_error(cudaErrorStreamCaptureWrongThread);
  cuda_emu::Graph* g = stream->capture;
  stream->capture = nullptr;
  if (stream->invalidated) {
    delete g;
    return cuda_emu::set_error(cudaErrorStreamCaptureInvalidated);
  }
  *graph = g;
  return g_sticky_error;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (graph == nullptr) return cuda_emu::set_error(cudaErrorInvalidValue);
  *exec = new cuda_emu::Graph(*graph);  // an independent copy, as an executable graph is
  return g_sticky_error;
}
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* num_nodes) {
  if (graph == nullptr || nodes != nullptr || num_nodes == nullptr)
    return cuda_emu::set_error(cudaErrorInvalidValue);
  *num_nodes = graph->ops.size();
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (exec == nullptr) return cuda_emu::set_error(cudaErrorInvalidValue);
  if (cudaError_t e = cuda_emu::check_stream(stream); e != cudaSuccess) return e;
  for (const auto& op : exec->ops)
    if (cudaError_t e = cuda_emu::enqueue(stream, op); e != cudaSuccess)
      return cuda_emu::set_error(e);
  return g_sticky_error;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

namespace cuda_emu {
void reset_after_fault() {
  g_sticky_error = cudaSuccess;
  g_last_error = cudaSuccess;
}
void set_seed(uint64_t seed) { rng().seed(seed); }
}  // namespace cuda_emu
