// The per-job secret (MLSCALE_RUN_TOKEN) that every rendezvous join, data-plane
// connection and progress request of a training job presents. The TrainingJob
// controller puts one in a Secret per job; `mlscale run` makes one per local run.
#pragma once

#include <sys/random.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#include "mlscale/common/status.h"

namespace mlscale {

// The environment variable that holds the token.
inline constexpr const char* kRunTokenVariable = "MLSCALE_RUN_TOKEN";
// The longest token accepted on the wire (the controller's are 64 hex characters).
inline constexpr std::size_t kMaxRunTokenBytes = 256;

// True when `a` and `b` are equal. The time taken depends on their lengths only, not
// on where they differ, so a peer cannot find the token byte by byte by timing refusals.
inline bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char difference = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    difference = static_cast<unsigned char>(difference | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
  }
  return difference == 0;
}

// 32 bytes from the kernel's random source as 64 lowercase hex characters (the same
// shape as the controller's tokens).
inline StatusOr<std::string> GenerateRunToken() {
  unsigned char bytes[32];
  std::size_t filled = 0;
  while (filled < sizeof bytes) {
    ssize_t got = ::getrandom(bytes + filled, sizeof bytes - filled, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return Internal(std::string("getrandom: ") + std::strerror(errno));
    filled += static_cast<std::size_t>(got);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  token.reserve(2 * sizeof bytes);
  for (unsigned char byte : bytes) {
    token.push_back(kHex[byte >> 4]);
    token.push_back(kHex[byte & 15]);
  }
  return token;
}

}  // namespace mlscale
