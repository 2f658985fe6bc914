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
//              bytes (a NaN in every float) when allocated and when freed; freed memory is
//              kept (poisoned) in a quarantine for a while, so a use after free reads NaN
//              and fails the pointer check. Copies check their ranges; kernel and cuBLAS
//              pointer arguments must lie in live device (or pinned) allocations.
//   shared     the __shared__ statics (section mnistgan_emu_shared, and those of templated
//              kernels, found in the symbol table) are filled with 0xff bytes before every
//              block.
//   streams    work is queued, never run at enqueue: a stream's work runs at a point that
//              waits for it (a stream, event or device synchronisation, a query, a
//              synchronous copy to the host, cudaFree), after the work it depends on: the
//              earlier work of its stream, the legacy stream's rules (its work waits for the
//              blocking streams' earlier work and they for its; non-blocking streams for
//              neither) and cudaStreamWaitEvent's recorded point. A capturing stream records
//              into a graph instead; a graph launch queues the records.
//   tsan       under ThreadSanitizer every emulated thread is a TSan fiber, switched into
//              without synchronisation; the happens-before edges are only those a GPU has:
//              barriers, warp collectives, atomics (as __atomic builtins), stream order,
//              events and host synchronisation (see "ThreadSanitizer" below).
//   errors     a failed launch is sticky, as on a GPU: every later call returns it.
//              MNISTGAN_EMU_FAULT_AT_KERNEL=N makes the process's N-th kernel launch fail so
//              (for tests of how a program ends after a device fault).
#include <elf.h>       // Elf64_Ehdr, Elf64_Shdr, Elf64_Sym
#include <fcntl.h>     // open
#include <link.h>      // dl_iterate_phdr
#include <sys/mman.h>  // mmap, mprotect
#include <sys/stat.h>  // fstat
#include <unistd.h>    // sysconf, close

#include <algorithm>  // std::shuffle
#include <deque>      // std::deque
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
// MNISTGAN_EMU_TSAN: this file is compiled without -fsanitize=thread (its own bookkeeping is
// not what is checked) but links the TSan runtime with the instrumented kernels and backend.
#if defined(MNISTGAN_EMU_TSAN)
#include <sanitizer/tsan_interface.h>  // __tsan_create_fiber, __tsan_acquire, ...
extern "C" void __tsan_ignore_thread_begin();  // in the runtime, not in GCC 12's header
extern "C" void __tsan_ignore_thread_end();
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

// ---- ThreadSanitizer --------------------------------------------------------------------------
// A sync object is an address. Each queued op owns two tokens: `enqueued`, which the host
// releases into when it queues the op, and `done`, which the op releases into when it ends
// (each thread of a kernel as it exits). A kernel's threads acquire, as they start, the
// op's enqueue token, the done token of the op before it on its stream and those of the ops
// it depends on (legacy-stream rules, cudaStreamWaitEvent): a snapshot of what a GPU
// guarantees at the kernel's start, so the blocks of one grid are never ordered with each
// other. __syncthreads and warp collectives release into and acquire from objects fresh for
// each block (two per barrier, by round parity, so a thread already past barrier k never
// hands its later accesses to one still leaving barrier k). The host acquires the done
// token of everything it waited for. Nothing else synchronises: switches into and out of
// the fibers are made with __tsan_switch_to_fiber_no_sync.
struct Token {
  char byte = 0;
};
using TokenPtr = std::shared_ptr<Token>;

#if defined(MNISTGAN_EMU_TSAN)
constexpr unsigned kTsanSwitchNoSync = 1u << 0;  // __tsan_switch_to_fiber_no_sync
void tsan_acquire(const void* a) { __tsan_acquire(const_cast<void*>(a)); }
void tsan_release(const void* a) { __tsan_release(const_cast<void*>(a)); }
#else
void tsan_acquire(const void*) {}
void tsan_release(const void*) {}
#endif

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
  unsigned block_round = 0, warp_round = 0;  // barriers passed (TSan sync object parity)
