// Small pieces of operator/kube: error mapping, metrics text, the token bucket, JSON logs.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "mlscale/kube/errors.h"
#include "mlscale/kube/logging.h"
#include "mlscale/kube/metrics.h"
#include "mlscale/kube/rate_limiter.h"
#include "mlscale/kube/resource.h"

namespace mlscale::kube {
namespace {

using namespace std::chrono_literals;

TEST(ErrorsTest, HttpStatusesMapToCodesWithTheServersReason) {
  struct Case {
    int http;
    const char* body;
    StatusCode code;
    const char* reason;
  };
  const Case cases[] = {
      {400, "", StatusCode::kInvalidArgument, "BadRequest"},
      {422, R"({"kind":"Status","reason":"Invalid","message":"spec.x: Required value"})", StatusCode::kInvalidArgument, "Invalid"},
      {401, "", StatusCode::kUnauthenticated, "Unauthorized"},
      {403, R"({"kind":"Status","reason":"Forbidden","message":"no"})", StatusCode::kPermissionDenied, "Forbidden"},
      {404, "", StatusCode::kNotFound, "NotFound"},
      {409, R"({"kind":"Status","reason":"AlreadyExists","message":"exists"})", StatusCode::kAlreadyExists, "AlreadyExists"},
      {409, R"({"kind":"Status","reason":"Conflict","message":"modified"})", StatusCode::kConflict, "Conflict"},
      {410, R"({"kind":"Status","reason":"Expired","message":"too old"})", StatusCode::kAborted, "Expired"},
      {429, "", StatusCode::kResourceExhausted, "TooManyRequests"},
      {500, "", StatusCode::kUnavailable, "InternalError"},
      {503, "", StatusCode::kUnavailable, "ServiceUnavailable"},
      {504, "", StatusCode::kDeadlineExceeded, "Timeout"},
      {302, "", StatusCode::kInternal, "Unknown"},
  };
  for (const Case& c : cases) {
    Status status = StatusFromHttp(c.http, c.body);
    EXPECT_EQ(status.code(), c.code) << c.http;
    EXPECT_EQ(ReasonOf(status), c.reason) << status.ToString();
    EXPECT_EQ(ReasonOf(status.WithContext("GET /api/v1/x")), c.reason) << "context must not hide the reason";
  }
  EXPECT_TRUE(IsGone(StatusFromHttp(410, "")));
  EXPECT_TRUE(IsTransient(StatusFromHttp(429, "")));
  EXPECT_FALSE(IsTransient(StatusFromHttp(409, "")));
  EXPECT_EQ(ReasonOf(Internal("no http here")), "");
}

TEST(MetricsTest, RendersPrometheusText) {
  Metrics metrics;
  metrics.Describe("requests_total", "Requests.");
  metrics.Add("requests_total", {{"verb", "get"}, {"code", "200"}});
  metrics.Add("requests_total", {{"verb", "get"}, {"code", "200"}}, 2);
  metrics.Set("depth", {}, 7);
  metrics.Observe("latency_seconds", {{"c", "x\"y"}}, 0.003);
  metrics.Observe("latency_seconds", {{"c", "x\"y"}}, 100);
  EXPECT_EQ(metrics.Value("requests_total", {{"verb", "get"}, {"code", "200"}}), 3);
  const std::string text = metrics.Render();
  EXPECT_NE(text.find("# HELP requests_total Requests.\n# TYPE requests_total counter\n"
                      "requests_total{verb=\"get\",code=\"200\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE depth gauge\ndepth 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{c=\"x\\\"y\",le=\"0.0025\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{c=\"x\\\"y\",le=\"0.005\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{c=\"x\\\"y\",le=\"+Inf\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_count{c=\"x\\\"y\"} 2\n"), std::string::npos) << text;
}

TEST(RateLimiterTest, BurstThenSteadyRate) {
  RateLimiter limiter(10, 5);  // slow enough that test overhead (sanitizers) does not refill it
  for (int i = 0; i < 5; ++i) EXPECT_EQ(limiter.Reserve().count(), 0) << "burst";
  auto wait = limiter.Reserve();
  EXPECT_GT(wait, 50ms);
  EXPECT_LE(wait, 100ms);
  auto second = limiter.Reserve();
  EXPECT_GT(second, 150ms) << "reservations queue up behind each other";
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(limiter.Acquire());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms);
  std::stop_source stop;
  stop.request_stop();
  EXPECT_FALSE(limiter.Acquire(stop.get_token())) << "a stopped wait gives up";
}

TEST(ResourceTest, PathsAndKeys) {
  EXPECT_EQ(resources::Pods().Path("ns", "p", "status"), "/api/v1/namespaces/ns/pods/p/status");
  EXPECT_EQ(resources::Pods().Path(""), "/api/v1/pods");
  EXPECT_EQ(resources::Nodes().Path("ignored", "n"), "/api/v1/nodes/n");
  EXPECT_EQ(resources::Leases().Path("ns"), "/apis/coordination.k8s.io/v1/namespaces/ns/leases");
  EXPECT_EQ(resources::Deployments().ApiVersion(), "apps/v1");
  EXPECT_EQ(KeyOf({{"metadata", {{"namespace", "a"}, {"name", "b"}}}}), "a/b");
  EXPECT_EQ(KeyOf({{"metadata", {{"name", "node"}}}}), "node");
  EXPECT_EQ(SplitKey("a/b"), std::make_pair(std::string("a"), std::string("b")));
  EXPECT_EQ(SplitKey("node"), std::make_pair(std::string(""), std::string("node")));
  EXPECT_EQ(NameOf(Object::array()), "");
  EXPECT_EQ(GenerationOf({{"metadata", {{"generation", "not a number"}}}}), 0);
}

TEST(LoggingTest, JsonLinesStayValidWhateverTheMessage) {
  std::ostringstream out;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out)));
  ASSERT_TRUE(ConfigureLogging(LogFormat::kJson, "info").ok());
  spdlog::info("a \"quoted\" word,\ta tab and\na newline \\ backslash");
  spdlog::debug("hidden at info");
  std::string line = out.str();
  ASSERT_FALSE(line.empty());
  nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << line;
  EXPECT_EQ(parsed["msg"], "a \"quoted\" word,\ta tab and\na newline \\ backslash");
  EXPECT_EQ(parsed["level"], "info");
  EXPECT_EQ(ConfigureLogging(LogFormat::kText, "loud").code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(ConfigureLogging(LogFormat::kText, "info").ok());
  spdlog::set_default_logger(previous);
}

}  // namespace
}  // namespace mlscale::kube
