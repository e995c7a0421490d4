// Sobol low-discrepancy points (Joe-Kuo direction numbers), digitally shifted by a seed.
#pragma once

#include <array>
#include <cstdint>

#include <Eigen/Core>

namespace mlscale::hpo {

class SobolSequence {
 public:
  static constexpr int kMaxDimensions = 21;

  // dimensions in [1, kMaxDimensions]; `shift_seed` scrambles the points by XOR with
  // random bits (the same seed gives the same points).
  SobolSequence(int dimensions, std::uint64_t shift_seed);

  // Point `index` of the sequence, in [0, 1)^dimensions.
  Eigen::VectorXd Point(std::uint64_t index) const;

 private:
  static constexpr int kBits = 32;
  int dimensions_;
  std::array<std::array<std::uint32_t, kBits>, kMaxDimensions> directions_{};
  std::array<std::uint32_t, kMaxDimensions> shift_{};
};

}  // namespace mlscale::hpo
