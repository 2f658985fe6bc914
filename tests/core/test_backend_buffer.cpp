// test_backend_buffer.cpp: BackendBuffer<T> (core/backend_buffer.h) owns what a Backend
// allocates: one free per allocation, moves transfer ownership, and a backend whose free
// throws does not take the program down.
#include <gtest/gtest.h>

#include <cstdint>    // int64_t, int32_t, uint8_t
#include <cstdlib>    // std::calloc, std::free
#include <map>        // std::map
#include <stdexcept>  // std::runtime_error
#include <string>
#include <utility>  // std::move
#include <vector>

#include "core/backend.h"
#include "core/backend_buffer.h"

namespace mnistgan {
namespace {

// A Backend with memory only: counts allocations and frees per pointer; its ops do nothing.
// throw_on_free: free() throws after releasing (a backend breaking free's contract).
class CountingBackend : public Backend {
 public:
  std::map<void*, int> frees;     // pointer -> times freed
  std::map<void*, size_t> sizes;  // pointer -> bytes asked for
  int allocations = 0;
  bool throw_on_free = false;

  ~CountingBackend() override {
    for (auto& [p, n] : frees)
      if (n == 0) std::free(p);
  }
  std::string name() const override { return "counting"; }
  float* alloc_f32(size_t n) override { return static_cast<float*>(alloc(n * 4)); }
  int64_t* alloc_i64(size_t n) override { return static_cast<int64_t*>(alloc(n * 8)); }
  int32_t* alloc_i32(size_t n) override { return static_cast<int32_t*>(alloc(n * 4)); }
  uint8_t* alloc_u8(size_t n) override { return static_cast<uint8_t*>(alloc(n)); }
  void free(void* p) override {
    if (p == nullptr) return;
    if (++frees[p] == 1) std::free(p);
    if (throw_on_free) throw std::runtime_error("counting backend: free refused");
  }
  void to_backend(void*, const void*, size_t) override {}
  void to_host(void*, const void*, size_t) override {}
  void copy(void*, const void*, size_t) override {}
  void fill_zero(void*, size_t) override {}
  void synchronize() override {}
  void linear_forward(const float*, const float*, const float*, float*, int, int, int, Activation,
                      float, RowStrides, const Dropout&) override {}
  void activation_backward(const float*, const float*, float*, size_t, Activation, float) override {
  }
  void linear_backward(const float*, const float*, const float*, const float*, float*, float*,
                       float*, int, int, int, Activation, float, bool, RowStrides,
                       const Dropout&) override {}
  void logit_bce(const float*, const float*, const float*, int, int, int, const float*, float,
                 float*, float*, float*, float*, float*, float*) override {}
  void concat_cols(const float*, const float*, float*, int, int, int) override {}
  void split_cols(const float*, float*, float*, int, int, int) override {}
  void mbd_forward(const float*, float*, int, int, int, int, int) override {}
  void mbd_backward(const float*, const float*, float*, int, int, int, int, int) override {}
  void bce_with_logits(const float*, int, float, float, float*, float*) override {}
  void softmax_cross_entropy(const float*, const int32_t*, int, int, float, float*,
                             float*) override {}
  void adam_step(float*, const float*, float*, float*, size_t, const AdamHyper&, int64_t*,
                 const float*, float*, float) override {}
  void ema_update(float*, const float*, size_t, float, const int64_t*, const float*) override {}
  void gaussian_noise(float*, size_t, uint64_t, uint32_t, const int64_t*) override {}
  void gather_batch(const uint8_t*, const int32_t*, int, int, int, const int64_t*, int, int,
                    int64_t, float*) override {}
  void gather_labels(const uint8_t*, const int32_t*, int, int, const int64_t*, int, int, int64_t,
                     int32_t*) override {}
  void random_labels(int32_t*, size_t, int, uint64_t, uint32_t, const int64_t*) override {}
  void one_hot(const int32_t*, float*, int, int) override {}
  void increment(int64_t*, const float*) override {}
  void accumulate(const float*, float*, size_t, const float*) override {}
  void count_nonfinite(const float*, size_t, float*) override {}

  int freed(void* p) const {
    const auto it = frees.find(p);
    return it == frees.end() ? 0 : it->second;
  }

