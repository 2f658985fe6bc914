// backend_buffer.h: BackendBuffer<T>, the one owner of backend memory.
//
//   BackendBuffer<float> x(backend, rows * cols);   // alloc_f32: uninitialised, (rows, cols)
//   auto s = BackendBuffer<float>::zeroed(backend, 2);  // the same, then fill_zero (sums)
//   backend.linear_forward(x.get(), ...);           // ops take the plain pointer
//   x.size(), x.bytes()                             // elements, bytes
//   // freed with backend.free() when x goes out of scope (or is reset or moved over)
//
// T is float, int64_t, int32_t or uint8_t (the Backend's alloc_* types). Move-only; a
// default-constructed or moved-from buffer holds nothing (get() is nullptr, size() 0). The
// backend must outlive its buffers.
//
// Never throws when it frees (destructor, reset, move assignment): Backend::free must not
// throw, and should one throw all the same the message goes to stderr and the buffer is
// forgotten, so a device fault that unwinds the stack ends in that fault's message and an
// exit code rather than std::terminate (as tiny-cuda-nn's GPUMemory logs and carries on).
#pragma once

#include <cstddef>      // size_t
#include <cstdint>      // int64_t, int32_t, uint8_t
#include <cstdio>       // std::fprintf
#include <exception>    // std::exception
#include <type_traits>  // std::is_same_v
#include <utility>      // std::exchange

#include "core/backend.h"

namespace mnistgan {

template <class T>
class BackendBuffer {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, int64_t> ||
                    std::is_same_v<T, int32_t> || std::is_same_v<T, uint8_t>,
                "BackendBuffer<T>: T must be float, int64_t, int32_t or uint8_t");

 public:
  BackendBuffer() = default;
  // n uninitialised elements on `backend` (n may be 0: the backend still returns a unique
  // pointer).
  BackendBuffer(Backend& backend, size_t n)
      : backend_(&backend), data_(allocate(backend, n)), size_(n) {}
  ~BackendBuffer() { reset(); }
  // n elements set to zero (queued on the backend like any op), for owners that need zeros.
  static BackendBuffer zeroed(Backend& backend, size_t n) {
    BackendBuffer b(backend, n);
    backend.fill_zero(b.get(), b.bytes());
    return b;
  }

  BackendBuffer(BackendBuffer&& other) noexcept
      : backend_(std::exchange(other.backend_, nullptr)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  BackendBuffer& operator=(BackendBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      backend_ = std::exchange(other.backend_, nullptr);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  BackendBuffer(const BackendBuffer&) = delete;
  BackendBuffer& operator=(const BackendBuffer&) = delete;

  T* get() const { return data_; }
  size_t size() const { return size_; }  // elements
  size_t bytes() const { return size_ * sizeof(T); }
  bool empty() const { return data_ == nullptr; }
  explicit operator bool() const { return data_ != nullptr; }
  // Whether this buffer lives on `backend` (false when empty).
  bool on(const Backend& backend) const { return data_ != nullptr && backend_ == &backend; }

  // Frees the buffer now; the object is then empty.
  void reset() noexcept {
    if (data_ == nullptr) return;
    T* p = std::exchange(data_, nullptr);
    Backend* b = std::exchange(backend_, nullptr);
    size_ = 0;
    try {
      b->free(p);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mnistgan: freeing backend memory failed: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "mnistgan: freeing backend memory failed\n");
    }
  }

 private:
  static T* allocate(Backend& backend, size_t n) {
    if constexpr (std::is_same_v<T, float>)
      return backend.alloc_f32(n);
    else if constexpr (std::is_same_v<T, int64_t>)
      return backend.alloc_i64(n);
    else if constexpr (std::is_same_v<T, int32_t>)
      return backend.alloc_i32(n);
    else
      return backend.alloc_u8(n);
  }

  Backend* backend_ = nullptr;
  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace mnistgan
