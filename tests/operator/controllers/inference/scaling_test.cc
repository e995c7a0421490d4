// The autoscaling poller (scaling.h): the router's /v1/stats reply parsed strictly, and the
// poller against real HTTP servers standing in for routers (our own common/http server
// answering the contract's JSON: the router is another branch's process; its own tests cover it).
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "mlscale/controllers/inference/scaling.h"
#include "mlscale/http/server.h"

namespace mlscale::controllers::inference {
namespace {

using namespace std::chrono_literals;

TEST(ParseRouterStats, ReadsTheContractsShape) {
  auto stats = ParseRouterStats(R"({"revisions":{"svc-1":{"inFlight":3,"averageConcurrency":2.5,
      "requestsPerSecond":40.5,"queued":1,"readyEndpoints":2}},"timeUnixMs":1700000000000})");
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->time_unix_ms, 1700000000000);
  const RevisionStats& r = stats->revisions.at("svc-1");
  EXPECT_EQ(r.in_flight, 3);
  EXPECT_EQ(r.average_concurrency, 2.5);
  EXPECT_EQ(r.requests_per_second, 40.5);
  EXPECT_EQ(r.queued, 1);
  EXPECT_EQ(r.ready_endpoints, 2);
  EXPECT_EQ(Observation(r, "concurrency"), 2.5);
  EXPECT_EQ(Observation(r, "rps"), 40.5);
  EXPECT_TRUE(ParseRouterStats(R"({"revisions":{}})").ok());
}

TEST(ParseRouterStats, RefusesMalformedReplies) {
  for (const char* body : {"", "[]", "{", R"({"revisions":[]})", R"({"revisions":{"a":3}})",
                           R"({"revisions":{"a":{"queued":-1}}})", R"({"revisions":{"a":{"inFlight":"2"}}})",
                           R"({"revisions":{"":{}}})", R"({"timeUnixMs":"now"})"}) {
    SCOPED_TRACE(body);
    EXPECT_FALSE(ParseRouterStats(body).ok());
  }
  EXPECT_FALSE(ParseRouterStats(std::string(kMaxStatsReplyBytes + 1, ' ')).ok());
}

// A stand-in router: answers /v1/stats with whatever the test sets.
class FakeRouter {
 public:
  explicit FakeRouter(const std::string& address) {
    http::ServerOptions options;
    options.address = address;
    auto started = http::Server::Start(options, http::SyncHandler([this](const http::Request& request) {
      http::Response response;
      std::lock_guard lock(mutex_);
      if (request.path != "/v1/stats") response.status = 404;
      response.body = body_;
      return response;
    }));
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    if (started.ok()) server_ = std::move(*started);
  }
  void Set(std::string body) {
    std::lock_guard lock(mutex_);
    body_ = std::move(body);
  }
  int port() const { return server_->port(); }

 private:
  std::mutex mutex_;
  std::string body_ = R"({"revisions":{}})";
  std::unique_ptr<http::Server> server_;
};

std::string Stats(double concurrency, int queued) {
  return R"({"revisions":{"svc-1":{"inFlight":0,"averageConcurrency":)" + std::to_string(concurrency) +
         R"(,"requestsPerSecond":0,"queued":)" + std::to_string(queued) + R"(,"readyEndpoints":0}}})";
}

TEST(ScalingPoller, SumsTheRoutersAndScalesFromZeroWhenRequestsWait) {
  // Two routers on one port (different loopback addresses), as pods share a port.
  FakeRouter first("127.0.0.1");
  ScalingPoller::Options options;
  options.interval = 1h;  // the test drives PollOnce itself
  options.router_port = first.port();
  std::atomic<int> changes = 0;
  ScalingPoller poller(options, [&](const std::string& key) {
    EXPECT_EQ(key, "ml/svc");
    ++changes;
  });
  api::AutoscalingSpec spec;
  spec.target = 10;
  spec.min_replicas = 0;
  spec.scale_to_zero_grace_period_seconds = 0;
  poller.Track("ml/svc", {"127.0.0.1"}, spec, {{"svc-1", 0, 0}});
  auto now = std::chrono::steady_clock::now();
  poller.PollOnce(now);
  auto idle = poller.Latest("ml/svc", "svc-1");
  ASSERT_TRUE(idle);
  EXPECT_EQ(idle->replicas, 0);

  first.Set(Stats(1, 1));  // a request held: scale from zero at once
  poller.PollOnce(now + 1s);
  auto woken = poller.Latest("ml/svc", "svc-1");
  ASSERT_TRUE(woken);
  EXPECT_GE(woken->replicas, 1);
  EXPECT_GE(changes.load(), 1);

  // 45 in flight against a target of 10 with one ready replica: panic; once the panic window
  // (6 s) holds only that load, 5 replicas.
  poller.Track("ml/svc", {"127.0.0.1"}, spec, {{"svc-1", 1, 1}});
  first.Set(Stats(45, 0));
  for (int s = 2; s < 9; ++s) poller.PollOnce(now + std::chrono::seconds(s));
  auto busy = poller.Latest("ml/svc", "svc-1");
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->replicas, 5);
  EXPECT_TRUE(busy->panicking);
  EXPECT_DOUBLE_EQ(busy->observed, 45);

  poller.Untrack("ml/svc");
  EXPECT_FALSE(poller.Latest("ml/svc", "svc-1"));
}

TEST(ScalingPoller, AnUnreachableRouterIsNoObservation) {
  ScalingPoller::Options options;
  options.interval = 1h;
  options.router_port = 1;  // nothing listens
  options.deadline = 200ms;
  ScalingPoller poller(options, [](const std::string&) {});
  api::AutoscalingSpec spec;
  poller.Track("ml/svc", {"127.0.0.1"}, spec, {{"svc-1", 3, 3}});
  poller.PollOnce(std::chrono::steady_clock::now());
  auto kept = poller.Latest("ml/svc", "svc-1");
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->replicas, 3);  // no data: the current size
}

}  // namespace
}  // namespace mlscale::controllers::inference

namespace mlscale::controllers::inference {
namespace {

TEST(ScalingPoller, NeverScalesAwayReplicasStillStarting) {
  FakeRouter router("127.0.0.1");
  ScalingPoller::Options options;
  options.interval = std::chrono::hours(1);
  options.router_port = router.port();
  ScalingPoller poller(options, [](const std::string&) {});
  api::AutoscalingSpec spec;
  spec.min_replicas = 0;
  spec.scale_to_zero_grace_period_seconds = 0;
  // A new revision (or one woken from zero): 1 replica asked for, none ready, no load.
  poller.Track("ml/svc", {"127.0.0.1"}, spec, {{"svc-1", 0, 1}});
  auto now = std::chrono::steady_clock::now();
  for (int s = 0; s < 5; ++s) poller.PollOnce(now + std::chrono::seconds(s));
  EXPECT_EQ(poller.Latest("ml/svc", "svc-1")->replicas, 1);
}

}  // namespace
}  // namespace mlscale::controllers::inference