#if defined(MNISTGAN_EMU_TSAN)
  void* tsan_fiber = nullptr;  // its TSan identity (with its own stack: see fiber())
#endif
#if defined(MNISTGAN_EMU_ASAN)
  void* fake_stack = nullptr;
#endif
};

#if defined(MNISTGAN_EMU_ASAN) || defined(MNISTGAN_EMU_TSAN)
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
  // TSan: what the running grid's threads acquire at their start and release at their exit,
  // and the block's barrier objects (2 for __syncthreads, then 2 per warp).
  std::vector<const void*> start_tokens;
  const void* done_token = nullptr;
  std::unique_ptr<char[]> barrier_objects;
  // Thread t of the running block is pool[base + t]; base rotates under TSan (fiber()).
  size_t base = 0, next_base = 0;
#if defined(MNISTGAN_EMU_TSAN)
  void* tsan_host = nullptr;  // the OS thread's own TSan context
#endif
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

// Thread i of the running block. Under TSan each pool fiber is also a TSan fiber (created
// once: each costs ~1 MB of runtime state) with its own stack, and a block's threads take
// the next n of at least 512, so two blocks in a row never share one (program order on a
// shared fiber would order them) and a stack is only ever used by one TSan identity.
Fiber* fiber(size_t i) {
  Scheduler& s = sched();
  i += s.base;
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
#if defined(MNISTGAN_EMU_TSAN)
    if (s.tsan_host == nullptr) s.tsan_host = __tsan_get_current_fiber();
    f->tsan_fiber = __tsan_create_fiber(0);  // after the Fiber's own writes: they come first
#endif
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
#if defined(MNISTGAN_EMU_TSAN)
  __tsan_switch_to_fiber(f->tsan_fiber, kTsanSwitchNoSync);
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
#if defined(MNISTGAN_EMU_TSAN)
  __tsan_switch_to_fiber(s.tsan_host, kTsanSwitchNoSync);
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
  for (const void* t : sched().start_tokens) tsan_acquire(t);
  (*sched().body)();
  tsan_release(sched().done_token);
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
  // Every arriving thread releases into the barrier's object; each leaving one acquires it
  // (all have arrived by then), by round parity: see "ThreadSanitizer" above.
  const char* objects = sched().barrier_objects.get();
  const char* object = state == State::kAtSyncthreads
                           ? objects + (f.block_round++ & 1)
                           : objects + 2 + 2 * (f.tid / 32) + (f.warp_round++ & 1);
  tsan_release(object);
  switch_to_scheduler(false);
  if (f.failed) device_fault("");  // the scheduler abandoned this block; never returns
  tsan_acquire(object);
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

}  // namespace
}  // namespace cuda_emu

// The __shared__ statics of every kernel (cuda_runtime.h); the linker defines these bounds.
// A placeholder keeps the section present in a program without kernels.
__attribute__((section("mnistgan_emu_shared"), used)) static char g_shared_placeholder[1];
extern "C" char __start_mnistgan_emu_shared[], __stop_mnistgan_emu_shared[];

namespace cuda_emu {
namespace {

#if defined(MNISTGAN_EMU_TSAN)
// TSan forgets the accesses recorded on a range only when the range is mapped anew or
// allocated anew (GCC 12's runtime makes AnnotateNewMemory a no-op). The statics of templated
// kernels cannot get pages of their own, so the program's writable data is declared TSan's
// "Java heap" and each static is freed and allocated anew in it before every block: that
// resets its shadow and nothing else (the Java calls keep only block metadata and the reset).
extern "C" void __tsan_java_init(uintptr_t heap_begin, uintptr_t heap_size);
extern "C" void __tsan_java_alloc(uintptr_t ptr, uintptr_t size);
extern "C" void __tsan_java_free(uintptr_t ptr, uintptr_t size);
#endif

struct StaticRange {
  char* p;
  size_t bytes;
};

// GCC ignores the section attribute on a static local of a function template (it lands in
// .bss, or in a COMDAT .bss._ZZ... section), so the __shared__ arrays of templated kernels
// are not in mnistgan_emu_shared. They are found by name in the program's symbol table
// instead: the static locals of the function whose mangled name is _Z<encoding> are the
// objects named _ZZ<encoding>E<name>, and a kernel's symbol is the function at its address.
// Only a kernel's own statics are found this way (a templated __device__ helper's are not).
class KernelStatics {
 public:
  static KernelStatics& get() {
    static KernelStatics table;
    return table;
  }

