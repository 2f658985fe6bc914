// atomic_file.h: whole-file I/O that never leaves a half-written file behind. Every output of
// a run (metrics, sample grids, checkpoints) goes through write_file_atomic, so a crash, a
// full disk or a Ctrl-C leaves either the previous version of a file or the new one, never a
// truncated mix that a later --resume would trip over. Errors throw IoError with a message
// that starts with the path and ends with the system's reason (strerror).
#pragma once

#include <cstddef>    // size_t
#include <stdexcept>  // std::runtime_error
#include <string>

namespace mnistgan {

// An I/O failure; what() reads "<path>: <what was attempted>: <reason>".
class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes `size` bytes to `path` atomically: a temporary file in the same directory
// (path + ".tmp.<pid>.<n>"), fwrite, fflush, fsync, close, rename over `path`, then fsync of
// the directory so the rename itself survives a power loss. On failure the temporary file is
// removed, `path` keeps its previous contents (or stays absent), and IoError is thrown, e.g.
// "runs/x/metrics.csv: cannot write: No space left on device".
void write_file_atomic(const std::string& path, const void* data, size_t size);
void write_file_atomic(const std::string& path, const std::string& bytes);

// Reads a whole regular file. Throws IoError naming `path` when it is missing, unreadable,
// not a regular file, or larger than `max_bytes` (a guard against reading a wrong, huge file).
std::string read_file(const std::string& path, size_t max_bytes);

// Creates `dir` and its parents if needed (like mkdir -p), then checks that files can be
// created in it by creating and removing a probe file, so a run fails at start-up rather than
// after an hour of training. Throws IoError naming `dir` and the reason. "" means ".".
void ensure_writable_dir(const std::string& dir);

}  // namespace mnistgan
