// idx.cpp: see idx.h.
#include "io/idx.h"

#include <sys/stat.h>  // fstat, S_ISREG: the file's size before anything is read
#include <zlib.h>      // inflateInit2, inflate: gzip decoding

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace mnistgan {

namespace {

namespace fs = std::filesystem;

constexpr char kFetchHint[] = "re-run `bash scripts/fetch_mnist.sh`";
constexpr uint8_t kTypeUbyte = 0x08;
constexpr int kImagesRank = 3;
constexpr int kLabelsRank = 1;
constexpr size_t kInChunk = size_t{1} << 16;  // compressed bytes read per fread
// Gzip output buffers start here and double, capped at the header's size, so a header that
// promises more than the stream holds costs at most twice the real data, never the promise.
constexpr uint64_t kFirstOutChunk = uint64_t{1} << 20;
// Deflate cannot compress better than 1032:1 (zlib's documented limit), so a gzip file of
// n bytes inflates to at most about 1032*n bytes; a header that promises more is corrupt.
constexpr uint64_t kMaxDeflateRatio = 1032;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw DataError(path + ": " + what);
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// The bytes of a file or of a buffer in memory, decompressed when they start with the gzip
// magic 1f 8b. Everything past the first read of the input is shared by both, so the
// in-memory parsers (what the fuzzers drive) run the same checks as the file loaders.
class ByteSource {
 public:
  // Streams a file: the loaders never hold the compressed and decompressed data at once.
  explicit ByteSource(const std::string& path) : name_(path) {
    file_.reset(std::fopen(path.c_str(), "rb"));
    if (!file_) {
      const int err = errno;
      if (err == ENOENT)
        fail(path, "no such file; run `bash scripts/fetch_mnist.sh` to download MNIST");
      fail(path, std::string("cannot open: ") + std::strerror(err));
    }
    struct stat st {};
    if (fstat(fileno(file_.get()), &st) != 0)
      fail(path, std::string("cannot stat: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
    input_size_ = static_cast<uint64_t>(st.st_size);
    start();
  }
  // Reads size bytes at data (not copied; they must outlive this); `name` is for messages.
  ByteSource(const uint8_t* data, size_t size, const std::string& name)
      : name_(name), memory_(data), input_size_(size) {
    start();
  }
  ~ByteSource() {
    if (gzip_) inflateEnd(&zs_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  const std::string& name() const { return name_; }
  bool gzip() const { return gzip_; }
  uint64_t input_size() const { return input_size_; }  // bytes in the file, compressed or not

  // Reads up to n bytes into dst; returns fewer only at the end of the (decompressed) data.
  size_t read(uint8_t* dst, size_t n) { return gzip_ ? read_gzip(dst, n) : read_input(dst, n); }

 private:
  void start() {
    if (input_size_ == 0) fail(name_, std::string("empty file; ") + kFetchHint);
    uint8_t magic[2] = {0, 0};
    const size_t got = read_input(magic, 2);
    gzip_ = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    // Back to the start: the magic is part of the gzip header or of the IDX header.
    if (file_ && std::fseek(file_.get(), 0, SEEK_SET) != 0) fail_read();
    memory_pos_ = 0;
    if (gzip_) {
      in_.resize(kInChunk);
      // 16 + MAX_WBITS: expect a gzip header and trailer (CRC and length are checked).
      if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) fail(name_, "zlib inflateInit2 failed");
    }
  }

  [[noreturn]] void fail_read() const {
    fail(name_, std::string("read error: ") + std::strerror(errno));
  }

  // Up to n bytes of the input as stored (compressed or not); fewer only at its end.
  size_t read_input(uint8_t* dst, size_t n) {
    if (!file_) {
      const size_t got = static_cast<size_t>(std::min<uint64_t>(n, input_size_ - memory_pos_));
      if (got > 0) std::memcpy(dst, memory_ + memory_pos_, got);
      memory_pos_ += got;
      return got;
    }
    const size_t got = std::fread(dst, 1, n, file_.get());
    if (got < n && std::ferror(file_.get())) fail_read();
    return got;
  }

  // Tops up the compressed input when zlib has consumed it all.
  void refill() {
    if (zs_.avail_in != 0 || in_eof_) return;
    const size_t got = read_input(in_.data(), in_.size());
    if (got < in_.size()) in_eof_ = true;
    zs_.next_in = in_.data();
    zs_.avail_in = static_cast<uInt>(got);
  }

  size_t read_gzip(uint8_t* dst, size_t n) {
    size_t done = 0;
    while (done < n && !stream_end_) {
      refill();
      zs_.next_out = dst + done;
      zs_.avail_out = static_cast<uInt>(std::min<size_t>(n - done, UINT_MAX));
      const int ret = inflate(&zs_, Z_NO_FLUSH);
      done = static_cast<size_t>(zs_.next_out - dst);
      switch (ret) {
        case Z_OK:
          break;
        case Z_STREAM_END:
          // gzip allows concatenated members; anything else after a member is corrupt
          // data that the next inflate reports.
          refill();
          if (zs_.avail_in == 0) {
            stream_end_ = true;
          } else {
            inflateReset(&zs_);
          }
          break;
        case Z_BUF_ERROR:  // no progress possible: refill() left no input, so it ended early
          fail(name_, std::string("truncated gzip stream (cut-short download?); ") + kFetchHint);
        case Z_NEED_DICT:
        case Z_DATA_ERROR:
          fail(name_, std::string("corrupt gzip data (") + (zs_.msg ? zs_.msg : "no detail") +
                          "); " + kFetchHint);
        case Z_MEM_ERROR:
          fail(name_, "out of memory while decompressing");
        default:
          fail(name_, "zlib inflate error " + std::to_string(ret));
      }
    }
    return done;
  }

  std::string name_;
  FilePtr file_;                     // the file, or null when reading memory_
  const uint8_t* memory_ = nullptr;  // (input_size_) bytes when not reading a file
  uint64_t memory_pos_ = 0;
  uint64_t input_size_ = 0;
  bool gzip_ = false;
  z_stream zs_{};
  std::vector<uint8_t> in_;
  bool in_eof_ = false;
  bool stream_end_ = false;
};

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void put_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

std::string hex_bytes(const uint8_t* p, int n) {
  std::string s;
  char buf[4];
  for (int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), i ? " %02x" : "%02x", p[i]);
    s += buf;
  }
  return s;
}

struct IdxData {
  std::vector<uint32_t> dims;  // (rank)
  std::vector<uint8_t> data;   // prod(dims) bytes, row-major
};

// Reads and checks an IDX ubyte file of the given rank (see idx.h for the layout).
IdxData parse_idx(ByteSource& src, int rank) {
  const char* kind = rank == kImagesRank ? "images" : "labels";
  const std::string& path = src.name();

  // ---- header: 00 00 08 <rank>, then rank big-endian uint32 dimensions ----
  uint8_t header[4 + 4 * kImagesRank];
  const size_t header_bytes = 4 + 4 * static_cast<size_t>(rank);
  size_t got = src.read(header, 4);
  if (got < 4)
    fail(path, "too short for an IDX header (" + std::to_string(got) + " bytes); " + kFetchHint);
  if (header[0] != 0 || header[1] != 0) {
    std::string what = "not an IDX file: starts with " + hex_bytes(header, 4) +
                       ", expected 00 00 08 0" + std::to_string(rank);
    if (header[0] == '<') what += " (looks like an HTML page, a failed download?)";
    fail(path, what + "; " + kFetchHint);
  }
  if (header[2] != kTypeUbyte) {
    char type[8];
    std::snprintf(type, sizeof(type), "0x%02x", header[2]);
    fail(path, std::string("IDX element type ") + type + " is not unsigned byte (0x08); only " +
                   "ubyte MNIST-format files are supported");
  }
  if (header[3] != rank) {
    std::string what = "IDX rank " + std::to_string(header[3]) + ", expected " +
                       std::to_string(rank) + " for an " + kind + " file";
    if (header[3] == kImagesRank) what += " (this looks like an images file)";
    if (header[3] == kLabelsRank) what += " (this looks like a labels file)";
    fail(path, what);
  }
  got += src.read(header + 4, header_bytes - 4);
  if (got < header_bytes)
    fail(path, "truncated header: " + std::to_string(got) + " bytes, need " +
                   std::to_string(header_bytes) + "; " + kFetchHint);

  IdxData out;
  std::string shape;  // "60000x28x28", for messages
  uint64_t data_bytes = 1;
  for (int i = 0; i < rank; ++i) {
    const uint32_t d = read_be32(header + 4 + 4 * i);
    out.dims.push_back(d);
    shape += (i ? "x" : "") + std::to_string(d);
    if (__builtin_mul_overflow(data_bytes, uint64_t{d}, &data_bytes))
      fail(path, "header dimensions overflow; " + std::string(kFetchHint));
  }
  for (int i = 0; i < rank; ++i)
    if (out.dims[i] == 0) fail(path, "header says " + shape + ": a zero dimension; " + kFetchHint);
  if (rank == kImagesRank && (out.dims[1] > kIdxMaxSide || out.dims[2] > kIdxMaxSide))
    fail(path, "header says " + shape + ": images larger than " + std::to_string(kIdxMaxSide) +
                   "x" + std::to_string(kIdxMaxSide) + " are not supported; corrupt header?");
  if (data_bytes > uint64_t{PTRDIFF_MAX} - header_bytes)
    fail(path, "header says " + shape + ": too large; corrupt header?");
  const uint64_t total = header_bytes + data_bytes;
  const std::string says = "header says " + shape + " = " + std::to_string(total) + " bytes";

  // ---- size checks, before anything the size of the header's promise is allocated ----
  if (!src.gzip()) {
    if (src.input_size() < total)
      fail(path, "truncated: " + says + ", file has " + std::to_string(src.input_size()) + "; " +
                     kFetchHint);
    if (src.input_size() > total)
      fail(path, std::to_string(src.input_size() - total) + " trailing bytes: " + says +
                     ", file has " + std::to_string(src.input_size()) + "; " + kFetchHint);
  } else if (total / kMaxDeflateRatio > src.input_size()) {
    fail(path, says + " (decompressed), more than a gzip file of " +
                   std::to_string(src.input_size()) + " bytes can hold; corrupt header? " +
                   kFetchHint);
  }

  // ---- data: a raw file's size is now known to be right; gzip data grows as it arrives ----
  uint64_t filled = 0;
  while (filled < data_bytes) {
    if (filled == out.data.size()) {
      const uint64_t next =
          src.gzip() ? std::max<uint64_t>(2 * filled, kFirstOutChunk) : data_bytes;
      const size_t size = static_cast<size_t>(std::min(next, data_bytes));
      out.data.reserve(size);  // exactly size: resize alone may round the capacity up to 2x
      out.data.resize(size);
    }
    const size_t want = static_cast<size_t>(out.data.size() - filled);
    const size_t n = src.read(out.data.data() + filled, want);
    filled += n;
    if (n < want) break;
  }
  const char* what = src.gzip() ? " (decompressed)" : "";
  if (filled < data_bytes)
    fail(path, "truncated: " + says + what + ", file has " + std::to_string(header_bytes + filled) +
                   "; " + kFetchHint);
  uint8_t extra = 0;
  if (src.read(&extra, 1) != 0)
    fail(path,
         "longer than its header says: " + says + what + ", but there is more data; " + kFetchHint);
  return out;
}

IdxImages images_of(IdxData idx) {
  IdxImages images;
  images.count = idx.dims[0];
  images.rows = static_cast<int>(idx.dims[1]);
  images.cols = static_cast<int>(idx.dims[2]);
  images.pixels = std::move(idx.data);
  return images;
}

FilePtr open_for_write(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "wb"));
  if (!f) fail(path, std::string("cannot open for writing: ") + std::strerror(errno));
  return f;
}

void write_all(const std::string& path, FilePtr f, const uint8_t* header, size_t header_bytes,
               const std::vector<uint8_t>& data) {
  const bool ok = std::fwrite(header, 1, header_bytes, f.get()) == header_bytes &&
                  std::fwrite(data.data(), 1, data.size(), f.get()) == data.size() &&
                  std::fflush(f.get()) == 0;
  const int err = errno;
  if (std::fclose(f.release()) != 0 || !ok)
    fail(path, std::string("write failed: ") + std::strerror(ok ? errno : err));
}

}  // namespace