  // The writable static locals of the kernel at `entry` that lie outside the section.
  const std::vector<StaticRange>& of(const void* entry) {
    auto it = cache_.find(entry);
    if (it != cache_.end()) return it->second;
    return cache_.emplace(entry, find(reinterpret_cast<uintptr_t>(entry))).first->second;
  }

 private:
  KernelStatics() {
    const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || fstat(fd, &st) != 0) die("cannot open /proc/self/exe");
    bytes_ = static_cast<size_t>(st.st_size);
    void* m = mmap(nullptr, bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) die("cannot map /proc/self/exe");
    image_ = static_cast<const char*>(m);
    const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(image_);
    if (bytes_ < sizeof(Elf64_Ehdr) || std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64)
      die("/proc/self/exe is not a 64-bit ELF file");
    sections_ = reinterpret_cast<const Elf64_Shdr*>(image_ + eh->e_shoff);
    nsections_ = eh->e_shnum;
    for (size_t i = 0; i < nsections_; ++i) {
      if (sections_[i].sh_type != SHT_SYMTAB) continue;
      symbols_ = reinterpret_cast<const Elf64_Sym*>(image_ + sections_[i].sh_offset);
      nsymbols_ = sections_[i].sh_size / sizeof(Elf64_Sym);
      names_ = image_ + sections_[sections_[i].sh_link].sh_offset;
    }
    if (symbols_ == nullptr)
      die("the program has no symbol table (stripped?): the shared memory of templated kernels "
          "cannot be found");
    // The first object dl_iterate_phdr reports is the program itself: its load bias.
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* bias) {
          *static_cast<uintptr_t*>(bias) = info->dlpi_addr;
          return 1;
        },
        &bias_);
#if defined(MNISTGAN_EMU_TSAN)
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (size_t i = 0; i < nsections_; ++i) {
      const Elf64_Shdr& sh = sections_[i];
      if ((sh.sh_flags & (SHF_ALLOC | SHF_WRITE)) != (SHF_ALLOC | SHF_WRITE) || sh.sh_size == 0)
        continue;
      lo = std::min<uintptr_t>(lo, bias_ + sh.sh_addr);
      hi = std::max<uintptr_t>(hi, bias_ + sh.sh_addr + sh.sh_size);
    }
    lo &= ~uintptr_t{7};
    hi = (hi + 7) & ~uintptr_t{7};
    if (lo < hi) __tsan_java_init(lo, hi - lo);
#endif
  }

  ~KernelStatics() { munmap(const_cast<char*>(image_), bytes_); }
  KernelStatics(const KernelStatics&) = delete;
  KernelStatics& operator=(const KernelStatics&) = delete;

  [[noreturn]] static void die(const char* why) {
    std::fprintf(stderr, "cuda_emu: %s\n", why);
    std::abort();
  }

  std::vector<StaticRange> find(uintptr_t entry) const {
    const uintptr_t at = entry - bias_;
    const char* kernel = nullptr;
    for (size_t i = 0; i < nsymbols_ && kernel == nullptr; ++i) {
      const Elf64_Sym& s = symbols_[i];
      const char* name = names_ + s.st_name;
      if (ELF64_ST_TYPE(s.st_info) == STT_FUNC && s.st_value == at &&
          std::strncmp(name, "_Z", 2) == 0)
        kernel = name;
    }
    std::vector<StaticRange> out;
    if (kernel == nullptr) return out;  // not a C++ function: no templated statics to find
    const std::string prefix = "_ZZ" + std::string(kernel + 2) + "E";
    const uintptr_t section_begin = reinterpret_cast<uintptr_t>(__start_mnistgan_emu_shared);
    const uintptr_t section_end = reinterpret_cast<uintptr_t>(__stop_mnistgan_emu_shared);
    for (size_t i = 0; i < nsymbols_; ++i) {
      const Elf64_Sym& s = symbols_[i];
      if (ELF64_ST_TYPE(s.st_info) != STT_OBJECT || s.st_size == 0) continue;
      if (s.st_shndx == SHN_UNDEF || s.st_shndx >= nsections_) continue;
      if ((sections_[s.st_shndx].sh_flags & SHF_WRITE) == 0) continue;  // e.g. __func__
      if (std::strncmp(names_ + s.st_name, prefix.c_str(), prefix.size()) != 0) continue;
      const uintptr_t p = bias_ + s.st_value;
      if (p >= section_begin && p < section_end) continue;  // poisoned with the section
      out.push_back({reinterpret_cast<char*>(p), static_cast<size_t>(s.st_size)});
    }
    return out;
  }

  const char* image_ = nullptr;
  size_t bytes_ = 0;
  const Elf64_Shdr* sections_ = nullptr;
  size_t nsections_ = 0;
  const Elf64_Sym* symbols_ = nullptr;
  size_t nsymbols_ = 0;
  const char* names_ = nullptr;
  uintptr_t bias_ = 0;
  std::map<const void*, std::vector<StaticRange>> cache_;
};

