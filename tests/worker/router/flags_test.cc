#include "mlscale/router/flags.h"

#include <sstream>

#include <gtest/gtest.h>

namespace mlscale::router {
namespace {

StatusOr<RouterFlags> Parse(std::vector<std::string> args, bool* help = nullptr) {
  args.insert(args.begin(), "mlscale-router");
  std::vector<const char*> argv;
  for (const auto& arg : args) argv.push_back(arg.c_str());
  std::ostringstream out;
  bool asked = false;
  auto flags = ParseRouterFlags(int(argv.size()), argv.data(), out, asked);
  if (help) *help = asked;
  return flags;
}

TEST(RouterFlags, DefaultsAndContractFlags) {
  auto flags = Parse({"--inference-service", "digits", "--namespace", "ml", "--queue-limit", "7",
                      "--queue-timeout-ms", "1500", "--listen", "127.0.0.5:8081", "--metrics-listen", "[::1]:9091"});
  ASSERT_TRUE(flags.ok()) << flags.status().ToString();
  EXPECT_EQ(flags->source.inference_service, "digits");
  EXPECT_EQ(flags->source.namespace_name, "ml");
  EXPECT_EQ(flags->router.queue_limit, 7u);
  EXPECT_EQ(flags->router.queue_timeout.count(), 1500);
  EXPECT_EQ(flags->server.address, "127.0.0.5");
  EXPECT_EQ(flags->server.port, 8081);
  EXPECT_EQ(flags->metrics.address, "::1");
  EXPECT_EQ(flags->metrics.port, 9091);
  auto defaults = Parse({"--inference-service", "digits"});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->server.address, "0.0.0.0");
  EXPECT_EQ(defaults->server.port, 8080);
  EXPECT_EQ(defaults->metrics.port, 9090);
  EXPECT_EQ(defaults->source.namespace_name, "");
  EXPECT_EQ(defaults->upstream.threads, 0) << "pods on the client loops: no hand-off per request";
  auto pool = Parse({"--inference-service", "digits", "--upstream-threads", "3"});
  ASSERT_TRUE(pool.ok());
  EXPECT_EQ(pool->upstream.threads, 3);
}

TEST(RouterFlags, Help) {
  bool help = false;
  auto flags = Parse({"--help"}, &help);
  ASSERT_TRUE(flags.ok());
  EXPECT_TRUE(help);
}

TEST(RouterFlags, ErrorsNameTheFlag) {
  const std::pair<std::vector<std::string>, const char*> cases[] = {
      {{}, "--inference-service"},
      {{"--inference-service", "x", "--listen", "8080"}, "--listen"},
      {{"--inference-service", "x", "--listen", ":99999"}, "--listen"},
      {{"--inference-service", "x", "--listen", "::1:80"}, "--listen"},
      {{"--inference-service", "x", "--metrics-listen", "host:"}, "--metrics-listen"},
      {{"--inference-service", "x", "--queue-limit", "-1"}, "--queue-limit"},
      {{"--inference-service", "x", "--queue-limit", "many"}, "queue-limit"},
      {{"--inference-service", "x", "--max-attempts", "0"}, "--max-attempts"},
      {{"--inference-service", "x", "--request-timeout-ms", "0"}, "--request-timeout-ms"},
      {{"--inference-service", "x", "--log-format", "xml"}, "--log-format"},
      {{"--inference-service", "x", "--drain-seconds", "-2"}, "--drain-seconds"},
      {{"--inference-service", "x", "--no-such-flag"}, "no-such-flag"},
  };
  for (const auto& [args, expected] : cases) {
    auto flags = Parse(args);
    ASSERT_FALSE(flags.ok()) << expected;
    EXPECT_NE(flags.status().message().find(expected), std::string::npos) << flags.status().ToString();
  }
}

}  // namespace
}  // namespace mlscale::router
