#include <gtest/gtest.h>

#include "node_agent.h"

namespace mlscale::nodeagent {
namespace {

using nlohmann::json;

TEST(TokenFromTokenRequest, ReadsTokenAndExpiry) {
  StatusOr<IssuedTokenValue> value = TokenFromTokenRequest(
      json::parse(R"({"kind":"TokenRequest","status":{"token":"eyJ.x.y","expirationTimestamp":"2026-12-01T13:00:00Z"}})"));
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(value->token, "eyJ.x.y");
  EXPECT_EQ(std::chrono::system_clock::to_time_t(value->expires), 1796130000);
}

TEST(TokenFromTokenRequest, RefusesMalformedAnswersWithoutQuotingThem) {
  for (const char* answer : {R"({})", R"({"status":"x"})", R"({"status":{"expirationTimestamp":"2026-12-01T13:00:00Z"}})",
                             R"({"status":{"token":"","expirationTimestamp":"2026-12-01T13:00:00Z"}})",
                             R"({"status":{"token":7,"expirationTimestamp":"2026-12-01T13:00:00Z"}})",
                             R"({"status":{"token":"secret-value"}})",
                             R"({"status":{"token":"secret-value","expirationTimestamp":"tomorrow"}})",
                             R"({"status":{"token":"secret-value","expirationTimestamp":1796130000}})", R"([1])"}) {
    StatusOr<IssuedTokenValue> value = TokenFromTokenRequest(json::parse(answer));
    ASSERT_FALSE(value.ok()) << answer;
    EXPECT_EQ(value.status().code(), StatusCode::kDataLoss) << answer;
    EXPECT_EQ(value.status().ToString().find("secret-value"), std::string::npos) << value.status().ToString();
  }
}

}  // namespace
}  // namespace mlscale::nodeagent