IdxImages load_idx_images(const std::string& path) {
  ByteSource src(path);
  return images_of(parse_idx(src, kImagesRank));
}

std::vector<uint8_t> load_idx_labels(const std::string& path) {
  ByteSource src(path);
  return parse_idx(src, kLabelsRank).data;
}

IdxImages parse_idx_images(const uint8_t* data, size_t size, const std::string& source) {
  ByteSource src(data, size, source);
  return images_of(parse_idx(src, kImagesRank));
}

std::vector<uint8_t> parse_idx_labels(const uint8_t* data, size_t size, const std::string& source) {
  ByteSource src(data, size, source);
  return parse_idx(src, kLabelsRank).data;
}

MnistSplit load_mnist(const std::string& dir, const std::string& split) {
  if (split != "train" && split != "t10k")
    fail(dir, "unknown MNIST split '" + split + "'; expected train or t10k");
  // The raw file wins over the .gz when both are there.
  auto find = [&](const std::string& stem) {
    const fs::path raw = fs::path(dir) / stem;
    fs::path gz = raw;
    gz += ".gz";
    std::error_code ec;
    if (fs::exists(raw, ec)) return raw.string();
    if (fs::exists(gz, ec)) return gz.string();
    fail(raw.string(),
         "no such file (nor " + gz.filename().string() +
             "); run `bash scripts/fetch_mnist.sh` to download MNIST into data/mnist/");
  };
  const std::string images_path = find(split + "-images-idx3-ubyte");
  const std::string labels_path = find(split + "-labels-idx1-ubyte");
  MnistSplit out;
  out.images = load_idx_images(images_path);
  out.labels = load_idx_labels(labels_path);
  if (static_cast<uint64_t>(out.images.count) != out.labels.size())
    fail(images_path, "has " + std::to_string(out.images.count) + " images but " + labels_path +
                          " has " + std::to_string(out.labels.size()) +
                          " labels; both must come from the same split. " + kFetchHint);
  return out;
}

