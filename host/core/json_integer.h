// json_integer.h: a JSON value as a C++ integer, for the readers of stored files (the train
// config in config.cpp, checkpoint header fields in checkpoint.cpp).
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <type_traits>

namespace mnistgan {

// v as an Int when it is a JSON integer (signed or unsigned storage) that Int holds, else
// nullopt: a float such as 1e300, a string, a bool, an integer out of Int's range. nlohmann's
// get<Int>() would convert a float with a plain cast, which is undefined behaviour when it
// does not fit (fuzz/fuzz_checkpoint.cpp feeds such values). Callers throw their own error
// naming the file and key.
template <typename Int>
std::optional<Int> json_integer(const nlohmann::json& v) {
  static_assert(std::is_integral_v<Int> && !std::is_same_v<Int, bool>);
  using Limits = std::numeric_limits<Int>;
  if (v.is_number_unsigned()) {
    const uint64_t x = v.get<uint64_t>();
    if (x > static_cast<uint64_t>(Limits::max())) return std::nullopt;
    return static_cast<Int>(x);
  }
  if (v.is_number_integer()) {  // signed storage; may still be positive
    const int64_t x = v.get<int64_t>();
    if (x < static_cast<int64_t>(Limits::min())) return std::nullopt;
    if (x >= 0 && static_cast<uint64_t>(x) > static_cast<uint64_t>(Limits::max()))
      return std::nullopt;
    return static_cast<Int>(x);
  }
  return std::nullopt;
}

}  // namespace mnistgan
