// atomic_file.cpp: write-to-temporary + fsync + rename, the POSIX recipe for replacing a file
// so that readers (and a machine that loses power) see either the old or the new contents.
#include "io/atomic_file.h"

#include <fcntl.h>     // open, O_* flags
#include <sys/stat.h>  // fstat, stat, mkdir
#include <unistd.h>    // write, read, fsync, close, unlink, getpid

#include <atomic>        // std::atomic: unique temporary names across threads
#include <cerrno>        // errno, EINTR, EEXIST, EINVAL
#include <cstdio>        // std::rename
#include <stdexcept>     // std::invalid_argument
#include <system_error>  // std::generic_category: a thread-safe strerror

namespace mnistgan {
namespace {

std::string reason(int err) { return std::generic_category().message(err); }

// The pid keeps two processes apart, the counter two threads (or two writes) of one process.
std::string unique_suffix() {
  static std::atomic<unsigned long> counter{0};
  return std::to_string(static_cast<long>(::getpid())) + "." + std::to_string(counter++);
}

// The directory that holds `path`, for the fsync that makes a rename durable.
std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Closes a file descriptor on every way out of a scope, unless released first.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  // Closes now and reports close's own error (on NFS a failed write may surface only here).
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Writes all of [data, data + size), retrying short writes and signals. Returns 0 or an errno.
int write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  if (data == nullptr && size > 0) {
    throw std::invalid_argument(path + ": write_file_atomic given a null buffer of " +
                                std::to_string(size) + " bytes");
  }
  const std::string tmp = path + ".tmp." + unique_suffix();
  // 0666 minus the umask, as fopen would create it.
  FdGuard fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
  if (fd.get() < 0) {
    throw IoError(path + ": cannot create temporary file " + tmp + ": " + reason(errno));
  }
  // From here on every failure removes the temporary file before throwing.
  auto fail = [&](const std::string& what, int err) {
    fd.close();
    ::unlink(tmp.c_str());
    throw IoError(path + ": " + what + ": " + reason(err));
  };
  if (int err = write_all(fd.get(), static_cast<const char*>(data), size))
    fail("cannot write", err);
  // EINVAL: the file system cannot sync (e.g. some FUSE mounts); nothing more can be done.
  if (::fsync(fd.get()) != 0 && errno != EINVAL) fail("cannot write (fsync)", errno);
  if (fd.close() != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw IoError(path + ": cannot write (close): " + reason(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw IoError(path + ": cannot rename " + tmp + " into place: " + reason(err));
  }
  // The new contents are in place; syncing the directory makes the rename itself durable.
  const std::string dir = parent_dir(path);
  FdGuard dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) {
    throw IoError(path + ": cannot open directory " + dir + " to sync it: " + reason(errno));
  }
  if (::fsync(dir_fd.get()) != 0 && errno != EINVAL) {
    throw IoError(path + ": cannot sync directory " + dir + ": " + reason(errno));
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

std::string read_file(const std::string& path, size_t max_bytes) {
  FdGuard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw IoError(path + ": cannot open: " + reason(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw IoError(path + ": cannot stat: " + reason(errno));
  if (S_ISDIR(st.st_mode)) throw IoError(path + ": cannot read: " + reason(EISDIR));
  auto too_large = [&](const std::string& size_text) {
    return IoError(path + ": file is " + size_text + " than the limit of " +
                   std::to_string(max_bytes) + " bytes");
  };
  if (S_ISREG(st.st_mode) && static_cast<unsigned long long>(st.st_size) > max_bytes) {
    throw too_large(std::to_string(static_cast<long long>(st.st_size)) + " bytes, more");
  }
  std::string bytes;
  if (S_ISREG(st.st_mode)) bytes.reserve(static_cast<size_t>(st.st_size));
  // Read to end of file rather than trusting st_size: the file may grow, or not be regular.
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd.get(), chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(path + ": cannot read: " + reason(errno));
    }
    if (n == 0) break;
    if (static_cast<size_t>(n) > max_bytes - bytes.size()) throw too_large("larger");
    bytes.append(chunk, static_cast<size_t>(n));
  }
  return bytes;
}

void ensure_writable_dir(const std::string& dir) {
  const std::string d = dir.empty() ? "." : dir;
  // mkdir -p: create each prefix that ends at a '/', then the whole path. EEXIST is fine
  // here; a prefix that exists but is not a directory makes the next mkdir fail (ENOTDIR).
  for (size_t pos = d.find('/', 1);; pos = d.find('/', pos + 1)) {
    const std::string prefix = d.substr(0, pos);
    if (!prefix.empty() && prefix.back() != '/' && ::mkdir(prefix.c_str(), 0777) != 0 &&
        errno != EEXIST) {
      const int err = errno;
      throw IoError(d + ": cannot create directory" +
                    (pos == std::string::npos ? "" : " " + prefix) + ": " + reason(err));
    }
    if (pos == std::string::npos) break;
  }
  struct stat st;
  if (::stat(d.c_str(), &st) != 0) throw IoError(d + ": cannot create directory: " + reason(errno));
  if (!S_ISDIR(st.st_mode)) throw IoError(d + ": cannot use as a directory: " + reason(ENOTDIR));

  // Permission bits alone do not tell (root, read-only mounts, ACLs): try it.
  const std::string probe = d + "/.mnistgan_write_probe." + unique_suffix();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw IoError(d + ": directory is not writable: " + reason(errno));
  ::close(fd);
  if (::unlink(probe.c_str()) != 0) {
    throw IoError(d + ": cannot remove probe file " + probe + ": " + reason(errno));
  }
}

}  // namespace mnistgan
