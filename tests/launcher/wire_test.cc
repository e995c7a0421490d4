// The rendezvous wire format: framing and message validation, with malformed input.
#include "mlscale/launcher/wire.h"

#include <gtest/gtest.h>

namespace mlscale::launcher {
namespace {

using nlohmann::json;

std::string Frame(std::uint32_t length, const std::string& body) {
  std::string frame{static_cast<char>(length >> 24), static_cast<char>((length >> 16) & 0xff),
                    static_cast<char>((length >> 8) & 0xff), static_cast<char>(length & 0xff)};
  return frame + body;
}

TEST(FrameReader, ReturnsMessagesSplitAcrossReads) {
  json first{{"type", "ready"}, {"rank", 1}};
  json second{{"type", "go"}};
  std::string bytes = EncodeFrame(first) + EncodeFrame(second);
  FrameReader reader;
  std::vector<json> got;
  for (char byte : bytes) {  // one byte at a time: the worst case of a stream
    reader.Append(std::string_view(&byte, 1));
    auto next = reader.Next();
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    if (next->has_value()) got.push_back(**next);
  }
  EXPECT_EQ(got, (std::vector<json>{first, second}));
}

TEST(FrameReader, ReturnsBackToBackMessagesOneAtATime) {
  FrameReader reader;
  reader.Append(EncodeFrame({{"n", 1}}) + EncodeFrame({{"n", 2}}));
  for (int n : {1, 2}) {
    auto next = reader.Next();
    ASSERT_TRUE(next.ok() && next->has_value());
    EXPECT_EQ((**next)["n"], n);
  }
  auto none = reader.Next();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(FrameReader, RejectsMalformedFrames) {
  struct Case {
    std::string name;
    std::string bytes;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"empty frame", Frame(0, ""), "empty frame"},
      {"over the limit", Frame(kMaxMessageBytes + 1, ""), "exceeds the limit"},
      {"4 GiB length", Frame(0xffffffffu, "{}"), "exceeds the limit"},
      {"not JSON", Frame(5, "hello"), "not valid JSON"},
      {"truncated JSON", Frame(9, "{\"type\":1"), "not valid JSON"},
      {"JSON array", Frame(2, "[]"), "not a JSON object"},
      {"JSON string", Frame(4, "\"hi\""), "not a JSON object"},
      {"binary", Frame(3, std::string("\0\xff\x01", 3)), "not valid JSON"},
  };
  for (const auto& c : cases) {
    FrameReader reader;
    reader.Append(c.bytes);
    auto next = reader.Next();
    ASSERT_FALSE(next.ok()) << c.name;
    EXPECT_EQ(next.status().code(), StatusCode::kDataLoss) << c.name;
    EXPECT_NE(next.status().message().find(c.error), std::string::npos) << c.name << ": " << next.status().message();
  }
}

TEST(FrameReader, WaitsForTheRestOfAFrameWithoutError) {
  FrameReader reader;
  reader.Append(Frame(100, "{\"type\""));
  auto next = reader.Next();
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
}

json ValidJoin() {
  return ToJson(JoinRequest{"run-1", 2, 4, Endpoint{"10.0.0.7", 4000}, ""});
}

TEST(ParseJoin, AcceptsAValidJoinAndRoundTrips) {
  auto join = ParseJoin(ValidJoin());
  ASSERT_TRUE(join.ok()) << join.status().ToString();
  EXPECT_EQ(join->run_id, "run-1");
  EXPECT_EQ(join->rank, 2);
  EXPECT_EQ(join->world_size, 4);
  EXPECT_EQ(join->endpoint.ToString(), "10.0.0.7:4000");
  EXPECT_EQ(join->token, "");
  EXPECT_FALSE(ValidJoin().contains("token")) << "no token field without a token";
  auto with_token = ParseJoin(ToJson(JoinRequest{"run-1", 2, 4, Endpoint{"10.0.0.7", 4000}, "s3cret"}));
  ASSERT_TRUE(with_token.ok()) << with_token.status().ToString();
  EXPECT_EQ(with_token->token, "s3cret");
}

TEST(ParseJoin, RejectsMalformedJoinsWithAClearError) {
  struct Case {
    std::string field;
    json value;  // null: remove the field
    std::string error;
  };
  const std::vector<Case> cases = {
      {"type", "peers", "expected 'join'"},
      {"type", nullptr, "missing field 'type'"},
      {"type", 7, "'type' must be a string"},
      {"protocol", 2, "protocol version 2"},
      {"protocol", nullptr, "missing field 'protocol'"},
      {"runId", "", "runId must have 1 to 256"},
      {"runId", std::string(257, 'x'), "runId must have 1 to 256"},
      {"runId", 12, "'runId' must be a string"},
      {"rank", -1, "rank -1 is not in 0..3"},
      {"rank", 4, "rank 4 is not in 0..3"},
      {"rank", 1.5, "'rank' must be an integer"},
      {"rank", "1", "'rank' must be an integer"},
      {"rank", 18446744073709551615ull, "'rank' is out of range"},
      {"rank", nullptr, "missing field 'rank'"},
      {"worldSize", 0, "worldSize 0 is not in 1..4096"},
      {"worldSize", 100000, "worldSize 100000 is not in 1..4096"},
      {"worldSize", true, "'worldSize' must be an integer"},
      {"endpoint", "10.0.0.7", "no ':'"},
      {"endpoint", "10.0.0.7:0", "port must be 1-65535"},
      {"endpoint", "10.0.0.7:65536", "port must be 1-65535"},
      {"endpoint", "10.0.0.7:80x", "port must be 1-65535"},
      {"endpoint", ":80", "empty host"},
      {"endpoint", "::1:80", "IPv6 host must be in brackets"},
      {"endpoint", "a b:80", "invalid character"},
      {"endpoint", json::array(), "'endpoint' must be a string"},
      {"extra", 1, "unknown field 'extra'"},
      {"token", "", "token must have 1 to 256"},
      {"token", std::string(257, 'x'), "token must have 1 to 256"},
      {"token", 5, "'token' must be a string"},
  };
  for (const auto& c : cases) {
    json message = ValidJoin();
    if (c.value.is_null()) {
      message.erase(c.field);
    } else {
      message[c.field] = c.value;
    }
    auto join = ParseJoin(message);
    ASSERT_FALSE(join.ok()) << c.field << " = " << c.value.dump();
    EXPECT_NE(join.status().message().find("malformed join message"), std::string::npos);
    EXPECT_NE(join.status().message().find(c.error), std::string::npos)
        << c.field << " = " << c.value.dump() << ": " << join.status().message();
  }
}

TEST(ParseEndpoint, AcceptsNamesIPv4AndBracketedIPv6) {
  for (const auto& [text, host, port] : std::vector<std::tuple<std::string, std::string, int>>{
           {"127.0.0.1:29500", "127.0.0.1", 29500},
           {"job-worker-0.job.default.svc:1", "job-worker-0.job.default.svc", 1},
           {"[::1]:65535", "::1", 65535}}) {
    auto endpoint = ParseEndpoint(text);
    ASSERT_TRUE(endpoint.ok()) << text << ": " << endpoint.status().ToString();
    EXPECT_EQ(endpoint->host, host);
    EXPECT_EQ(endpoint->port, port);
    EXPECT_EQ(endpoint->ToString(), text);
  }
}

TEST(ParsePeers, ChecksCountRunIdAndEndpoints) {
  json peers{{"type", "peers"}, {"runId", "r"}, {"endpoints", {"127.0.0.1:1", "127.0.0.1:2"}}};
  auto endpoints = ParsePeers(peers, "r", 2);
  ASSERT_TRUE(endpoints.ok()) << endpoints.status().ToString();
  EXPECT_EQ((*endpoints)[1].port, 2);
  EXPECT_FALSE(ParsePeers(peers, "r", 3).ok());
  EXPECT_FALSE(ParsePeers(peers, "other", 2).ok());
  peers["endpoints"][1] = "nonsense";
  EXPECT_FALSE(ParsePeers(peers, "r", 2).ok());
  peers["endpoints"] = "127.0.0.1:1";
  EXPECT_FALSE(ParsePeers(peers, "r", 1).ok());
}

TEST(ConnectTcp, TreatsAnUnresolvableNameAsRetryable) {
  auto connection = ConnectTcp("no-such-host.invalid", 80, Clock::now() + std::chrono::seconds(5));
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(connection.status().message().find("cannot resolve 'no-such-host.invalid'"), std::string::npos);
}

TEST(ConnectTcp, TreatsARefusedConnectionAsRetryable) {
  std::uint16_t port = 0;
  {
    auto listener = ListenTcp("127.0.0.1", 0);
    ASSERT_TRUE(listener.ok());
    port = *LocalPort(listener->get());
  }  // closed: nothing listens there now
  auto connection = ConnectTcp("127.0.0.1", port, Clock::now() + std::chrono::seconds(5));
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mlscale::launcher
