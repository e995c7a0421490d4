#include "mlscale/worker/checkpoint.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mlscale::worker {
namespace {

namespace fs = std::filesystem;
constexpr char kMagic[8] = {'M', 'L', 'S', 'C', 'K', 'P', 'T', '1'};
constexpr size_t kDigest = 32;

void Sha256(const void* data, size_t bytes, unsigned char out[kDigest]) {
  unsigned int length = 0;
  EVP_Digest(data, bytes, out, &length, EVP_sha256(), nullptr);
}

void AppendU64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }

void AppendFloats(std::string& out, const std::vector<float>& v) {
  AppendU64(out, v.size());
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// Reads from a byte string, failing cleanly past its end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool U64(uint64_t& v) { return Take(&v, 8); }
  bool Bytes(std::string& out, uint64_t n) {
    if (n > bytes_.size() - offset_) return false;
    out.assign(bytes_.substr(offset_, n));
    offset_ += n;
    return true;
  }
  bool Floats(std::vector<float>& out) {
    uint64_t n;
    if (!U64(n) || n > (bytes_.size() - offset_) / sizeof(float)) return false;
    out.resize(n);
    return Take(out.data(), n * sizeof(float));
  }
  size_t offset() const { return offset_; }

 private:
  bool Take(void* out, size_t n) {
    if (n > bytes_.size() - offset_) return false;
    std::memcpy(out, bytes_.data() + offset_, n);
    offset_ += n;
    return true;
  }
  std::string_view bytes_;
  size_t offset_ = 0;
};

bool IsCheckpointName(const std::string& name) {
  return name.starts_with("checkpoint-") && name.ends_with(".mlsckpt");
}

std::vector<fs::path> CheckpointsNewestFirst(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.is_regular_file() && IsCheckpointName(entry.path().filename().string())) files.push_back(entry.path());
  }
  // Zero-padded steps: the name order is the step order.
  std::sort(files.begin(), files.end(), std::greater<>());
  return files;
}

}  // namespace

std::string Sha256Hex(const void* data, size_t bytes) {
  unsigned char digest[kDigest];
  Sha256(data, bytes, digest);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : digest) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const fs::path target(path);
  const std::string temporary = (target.parent_path() / ("." + target.filename().string() + ".tmp")).string();
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Unavailable("cannot create '" + temporary + "': " + std::strerror(errno));
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string error = std::strerror(errno);
      ::close(fd);
      ::unlink(temporary.c_str());
      return Unavailable("cannot write '" + temporary + "': " + error);
    }
    written += size_t(n);
  }
  // A failed fsync or close means the bytes may never reach the disk: renaming the file
  // into place would then replace a good checkpoint with a lost one.
  if (::fsync(fd) != 0) {
    std::string error = std::strerror(errno);
    ::close(fd);
    ::unlink(temporary.c_str());
    return Unavailable("cannot flush '" + temporary + "' to disk: " + error);
  }
  if (::close(fd) != 0) {
    std::string error = std::strerror(errno);
    ::unlink(temporary.c_str());
    return Unavailable("cannot close '" + temporary + "': " + error);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    std::string error = std::strerror(errno);
    ::unlink(temporary.c_str());
    return Unavailable("cannot rename '" + temporary + "' to '" + path + "': " + error);
  }
  int dir_fd = ::open(target.parent_path().empty() ? "." : target.parent_path().c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd < 0) return Unavailable("cannot open the folder of '" + path + "' to flush it: " + std::strerror(errno));
  int synced = ::fsync(dir_fd);
  std::string error = synced != 0 ? std::strerror(errno) : "";
  ::close(dir_fd);
  if (synced != 0) return Unavailable("cannot flush the folder of '" + path + "' to disk: " + error);
  return Status::Ok();
}

StatusOr<std::string> WriteCheckpoint(const std::string& dir, const TrainingState& state,
                                      const nlohmann::json& metadata, int keep) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return Unavailable("cannot create checkpoint folder '" + dir + "': " + error.message());
  std::string bytes(kMagic, sizeof(kMagic));
  const std::string meta = metadata.dump();
  AppendU64(bytes, meta.size());
  bytes += meta;
  AppendU64(bytes, uint64_t(state.step));
  AppendFloats(bytes, state.parameters);
  AppendFloats(bytes, state.optimizer_state);
  unsigned char digest[kDigest];
  Sha256(bytes.data(), bytes.size(), digest);
  bytes.append(reinterpret_cast<const char*>(digest), kDigest);
  char name[64];
  std::snprintf(name, sizeof(name), "checkpoint-%012lld.mlsckpt", static_cast<long long>(state.step));
  const std::string path = (fs::path(dir) / name).string();
  MLSCALE_RETURN_IF_ERROR(WriteFileAtomically(path, bytes));
  auto files = CheckpointsNewestFirst(dir);
  for (size_t i = size_t(std::max(keep, 1)); i < files.size(); ++i) fs::remove(files[i], error);
  return path;
}

StatusOr<Checkpoint> ReadCheckpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open checkpoint '" + path + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  auto corrupt = [&](const std::string& why) { return DataLoss("checkpoint '" + path + "' is corrupt: " + why); };
  if (bytes.size() < sizeof(kMagic) + kDigest || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return corrupt("not a checkpoint file (bad header or truncated)");
  }
  unsigned char digest[kDigest];
  const size_t body = bytes.size() - kDigest;
  Sha256(bytes.data(), body, digest);
  if (std::memcmp(digest, bytes.data() + body, kDigest) != 0) return corrupt("checksum mismatch");
  Reader reader(std::string_view(bytes).substr(sizeof(kMagic), body - sizeof(kMagic)));
  Checkpoint checkpoint;
  checkpoint.path = path;
  uint64_t meta_length = 0, step = 0;
  std::string meta;
  if (!reader.U64(meta_length) || !reader.Bytes(meta, meta_length) || !reader.U64(step) ||
      !reader.Floats(checkpoint.state.parameters) || !reader.Floats(checkpoint.state.optimizer_state) ||
      reader.offset() != body - sizeof(kMagic)) {
    return corrupt("inconsistent lengths");
  }
  checkpoint.metadata = nlohmann::json::parse(meta, nullptr, false);
  if (checkpoint.metadata.is_discarded()) return corrupt("metadata is not JSON");
  checkpoint.state.step = int64_t(step);
  return checkpoint;
}

StatusOr<Checkpoint> LoadLatestCheckpoint(const std::string& dir,
                                          const std::function<void(const std::string&)>& warn) {
  for (const fs::path& file : CheckpointsNewestFirst(dir)) {
    auto checkpoint = ReadCheckpoint(file.string());
    if (checkpoint.ok()) return checkpoint;
    warn(checkpoint.status().message() + "; skipping it");
  }
  return NotFound("no valid checkpoint in '" + dir + "'");
}

}  // namespace mlscale::worker
