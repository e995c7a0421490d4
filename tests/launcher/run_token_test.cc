#include "mlscale/common/run_token.h"

#include <gtest/gtest.h>

#include <set>

namespace mlscale {
namespace {

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "xbc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

TEST(GenerateRunToken, Gives64HexCharactersFreshEachTime) {
  std::set<std::string> seen;
  for (int i = 0; i < 16; ++i) {
    auto token = GenerateRunToken();
    ASSERT_TRUE(token.ok()) << token.status().ToString();
    EXPECT_EQ(token->size(), 64u);
    EXPECT_EQ(token->find_first_not_of("0123456789abcdef"), std::string::npos) << *token;
    seen.insert(*token);
  }
  EXPECT_EQ(seen.size(), 16u);
}

}  // namespace
}  // namespace mlscale
