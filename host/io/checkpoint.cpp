// checkpoint.cpp: see checkpoint.h.
#include "io/checkpoint.h"

#include <zlib.h>  // crc32

#include <cstring>
#include <optional>

#include "io/atomic_file.h"
#include "core/json_integer.h"

namespace mnistgan {

namespace {

constexpr char kMagic[8] = {'M', 'N', 'G', 'A', 'N', 'C', 'K', 'P'};
// A checkpoint of the default model is ~37 MB; this bounds what a bad path can make us read.
constexpr size_t kMaxCheckpointBytes = size_t{4} << 30;

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // the supported hosts are little-endian
  out.append(bytes, sizeof(T));
}

// Reads fields with a bounds check before every access.
class Reader {
 public:
  Reader(const std::string& bytes, size_t end, const std::string& source)
      : bytes_(bytes), end_(end), source_(source) {}
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string get_string(size_t n, const char* what) {
    need(n, what);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  void get_floats(float* dst, size_t n, const char* what) {
    if (n > (end_ - pos_) / sizeof(float)) fail(std::string("truncated in ") + what);
    if (n == 0) return;  // a tensor with a zero dimension: dst is null, and memcpy(null) is UB
    std::memcpy(dst, bytes_.data() + pos_, n * sizeof(float));
    pos_ += n * sizeof(float);
  }
  size_t remaining() const { return end_ - pos_; }
  size_t pos() const { return pos_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw CheckpointError(source_ + ": not a valid checkpoint: " + what + " (at byte " +
                          std::to_string(pos_) + ")");
  }

 private:
  void need(size_t n, const char* what) const {
    if (n > end_ - pos_) fail(std::string("truncated in ") + what);
  }
  const std::string& bytes_;
  size_t end_;
  const std::string& source_;
  size_t pos_ = 0;
};

uint32_t crc_of(const std::string& bytes, size_t begin, size_t end) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = reinterpret_cast<const Bytef*>(bytes.data()) + begin;
  size_t left = end - begin;
  while (left > 0) {  // crc32 takes a uInt length
    const uInt chunk = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
    crc = crc32(crc, p, chunk);
    p += chunk;
    left -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

const CheckpointTensor* Checkpoint::find(const std::string& name) const {
  for (const CheckpointTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

std::string serialize_checkpoint(const Checkpoint& checkpoint) {
  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(out, kCheckpointVersion);
  const std::string header = checkpoint.header.dump();
  put<uint32_t>(out, static_cast<uint32_t>(header.size()));
  out += header;
  put<uint32_t>(out, static_cast<uint32_t>(checkpoint.tensors.size()));
  for (const CheckpointTensor& t : checkpoint.tensors) {
    put<uint32_t>(out, static_cast<uint32_t>(t.name.size()));
    out += t.name;
    put<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) put<int64_t>(out, d);
    out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
  }
  put<uint32_t>(out, crc_of(out, sizeof(kMagic), out.size()));
  return out;
}

Checkpoint parse_checkpoint(const std::string& bytes, const std::string& source) {
  if (bytes.size() < sizeof(kMagic) + 4 || std::memcmp(bytes.data(), kMagic, 8) != 0)
    throw CheckpointError(source + ": not an mnistgan checkpoint (bad magic; expected a .ckpt " +
                          "file written by `mnistgan train`)");
  const size_t end = bytes.size() - 4;  // the CRC trailer
  Reader r(bytes, end, source);
  r.get_string(sizeof(kMagic), "magic");
  const uint32_t version = r.get<uint32_t>("version");
  if (version < kCheckpointOldestVersion || version > kCheckpointVersion)
    throw CheckpointError(source + ": checkpoint format version " + std::to_string(version) +
                          " is not supported (this build reads versions " +
                          std::to_string(kCheckpointOldestVersion) + " to " +
                          std::to_string(kCheckpointVersion) + ")");
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + end, 4);
  if (crc_of(bytes, sizeof(kMagic), end) != stored_crc)
    throw CheckpointError(source + ": checkpoint is corrupt or truncated (CRC-32 mismatch)");

  Checkpoint ck;
  const uint32_t header_bytes = r.get<uint32_t>("header length");
  const std::string header = r.get_string(header_bytes, "header");
  ck.header = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (ck.header.is_discarded() || !ck.header.is_object()) r.fail("header is not a JSON object");
  const uint32_t count = r.get<uint32_t>("tensor count");
  for (uint32_t i = 0; i < count; ++i) {
    CheckpointTensor t;
    const uint32_t name_bytes = r.get<uint32_t>("tensor name length");
    if (name_bytes == 0 || name_bytes > 256) r.fail("tensor name length out of range");
    t.name = r.get_string(name_bytes, "tensor name");
    const uint32_t rank = r.get<uint32_t>("tensor rank");
    if (rank > 4) r.fail("tensor '" + t.name + "' has rank " + std::to_string(rank));
    size_t elements = 1;
    for (uint32_t d = 0; d < rank; ++d) {
      const int64_t dim = r.get<int64_t>("tensor shape");
      if (dim < 0 || static_cast<uint64_t>(dim) > r.remaining() / sizeof(float) ||
          (dim > 0 && elements > r.remaining() / sizeof(float) / static_cast<size_t>(dim)))
        r.fail("tensor '" + t.name + "' is larger than the file");
      t.shape.push_back(dim);
      elements *= static_cast<size_t>(dim);
    }
    if (elements > r.remaining() / sizeof(float)) r.fail("tensor '" + t.name + "' truncated");
    t.data.resize(elements);
    r.get_floats(t.data.data(), elements, "tensor data");
    ck.tensors.push_back(std::move(t));
  }
  if (r.remaining() != 0) r.fail("trailing bytes after the last tensor");
  return ck;
}

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  write_file_atomic(path, serialize_checkpoint(checkpoint));
}

Checkpoint load_checkpoint(const std::string& path) {
  std::string bytes;
  try {
    bytes = read_file(path, kMaxCheckpointBytes);
  } catch (const IoError& e) {
    throw CheckpointError(e.what());
  }
  return parse_checkpoint(bytes, path);
}

namespace {
// object[key] as an Int (json_integer.h), or fallback when the key is absent.
template <typename Int>
Int header_integer(const nlohmann::json& object, const std::string& key, Int fallback,
                   const std::string& source) {
  if (!object.is_object())
    throw CheckpointError(source + ": header field holding '" + key + "' is not a JSON object");
  const auto it = object.find(key);
  if (it == object.end()) return fallback;
  const std::optional<Int> value = json_integer<Int>(*it);
  if (!value)
    throw CheckpointError(source + ": header field '" + key + "' is " + it->dump() +
                          ", not an integer in range (corrupt or hand-edited checkpoint?)");
  return *value;
}
}  // namespace

int64_t header_int(const nlohmann::json& object, const std::string& key, int64_t fallback,
                   const std::string& source) {
  return header_integer<int64_t>(object, key, fallback, source);
}

uint64_t header_uint(const nlohmann::json& object, const std::string& key, uint64_t fallback,
                     const std::string& source) {
  return header_integer<uint64_t>(object, key, fallback, source);
}

}  // namespace mnistgan