 private:
  void* alloc(size_t bytes) {
    void* p = std::calloc(bytes == 0 ? 1 : bytes, 1);
    ++allocations;
    frees[p] = 0;
    sizes[p] = bytes;
    return p;
  }
};

TEST(BackendBuffer, AllocatesTheTypeAndSizeAskedFor) {
  CountingBackend backend;
  {
    const BackendBuffer<float> f(backend, 6);
    const BackendBuffer<int64_t> i64(backend, 3);
    const BackendBuffer<int32_t> i32(backend, 5);
    const BackendBuffer<uint8_t> u8(backend, 7);
    EXPECT_EQ(f.size(), 6u);
    EXPECT_EQ(f.bytes(), 24u);
    EXPECT_EQ(backend.sizes[f.get()], 24u);
    EXPECT_EQ(backend.sizes[i64.get()], 24u);
    EXPECT_EQ(i64.bytes(), 24u);
    EXPECT_EQ(backend.sizes[i32.get()], 20u);
    EXPECT_EQ(backend.sizes[u8.get()], 7u);
    EXPECT_EQ(u8.bytes(), 7u);
    EXPECT_TRUE(f.on(backend));
    EXPECT_EQ(backend.allocations, 4);
  }
  ASSERT_EQ(backend.frees.size(), 4u);
  for (const auto& [p, n] : backend.frees) EXPECT_EQ(n, 1) << p;
}

TEST(BackendBuffer, EmptyHoldsNothingAndFreesNothing) {
  CountingBackend backend;
  {
    BackendBuffer<float> empty;
    EXPECT_EQ(empty.get(), nullptr);
    EXPECT_EQ(empty.size(), 0u);
    EXPECT_EQ(empty.bytes(), 0u);
    EXPECT_TRUE(empty.empty());
    EXPECT_FALSE(empty.on(backend));
    empty.reset();
  }
  EXPECT_EQ(backend.allocations, 0);
  EXPECT_TRUE(backend.frees.empty());
}

TEST(BackendBuffer, FreesExactlyOnceAtScopeExit) {
  CountingBackend backend;
  void* p = nullptr;
  {
    const BackendBuffer<float> b(backend, 10);
    p = b.get();
    EXPECT_EQ(backend.freed(p), 0);
  }
  EXPECT_EQ(backend.freed(p), 1);
}

TEST(BackendBuffer, MoveConstructionTransfersOwnership) {
  CountingBackend backend;
  BackendBuffer<float> a(backend, 4);
  void* p = a.get();
  {
    BackendBuffer<float> b(std::move(a));
    EXPECT_EQ(b.get(), p);
    EXPECT_EQ(b.size(), 4u);
    EXPECT_EQ(a.get(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_EQ(a.size(), 0u);
    EXPECT_EQ(backend.freed(p), 0);
  }
  EXPECT_EQ(backend.freed(p), 1);
  a.reset();  // the moved-from buffer frees nothing
  EXPECT_EQ(backend.freed(p), 1);
}

TEST(BackendBuffer, MoveAssignmentFreesTheOldBufferOnce) {
  CountingBackend backend;
  BackendBuffer<int32_t> a(backend, 2), b(backend, 3);
  void* pa = a.get();
  void* pb = b.get();
  a = std::move(b);
  EXPECT_EQ(backend.freed(pa), 1);  // a's own buffer, at the assignment
  EXPECT_EQ(backend.freed(pb), 0);
  EXPECT_EQ(a.get(), pb);
  EXPECT_EQ(a.size(), 3u);
  BackendBuffer<int32_t>& same = a;
  a = std::move(same);  // self-move keeps the buffer
  EXPECT_EQ(a.get(), pb);
  a.reset();
  EXPECT_EQ(backend.freed(pb), 1);
  EXPECT_TRUE(a.empty());
}

TEST(BackendBuffer, InAVectorEachBufferIsFreedOnce) {
  CountingBackend backend;
  {
    std::vector<BackendBuffer<float>> buffers;
    for (int i = 0; i < 20; ++i) buffers.emplace_back(backend, i + 1);  // reallocates: moves
  }
  EXPECT_EQ(backend.allocations, 20);
  for (const auto& [p, n] : backend.frees) EXPECT_EQ(n, 1) << p;
}

TEST(BackendBuffer, AThrowingFreeIsReportedNotPropagated) {
  CountingBackend backend;
  backend.throw_on_free = true;
  void* p = nullptr;
  testing::internal::CaptureStderr();
  EXPECT_NO_THROW({
    const BackendBuffer<float> b(backend, 8);
    p = b.get();
  });  // the destructor ran here; std::terminate would have ended the test binary
  BackendBuffer<uint8_t> c(backend, 1);
  EXPECT_NO_THROW(c.reset());
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(backend.freed(p), 1);
  EXPECT_TRUE(c.empty());
  EXPECT_NE(err.find("counting backend: free refused"), std::string::npos) << err;
}

// While an exception unwinds the stack, a second exception from a destructor would call
// std::terminate: the buffer's free must swallow it and let the first one arrive.
TEST(BackendBuffer, UnwindingPastAThrowingFreeDeliversTheFirstError) {
  CountingBackend backend;
  backend.throw_on_free = true;
  testing::internal::CaptureStderr();
  try {
    const BackendBuffer<float> b(backend, 8);
    throw std::runtime_error("the device fault");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "the device fault");
  }
  (void)testing::internal::GetCapturedStderr();
  EXPECT_EQ(backend.frees.size(), 1u);
}

}  // namespace
}  // namespace mnistgan
