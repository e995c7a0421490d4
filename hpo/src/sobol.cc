#include "sobol.h"

#include <cassert>

#include "random.h"

namespace mlscale::hpo {
namespace {

// Joe & Kuo (2008), new-joe-kuo-6.21201: degree s, coefficients a, initial m_1..m_s of
// dimensions 2.. (dimension 1 is the van der Corput sequence).
struct Primitive {
  int degree;
  std::uint32_t coefficients;
  std::array<std::uint32_t, 7> initial;
};
constexpr std::array<Primitive, SobolSequence::kMaxDimensions - 1> kPrimitives = {{
    {1, 0, {1}},
    {2, 1, {1, 3}},
    {3, 1, {1, 3, 1}},
    {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},
    {4, 4, {1, 3, 5, 13}},
    {5, 2, {1, 1, 5, 5, 17}},
    {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}},
    {5, 11, {1, 1, 5, 1, 1}},
    {5, 13, {1, 1, 1, 3, 11}},
    {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}},
    {6, 13, {1, 1, 1, 15, 21, 21}},
    {6, 16, {1, 3, 1, 13, 27, 49}},
    {6, 19, {1, 1, 1, 15, 7, 5}},
    {6, 22, {1, 3, 1, 15, 13, 25}},
    {6, 25, {1, 1, 5, 5, 19, 61}},
    {7, 1, {1, 3, 7, 11, 23, 15, 103}},
    {7, 4, {1, 3, 7, 13, 13, 15, 69}},
}};

}  // namespace

SobolSequence::SobolSequence(int dimensions, std::uint64_t shift_seed) : dimensions_(dimensions) {
  assert(dimensions >= 1 && dimensions <= kMaxDimensions);
  for (int k = 0; k < kBits; ++k) directions_[0][k] = std::uint32_t{1} << (kBits - 1 - k);
  for (int j = 1; j < dimensions; ++j) {
    const Primitive& p = kPrimitives[j - 1];
    auto& v = directions_[j];  // v[k] is V_{k+1} of Joe-Kuo's notation
    for (int k = 0; k < p.degree; ++k) v[k] = p.initial[k] << (kBits - 1 - k);
    for (int k = p.degree; k < kBits; ++k) {
      v[k] = v[k - p.degree] ^ (v[k - p.degree] >> p.degree);
      for (int i = 1; i < p.degree; ++i) {
        if ((p.coefficients >> (p.degree - 1 - i)) & 1U) v[k] ^= v[k - i];
      }
    }
  }
  Random random({shift_seed, 0x50b01});
  for (int j = 0; j < dimensions; ++j) shift_[j] = static_cast<std::uint32_t>(random.Bits() >> 32);
}

Eigen::VectorXd SobolSequence::Point(std::uint64_t index) const {
  std::uint64_t gray = index ^ (index >> 1);
  Eigen::VectorXd point(dimensions_);
  for (int j = 0; j < dimensions_; ++j) {
    std::uint32_t bits = shift_[j];
    for (int k = 0; k < kBits && (gray >> k) != 0; ++k) {
      if ((gray >> k) & 1U) bits ^= directions_[j][k];
    }
    point[j] = static_cast<double>(bits) * 0x1.0p-32;
  }
  return point;
}

}  // namespace mlscale::hpo
