#include "address_pool.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

namespace mlscale::nodeagent {
namespace {

// The pid recorded in a lease file, 0 when unreadable.
pid_t LeaseOwner(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

bool ProcessExists(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

bool Usable(uint32_t address) {
  uint32_t last_octet = address & 0xff;
  return last_octet != 0 && last_octet != 255;
}

}  // namespace

std::string FormatIPv4(uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 0xff) + "." +
         std::to_string((address >> 8) & 0xff) + "." + std::to_string(address & 0xff);
}

StatusOr<uint32_t> ParseIPv4(const std::string& text) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 ||
      b > 255 || c > 255 || d > 255) {
    return InvalidArgument("'" + text + "' is not an IPv4 address");
  }
  return (a << 24) | (b << 16) | (c << 8) | d;
}

AddressPool::AddressPool(std::string dir, uint32_t first, uint32_t last)
    : dir_(std::move(dir)), first_(first), last_(last) {
  std::error_code ignored;
  std::filesystem::create_directories(dir_, ignored);
}

AddressPool::AddressPool(std::string dir)
    : AddressPool(std::move(dir), (127u << 24) | (64u << 16) | 1u,
                  (127u << 24) | (127u << 16) | (255u << 8) | 254u) {}

bool AddressPool::TryLease(const std::string& address) {
  std::string path = dir_ + "/" + address;
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      std::string pid = std::to_string(getpid()) + "\n";
      bool written = write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
      close(fd);
      if (!written) unlink(path.c_str());
      return written;
    }
    if (errno != EEXIST) return false;
    // Taken: reclaim it only when its owner is gone (a crashed agent). A lease being
    // written right now reads as pid 0; leave it alone unless it stays empty.
    pid_t owner = LeaseOwner(path);
    if (owner == 0) {
      struct stat info {};
      if (stat(path.c_str(), &info) != 0 || time(nullptr) - info.st_mtime < 10) return false;
    } else if (ProcessExists(owner)) {
      return false;
    }
    unlink(path.c_str());
  }
  return false;
}

StatusOr<std::string> AddressPool::Acquire(const std::string& key) {
  uint64_t size = static_cast<uint64_t>(last_) - first_ + 1;
  uint64_t start = std::hash<std::string>{}(key) % size;
  for (uint64_t i = 0; i < size; ++i) {
    uint32_t address = first_ + static_cast<uint32_t>((start + i) % size);
    if (!Usable(address)) continue;
    std::string text = FormatIPv4(address);
    if (TryLease(text)) return text;
  }
  return Status(StatusCode::kResourceExhausted,
                "no free pod address in " + FormatIPv4(first_) + "-" + FormatIPv4(last_) +
                    " (leases in " + dir_ + ")");
}

void AddressPool::Release(const std::string& address) {
  std::string path = dir_ + "/" + address;
  if (LeaseOwner(path) == getpid()) unlink(path.c_str());
}

}  // namespace mlscale::nodeagent
