// test_paths.h: where the tests find the source tree (data/mnist, scripts/, fuzz/corpus) and
// the mnistgan binary.
//
//   source_dir()        $MNISTGAN_TEST_SOURCE_DIR, else the source folder CMake compiled in
//   mnistgan_binary()   $MNISTGAN_TEST_BINARY, else the mnistgan that CMake built beside us
//
// Why the overrides: a test executable built on this machine and carried to the GPU machine
// runs from another folder, where the compiled-in absolute paths do not exist
// (scripts/gpu_session.sh sets both).
#pragma once

#include <cstdlib>  // std::getenv
#include <string>

namespace mnistgan {
namespace testpaths {

inline std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' ? std::string(value) : std::string(fallback);
}

inline const std::string& source_dir() {
  static const std::string dir = env_or("MNISTGAN_TEST_SOURCE_DIR", MNISTGAN_SOURCE_DIR);
  return dir;
}

#ifdef MNISTGAN_BINARY
inline const std::string& mnistgan_binary() {
  static const std::string binary = env_or("MNISTGAN_TEST_BINARY", MNISTGAN_BINARY);
  return binary;
}
#endif

}  // namespace testpaths
}  // namespace mnistgan