// Before each block: shared memory holds NaN (0xff bytes), as if fresh. Under TSan the
// section's pages (tsan_shared.ld aligns and pads them) are first mapped anew with TSan's
// own accesses ignored, and the templated kernels' statics are allocated anew: both make it
// forget every earlier block's accesses, since two blocks never share shared memory
// on a GPU and so must not race on it here.
void poison_shared_memory(const std::vector<StaticRange>& kernel_statics) {
  const size_t bytes = static_cast<size_t>(__stop_mnistgan_emu_shared - __start_mnistgan_emu_shared);
#if defined(MNISTGAN_EMU_TSAN)
  for (const StaticRange& r : kernel_statics) {  // 8-byte granules, as TSan's shadow cells
    const uintptr_t begin = reinterpret_cast<uintptr_t>(r.p) & ~uintptr_t{7};
    const uintptr_t end = (reinterpret_cast<uintptr_t>(r.p) + r.bytes + 7) & ~uintptr_t{7};
    __tsan_java_free(begin, end - begin);
    __tsan_java_alloc(begin, end - begin);
  }
  __tsan_ignore_thread_begin();
  void* m = mmap(__start_mnistgan_emu_shared, bytes, PROT_READ | PROT_WRITE,
                 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    std::fprintf(stderr, "cuda_emu: cannot map shared memory anew\n");
    std::abort();
  }
#endif
  std::memset(__start_mnistgan_emu_shared, 0xff, bytes);
  for (const StaticRange& r : kernel_statics) std::memset(r.p, 0xff, r.bytes);
#if defined(MNISTGAN_EMU_TSAN)
  __tsan_ignore_thread_end();
#endif
}

#if defined(MNISTGAN_EMU_TSAN)
// Names the block's TSan fibers after the threads they run, for reports.
void name_tsan_fibers(int n, uint3 block_idx) {
  for (int t = 0; t < n; ++t) {
    Fiber* f = fiber(t);
    char name[96];
    std::snprintf(name, sizeof name, "thread (%u,%u,%u) of block (%u,%u,%u)",
                  f->builtins.thread_idx.x, f->builtins.thread_idx.y, f->builtins.thread_idx.z,
                  block_idx.x, block_idx.y, block_idx.z);
    __tsan_set_fiber_name(f->tsan_fiber, name);
  }
}
#endif

