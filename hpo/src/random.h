// Deterministic pseudo-random numbers: the same seed gives the same stream on every
// platform (std:: distributions are implementation-defined, so they are not used).
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <numbers>
#include <random>

namespace mlscale::hpo {

class Random {
 public:
  // A stream named by several integers (e.g. seed, history size, purpose); any change to
  // one of them gives an unrelated stream.
  explicit Random(std::initializer_list<std::uint64_t> keys) {
    std::uint64_t state = 0x6a09e667f3bcc909ULL;
    for (std::uint64_t key : keys) state = Mix(state ^ Mix(key + 0x9e3779b97f4a7c15ULL));
    engine_.seed(state);
  }

  std::uint64_t Bits() { return engine_(); }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  // Uniform in {0, ..., n - 1}, n > 0.
  std::uint64_t Below(std::uint64_t n) { return static_cast<std::uint64_t>(Uniform() * static_cast<double>(n)) % n; }
  // Standard normal (Box-Muller).
  double Normal() {
    double u1 = 1.0 - Uniform();  // (0, 1]
    double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  static std::uint64_t Mix(std::uint64_t z) {  // SplitMix64's finalizer
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  std::mt19937_64 engine_;
};

}  // namespace mlscale::hpo
