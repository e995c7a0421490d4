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

namespace {

// Whether any TCP socket of this machine is bound to `address` (IPv4 "a.b.c.d"), from
// /proc/net/tcp: a process of a pod whose lease was reclaimed (its agent killed, the pod's
// processes not yet gone) may still listen there, and a new pod given the address would
// fail to bind ("Address already in use"), which the TrainingJob controller rightly takes
// as the worker's failure.
bool AddressHasSockets(const std::string& address) {
  uint32_t host_order = 0;
  {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (std::sscanf(address.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d) != 4) return false;
    host_order = (a << 24) | (b << 16) | (c << 8) | d;
  }
  // The kernel prints the address as the 32-bit value in memory (network order) in hex,
  // i.e. little-endian on x86: 127.0.0.1 is 0100007F.
  char wanted[9];
  std::snprintf(wanted, sizeof wanted, "%08X", __builtin_bswap32(host_order));
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  while (std::getline(tcp, line)) {
    // "  sl  local_address rem_address ...": "  0: 0100007F:1F90 ..."
    const size_t colon = line.find(':');
    if (colon == std::string::npos || line.size() < colon + 10) continue;
    if (line.compare(colon + 2, 8, wanted) == 0) return true;
  }
  return false;
}

}  // namespace

bool AddressPool::TryLease(const std::string& address) {
  if (AddressHasSockets(address)) return false;
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