// Runs one block to completion. Returns "" or the fault.
std::string run_block(dim3 grid, dim3 block, uint3 block_idx,
                      const std::vector<StaticRange>& kernel_statics) {
  Scheduler& s = sched();
  const int n = static_cast<int>(block.x * block.y * block.z);
  s.nthreads = n;
  s.error.clear();
#if defined(MNISTGAN_EMU_TSAN)
  const size_t pool = std::max<size_t>(512, static_cast<size_t>(n));
  if (s.next_base + n > pool) s.next_base = 0;
  s.base = s.next_base;
  s.next_base += n;
#endif
  poison_shared_memory(kernel_statics);
  // Fresh barrier objects for this block: 2 for __syncthreads, 2 per warp.
  s.barrier_objects = std::make_unique<char[]>(2 + 2 * ((n + 31) / 32));
  for (int t = 0; t < n; ++t) {
    Fiber* f = fiber(t);
    prepare(f);
    f->tid = t;
    f->state = State::kReady;
    f->failed = false;
    f->block_round = f->warp_round = 0;
    f->builtins.thread_idx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
    f->builtins.block_idx = block_idx;
    f->builtins.block_dim = {block.x, block.y, block.z};
    f->builtins.grid_dim = {grid.x, grid.y, grid.z};
  }
#if defined(MNISTGAN_EMU_TSAN)
  name_tsan_fibers(n, block_idx);
#endif
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

void run_grid(dim3 grid, dim3 block, const std::function<void()>& body, const void* entry,
              const char* what) {
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
  const std::vector<StaticRange>& kernel_statics = KernelStatics::get().of(entry);
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
    const std::string fault = run_block(grid, block, idx, kernel_statics);
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
// Freed device memory, still mapped and filled with 0xff bytes, oldest first: a use after
// free reads NaN and fails the pointer check. Released to the heap beyond these bounds.
struct Quarantine {
  std::map<uintptr_t, size_t> blocks;  // start -> bytes
  std::deque<uintptr_t> order;
  size_t bytes = 0;
};
constexpr size_t kQuarantineBytes = 256u << 20, kQuarantineBlocks = 4096;
Quarantine& quarantine() {
  // Never destroyed: LeakSanitizer checks after static destructors, and the blocks held
  // here must stay reachable (they are freed memory, not leaks).
  static Quarantine* q = new Quarantine;
  return *q;
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
struct Op;
using OpFn = std::function<void()>;

}  // namespace

struct Graph {
  std::vector<std::pair<OpFn, bool>> ops;  // the work and whether it is a kernel
};

namespace {
// One queued piece of work. It runs after the ops in `deps` (stream, sequence number: that
// stream's work up to it) and after the op before it on its own stream.
struct Op {
  OpFn run;
  uint64_t seq = 0;
  bool kernel = false;  // a grid: its threads acquire and release the tokens themselves
  std::vector<std::pair<Stream*, uint64_t>> deps;
  std::vector<TokenPtr> start_tokens;  // enqueue token, previous op's done, deps' done
  TokenPtr done = std::make_shared<Token>();
};
uint64_t g_next_seq = 0;
}  // namespace

struct Stream {
  unsigned flags = 0;
  Graph* capture = nullptr;  // recording when non-null
  bool invalidated = false;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id capture_thread;
  std::deque<Op> pending;  // queued, not yet run, in issue order
  uint64_t last_seq = 0;   // the last op queued here (0: none)
  TokenPtr tail;           // its done token
};
struct Event {
  std::chrono::steady_clock::time_point when;
  bool recorded = false;   // the record op has run
  Stream* stream = nullptr;  // where the last cudaEventRecord queued its op
  uint64_t seq = 0;
  TokenPtr token;  // that op's done token
};

namespace {

Stream& legacy_stream() {
  static Stream s;
  return s;
}
Stream* resolve(cudaStream_t stream) { return stream != nullptr ? stream : &legacy_stream(); }
bool blocking(const Stream* s) {
  return s != &legacy_stream() && (s->flags & cudaStreamNonBlocking) == 0;
}

std::vector<Stream*>& live_streams() {
  static std::vector<Stream*> v{&legacy_stream()};
  return v;
}

Op* g_running_op = nullptr;  // the op whose work runs now (its kernel reads its tokens)

// Runs `s`'s queued work up to sequence number `seq`, each op after what it depends on.
void run_until(Stream* s, uint64_t seq) {
  while (!s->pending.empty() && s->pending.front().seq <= seq) {
    Op op = std::move(s->pending.front());
    s->pending.pop_front();
    for (const auto& [stream, upto] : op.deps) run_until(stream, upto);
    if (!op.kernel)
      for (const TokenPtr& t : op.start_tokens) tsan_acquire(t.get());
    g_running_op = &op;
    op.run();
    g_running_op = nullptr;
    if (!op.kernel) tsan_release(op.done.get());
    tsan_acquire(op.done.get());  // the host has waited for it
  }
}
void run_all(Stream* s) { run_until(s, UINT64_MAX); }
// Runs up to an event's recorded point (nothing if its stream has been destroyed: then its
// work has run already).
void run_to_event(const Event* e) {
  if (e->stream == nullptr) return;
  const auto& v = live_streams();
  if (std::find(v.begin(), v.end(), e->stream) != v.end()) run_until(e->stream, e->seq);
}
// Everything queued anywhere (a device synchronisation).
void run_everything() {
  for (Stream* s : std::vector<Stream*>(live_streams())) run_all(s);
}
// What waiting for the legacy stream waits for: its work, and through it the blocking
// streams' (a synchronisation of stream 0 is treated as waiting for all of them).
void run_legacy_and_blocking() {
  run_all(&legacy_stream());
  for (Stream* s : std::vector<Stream*>(live_streams()))
    if (blocking(s)) run_all(s);
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

// Queues `fn` on `stream` (records it when the stream is capturing). Returns the queued op's
// sequence number through `seq` (0 when recorded or refused).
cudaError_t enqueue(cudaStream_t stream, OpFn fn, bool kernel = false,
                    std::vector<std::pair<Stream*, uint64_t>> extra_deps = {},
                    std::vector<TokenPtr> extra_tokens = {}, uint64_t* seq = nullptr) {
  if (seq != nullptr) *seq = 0;
  if (g_sticky_error != cudaSuccess) return g_sticky_error;
  Stream* s = resolve(stream);
  if (s->capture != nullptr) {
    if (s->invalidated) return set_error(cudaErrorStreamCaptureInvalidated);
    s->capture->ops.emplace_back(std::move(fn), kernel);
    return cudaSuccess;
  }
  Op op;
  op.run = std::move(fn);
  op.kernel = kernel;
  op.seq = ++g_next_seq;
  op.deps = std::move(extra_deps);
  op.start_tokens = std::move(extra_tokens);
  if (s == &legacy_stream()) {
    // The legacy stream synchronises with every blocking stream; one in capture breaks it.
    if (cudaError_t e = check_capture_safe("work on the legacy default stream"); e != cudaSuccess)
      return e;
    for (Stream* other : live_streams())
      if (blocking(other) && other->last_seq != 0) {
        op.deps.emplace_back(other, other->last_seq);
        op.start_tokens.push_back(other->tail);
      }
  } else if (blocking(s) && legacy_stream().last_seq != 0) {
    op.deps.emplace_back(&legacy_stream(), legacy_stream().last_seq);
    op.start_tokens.push_back(legacy_stream().tail);
  }
  if (s->tail) op.start_tokens.push_back(s->tail);
  auto enqueued = std::make_shared<Token>();
  tsan_release(enqueued.get());  // the host's accesses so far come before the op
  op.start_tokens.push_back(std::move(enqueued));
  s->last_seq = op.seq;
  s->tail = op.done;
  if (seq != nullptr) *seq = op.seq;
  s->pending.push_back(std::move(op));
  return g_sticky_error;
}

cudaError_t check_stream(cudaStream_t stream) {
  if (stream == nullptr) return cudaSuccess;
  for (Stream* s : live_streams())
    if (s == stream) return cudaSuccess;
  return set_error(cudaErrorInvalidResourceHandle);
}

// The first pointer argument that is neither null nor inside a live device or pinned
// allocation, reported with the kernel's name; false if there is one.
bool pointers_ok(const std::vector<PointerArg>& pointers, const char* what, const char* when) {
  for (const PointerArg& a : pointers) {
    const std::string why = check_device_pointer(a.p);
    if (why.empty()) continue;
    std::fprintf(stderr, "cuda_emu: %s %s: argument %d (%p) %s\n", what, when, a.index, a.p,
                 why.c_str());
    return false;
  }
  return true;
}

}  // namespace

std::string check_device_pointer(const void* p) {
  if (p == nullptr) return "";
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto within = [a](const std::map<uintptr_t, size_t>& m) {  // end included
    auto it = m.upper_bound(a);
    return it != m.begin() && a <= std::prev(it)->first + std::prev(it)->second;
  };
  if (within(allocations()) || within(pinned())) return "";
  if (within(quarantine().blocks)) return "points into freed device memory";
  return "is not device memory (a host pointer, or one never allocated)";
}

void enqueue_kernel(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                    std::function<void()> body, const void* entry, const char* what,
                    std::vector<PointerArg> pointers) {
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
  // As a GPU would fault on the access: sticky, the launch and everything after fail.
  if (!pointers_ok(pointers, what, "launched")) {
    g_sticky_error = set_error(cudaErrorIllegalAddress);
    return;
  }
  std::string name = what;
  enqueue(
      stream,
      [grid, block, body = std::move(body), entry, name, pointers = std::move(pointers)] {
        if (g_sticky_error != cudaSuccess) return;
        if (!pointers_ok(pointers, name.c_str(), "ran (a graph replay?)")) {
          g_sticky_error = set_error(cudaErrorIllegalAddress);
          return;
        }
        Scheduler& s = sched();
        s.start_tokens.clear();
        for (const TokenPtr& t : g_running_op->start_tokens) s.start_tokens.push_back(t.get());
        s.done_token = g_running_op->done.get();
        run_grid(grid, block, body, entry, name.c_str());
      },
      true);
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

void fail_device(const char* what) {
  std::fprintf(stderr, "cuda_emu: %s failed: illegal address\n", what);
  g_sticky_error = set_error(cudaErrorIllegalAddress);
}

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
  cuda_emu::run_everything();
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
  cuda_emu::run_everything();  // cudaFree waits for the device
  const size_t bytes = it->second;
  m.erase(it);
  // Poisoned and kept a while (see Quarantine), then given back to the heap.
  std::memset(p, 0xff, bytes);
  auto& q = cuda_emu::quarantine();
  q.blocks[reinterpret_cast<uintptr_t>(p)] = bytes;
  q.order.push_back(reinterpret_cast<uintptr_t>(p));
  q.bytes += bytes;
  while (q.bytes > cuda_emu::kQuarantineBytes || q.order.size() > cuda_emu::kQuarantineBlocks) {
    const uintptr_t oldest = q.order.front();
    q.order.pop_front();
    q.bytes -= q.blocks[oldest];
    q.blocks.erase(oldest);
    std::free(reinterpret_cast<void*>(oldest));
  }
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
  const bool capturing = cuda_emu::resolve(stream)->capture != nullptr;
  const bool pageable_source = !cuda_emu::is_device_pointer(src) &&
                               !cuda_emu::inside(cuda_emu::pinned(), src, 1) && !capturing;
  if (pageable_source) {
    auto staged = std::make_shared<std::vector<unsigned char>>(
        static_cast<const unsigned char*>(src), static_cast<const unsigned char*>(src) + bytes);
    return cuda_emu::set_error(cuda_emu::enqueue(
        stream, [dst, staged] {
          ++cuda_emu::stats().copies;
          std::memcpy(dst, staged->data(), staged->size());
        }));
  }
  uint64_t seq = 0;
  const cudaError_t e = cuda_emu::set_error(cuda_emu::enqueue(
      stream,
      [dst, src, bytes] {
        ++cuda_emu::stats().copies;
        std::memcpy(dst, src, bytes);
      },
      false, {}, {}, &seq));
  // To pageable host memory the call returns only once the copy is done (CUDA's documented
  // behaviour); into pinned memory it is truly asynchronous: read it after a synchronisation.
  const bool pageable_destination = !cuda_emu::is_device_pointer(dst) &&
                                    !cuda_emu::inside(cuda_emu::pinned(), dst, 1);
  if (e == cudaSuccess && seq != 0 && pageable_destination)
    cuda_emu::run_until(cuda_emu::resolve(stream), seq);
  return e;
}
// On the legacy stream (cudaMemcpyAsync stages a pageable source); a copy to the host
// returns when the data is there.
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = cuda_emu::check_capture_safe("cudaMemcpy"); e != cudaSuccess) return e;
  const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
  // A copy to the host (pinned too) returns when the data is there.
  if (e == cudaSuccess && !cuda_emu::is_device_pointer(dst)) cuda_emu::run_legacy_and_blocking();
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
  // Its queued work still runs (here, now); no other op may name it as a dependency after.
  cuda_emu::run_all(stream);
  for (cuda_emu::Stream* other : v)
    for (cuda_emu::Op& op : other->pending)
      op.deps.erase(std::remove_if(op.deps.begin(), op.deps.end(),
                                   [stream](const auto& d) { return d.first == stream; }),
                    op.deps.end());
  v.erase(std::find(v.begin(), v.end(), stream));
  delete stream->capture;
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (cudaError_t e = cuda_emu::check_stream(stream); e != cudaSuccess) return e;
  if (cudaError_t e = cuda_emu::check_capture_safe("cudaStreamSynchronize"); e != cudaSuccess)
    return e;
  if (stream == nullptr)
    cuda_emu::run_legacy_and_blocking();
  else
    cuda_emu::run_all(stream);
  return g_sticky_error;
}
// The emulation completes the stream's work when asked, so the answer is always "done".
cudaError_t cudaStreamQuery(cudaStream_t stream) {
  if (cudaError_t e = cuda_emu::check_stream(stream); e != cudaSuccess) return e;
  if (cudaError_t e = cuda_emu::check_capture_safe("cudaStreamQuery"); e != cudaSuccess) return e;
  return cudaStreamSynchronize(stream);
}
// Later work on `stream` waits for the event's recorded point (an event never recorded: none).
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  if (cuda_emu::check_stream(stream) != cudaSuccess) return cudaErrorInvalidResourceHandle;
  if (event == nullptr) return cuda_emu::set_error(cudaErrorInvalidResourceHandle);
  if (event->stream == nullptr) return g_sticky_error;
  return cuda_emu::set_error(cuda_emu::enqueue(stream, [] {}, false,
                                               {{event->stream, event->seq}}, {event->token}));
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new cuda_emu::Event;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  // Queued record ops still refer to it: they run first.
  if (event != nullptr) cuda_emu::run_to_event(event);
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (event == nullptr) return cuda_emu::set_error(cudaErrorInvalidResourceHandle);
  if (cuda_emu::check_stream(stream) != cudaSuccess) return cudaErrorInvalidResourceHandle;
  uint64_t seq = 0;
  const cudaError_t e = cuda_emu::enqueue(
      stream,
      [event] {
        event->when = std::chrono::steady_clock::now();
        event->recorded = true;
      },
      false, {}, {}, &seq);
  if (e == cudaSuccess && seq != 0) {
    cuda_emu::Stream* s = cuda_emu::resolve(stream);
    event->recorded = false;
    event->stream = s;
    event->seq = seq;
    event->token = s->tail;
  }
  return e;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (cudaError_t e = cuda_emu::check_capture_safe("cudaEventSynchronize"); e != cudaSuccess)
    return e;
  if (event == nullptr) return cudaErrorInvalidResourceHandle;
  cuda_emu::run_to_event(event);
  return g_sticky_error;
}
cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (start == nullptr || end == nullptr || start->stream == nullptr || end->stream == nullptr)
    return cuda_emu::set_error(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return cudaErrorNotReady;  // not yet run
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
  for (const auto& [op, kernel] : exec->ops)
    if (cudaError_t e = cuda_emu::enqueue(stream, op, kernel); e != cudaSuccess)
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