void write_idx_images(const std::string& path, const IdxImages& images) {
  if (images.count < 1 || images.count > int64_t{UINT32_MAX} || images.rows < 1 ||
      images.cols < 1 || images.rows > kIdxMaxSide || images.cols > kIdxMaxSide)
    fail(path, "cannot write " + std::to_string(images.count) + "x" + std::to_string(images.rows) +
                   "x" + std::to_string(images.cols) +
                   " images: count must be 1..2^32-1 and rows, cols 1.." +
                   std::to_string(kIdxMaxSide));
  const uint64_t want = static_cast<uint64_t>(images.count) * static_cast<uint64_t>(images.rows) *
                        static_cast<uint64_t>(images.cols);
  if (images.pixels.size() != want)
    fail(path, "cannot write: pixels has " + std::to_string(images.pixels.size()) +
                   " bytes, count*rows*cols = " + std::to_string(want));
  uint8_t header[16] = {0, 0, kTypeUbyte, kImagesRank};
  put_be32(header + 4, static_cast<uint32_t>(images.count));
  put_be32(header + 8, static_cast<uint32_t>(images.rows));
  put_be32(header + 12, static_cast<uint32_t>(images.cols));
  write_all(path, open_for_write(path), header, sizeof(header), images.pixels);
}

void write_idx_labels(const std::string& path, const std::vector<uint8_t>& labels) {
  if (labels.empty() || labels.size() > size_t{UINT32_MAX})
    fail(path,
         "cannot write " + std::to_string(labels.size()) + " labels: the count must be 1..2^32-1");
  uint8_t header[8] = {0, 0, kTypeUbyte, kLabelsRank};
  put_be32(header + 4, static_cast<uint32_t>(labels.size()));
  write_all(path, open_for_write(path), header, sizeof(header), labels);
}

}  // namespace mnistgan
