// Pod addresses: one loopback address per pod, unique across every node agent on the
// machine (agents of parallel tests share the range). A lease is a file
// <dir>/<address> created exclusively and holding the owner's pid; leases of processes
// that no longer exist are taken over, so a crashed agent leaks nothing for long.
#pragma once

#include <cstdint>
#include <string>

#include "mlscale/common/status.h"

namespace mlscale::nodeagent {

class AddressPool {
 public:
  // Addresses first..last (IPv4, host order); addresses ending in .0 or .255 are
  // skipped. `dir` is created when missing.
  AddressPool(std::string dir, uint32_t first, uint32_t last);
  // The default range 127.64.0.1 - 127.127.255.254 under `dir`.
  explicit AddressPool(std::string dir);

  // Leases a free address for `key` (a pod uid). The search starts at a place derived
  // from the key, so a pod tends to get the same address again. ResourceExhausted when
  // the range is full.
  StatusOr<std::string> Acquire(const std::string& key);
  // Returns the lease, if this process holds it.
  void Release(const std::string& address);

  const std::string& dir() const { return dir_; }

 private:
  bool TryLease(const std::string& address);

  std::string dir_;
  uint32_t first_;
  uint32_t last_;
};

// "a.b.c.d" <-> host-order integer.
std::string FormatIPv4(uint32_t address);
StatusOr<uint32_t> ParseIPv4(const std::string& text);

}  // namespace mlscale::nodeagent
