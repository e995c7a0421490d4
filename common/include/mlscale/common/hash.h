// Stable hashes for the names and annotations controllers derive from their inputs:
// the same text gives the same value in every process, build and platform (std::hash
// does not), so a restarted controller finds its children again by name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mlscale {

// FNV-1a over the bytes of `text` in the word type `Word`, from `offset_basis` with
// `prime`. Use the two below.
template <typename Word>
constexpr Word Fnv1a(std::string_view text, Word offset_basis, Word prime) {
  Word hash = offset_basis;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= prime;
  }
  return hash;
}

// FNV-1a, 32 bits (offset basis 2166136261, prime 16777619): the standard function.
constexpr std::uint32_t Fnv1a32(std::string_view text) { return Fnv1a<std::uint32_t>(text, 2166136261u, 16777619u); }

// FNV-1a, 64 bits, with the prime 1099511628211 but the offset basis 1469598103934665603:
// a digit short of FNV's 14695981039346656037, as it was first written. It is kept: the
// revision names and spec-hash annotations of existing InferenceServices were made with
// it, and a different value would roll every one of them. Mixes as well as the standard.
constexpr std::uint64_t Fnv1a64(std::string_view text) {
  return Fnv1a<std::uint64_t>(text, 1469598103934665603ull, 1099511628211ull);
}

// The lowest `digits` (1..16) hex digits of `value`, lower case, zero-padded:
// HexDigits(0x2a, 4) == "002a".
inline std::string HexDigits(std::uint64_t value, int digits) {
  std::string out(static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0 && value != 0; --i, value >>= 4) {
    out[static_cast<std::size_t>(i)] = "0123456789abcdef"[value & 0xf];
  }
  return out;
}

}  // namespace mlscale
