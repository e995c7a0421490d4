// The stable hashes (mlscale/common/hash.h): pinned values, since names of running
// children were made with them and must not move.
#include "mlscale/common/hash.h"

#include <gtest/gtest.h>

namespace mlscale {
namespace {

// The published FNV-1a 32-bit test vectors.
static_assert(Fnv1a32("") == 0x811c9dc5u);
static_assert(Fnv1a32("a") == 0xe40c292cu);
static_assert(Fnv1a32("foobar") == 0xbf9cf968u);

TEST(Fnv1a64, KeepsTheValuesInferenceServiceNamesWereMadeWith) {
  // Computed by the 64-bit function operator/controllers/inference/src/children.cc had
  // before it moved here; its offset basis is not FNV's (see hash.h), so these are not
  // the published 64-bit vectors (FNV-1a 64 of "" is 0xcbf29ce484222325).
  EXPECT_EQ(Fnv1a64(""), 0x14650fb0739d0383ull);
  EXPECT_EQ(Fnv1a64("a"), 0x44bd8ad473cd9906ull);
  EXPECT_EQ(Fnv1a64("foobar"), 0x88fad7c0a8ff07f2ull);
  EXPECT_EQ(Fnv1a64(std::string_view("train\0worker-0", 14)), 0xa5d3be2a0578d4ceull);
}

TEST(Fnv1a32, HashesEveryByteIncludingNul) {
  EXPECT_EQ(Fnv1a32(std::string_view("train\0worker-0", 14)), 0xb69ffe6cu);
  EXPECT_NE(Fnv1a32(std::string_view("ab\0", 3)), Fnv1a32("ab"));
}

TEST(HexDigits, KeepsTheLowestDigitsZeroPadded) {
  EXPECT_EQ(HexDigits(0x2a, 4), "002a");
  EXPECT_EQ(HexDigits(0x811c9dc5u, 8), "811c9dc5");
  EXPECT_EQ(HexDigits(0x14650fb0739d0383ull, 16), "14650fb0739d0383");
  EXPECT_EQ(HexDigits(0x14650fb0739d0383ull, 8), "739d0383");
  EXPECT_EQ(HexDigits(0, 3), "000");
}

}  // namespace
}  // namespace mlscale
