// The Router against real HTTP upstreams on loopback: mlscale::http servers standing in
// for model pods, and a scripted TCP server for answers no HTTP library gives (garbage,
// a response cut short). Requests enter through a capturing Responder sink.
#include "mlscale/router/router.h"

#include <future>
#include <map>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include "scripted_upstream.h"

namespace mlscale::router {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

class Capture : public http::Responder::Sink {
 public:
  void Send(http::Response response) override { promise_.set_value(std::move(response)); }
  std::future<http::Response> future() { return promise_.get_future(); }

 private:
  std::promise<http::Response> promise_;
};

std::string HeaderOf(const http::Response& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

// A model pod stand-in: answers with what it received, as JSON, after `delay`.
class EchoPod {
 public:
  explicit EchoPod(std::string name, milliseconds delay = milliseconds(0)) : name_(std::move(name)) {
    http::ServerOptions options;
    options.address = "127.0.0.1";
    options.threads = 2;
    auto server = http::Server::Start(options, [this, delay](http::Request&& request, http::Responder responder) {
      ++requests_;
      json headers = json::object();
      for (const auto& [key, value] : request.headers) headers[key] = value;
      http::Response response;
      response.headers.emplace_back("x-pod", name_);
      response.body = json{{"pod", name_}, {"method", request.method}, {"target", request.target},
                           {"headers", headers}, {"body", request.body}}.dump();
      if (delay.count() == 0) return responder.Send(std::move(response));
      std::thread([responder = std::move(responder), response = std::move(response), delay]() mutable {
        std::this_thread::sleep_for(delay);
        responder.Send(std::move(response));
      }).detach();
    });
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }
  ~EchoPod() { server_->Drain(milliseconds(3000)); }
  EndpointAddress address() const { return {"127.0.0.1", server_->port()}; }
  int requests() const { return requests_.load(); }

 private:
  std::string name_;
  std::atomic<int> requests_{0};
  std::unique_ptr<http::Server> server_;
};

// A loopback port nothing listens on (bound, then closed).
EndpointAddress RefusingAddress() {
  http::ServerOptions options;
  options.address = "127.0.0.1";
  auto server = http::Server::Start(options, http::SyncHandler([](const http::Request&) { return http::Response{}; }));
  const uint16_t port = (*server)->port();
  (*server)->Stop();
  return {"127.0.0.1", port};
}

// Each case runs twice: the upstream client on threads of its own, and (as mlscale-router
// runs by default) on a context others run, here two threads standing in for the server's.
class RouterTest : public ::testing::TestWithParam<bool> {
 protected:
  void Start(RouterOptions options = {}, UpstreamOptions upstream_options = {}) {
    options.seed = 7;
    std::shared_ptr<boost::asio::io_context> shared;
    if (GetParam()) {
      shared = std::make_shared<boost::asio::io_context>();
      work_.emplace(shared->get_executor());
      for (int i = 0; i < 2; ++i) loop_threads_.emplace_back([shared] { shared->run(); });
      loop_ = shared;
      upstream_options.threads = 0;
    } else {
      upstream_options.threads = 2;
    }
    auto upstream = UpstreamClient::Create(upstream_options, std::move(shared));
    ASSERT_TRUE(upstream.ok()) << upstream.status().ToString();
    router_ = std::make_unique<Router>(std::move(*upstream), metrics_, options);
  }
  // A client on a shared context goes once the context no longer runs (upstream.h).
  void StopLoop() {
    if (!loop_) return;
    work_.reset();
    loop_->stop();
    for (auto& thread : loop_threads_) thread.join();
    loop_threads_.clear();
  }
  void TearDown() override {
    StopLoop();
    router_.reset();
  }

  std::future<http::Response> Send(const std::string& method, const std::string& target, std::string body = "",
                                   std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto capture = std::make_shared<Capture>();
    auto future = capture->future();
    http::Request request;
    request.method = method;
    request.target = target;
    request.path = target.substr(0, target.find('?'));
    request.headers = std::move(headers);
    request.body = std::move(body);
    request.remote_address = "192.0.2.7";
    router_->Handle(std::move(request), http::Responder(capture));
    return future;
  }

  http::Response Get(const std::string& target = "/v2/health/ready") {
    auto future = Send("GET", target);
    EXPECT_EQ(future.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    return future.get();
  }

  kube::Metrics metrics_;
  std::shared_ptr<boost::asio::io_context> loop_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> loop_threads_;
  std::unique_ptr<Router> router_;
};

INSTANTIATE_TEST_SUITE_P(UpstreamThreads, RouterTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& param) { return param.param ? "SharedLoop" : "OwnThreads"; });

TEST(UpstreamClientTest, NeedsThreadsOrASharedContextNotBoth) {
  UpstreamOptions options;
  options.threads = 0;
  EXPECT_EQ(UpstreamClient::Create(options).status().code(), StatusCode::kInvalidArgument);
  options.threads = 1;
  EXPECT_EQ(UpstreamClient::Create(options, std::make_shared<boost::asio::io_context>()).status().code(),
            StatusCode::kInvalidArgument);
  options.threads = -1;
  EXPECT_FALSE(UpstreamClient::Create(options).ok());
}

TEST_P(RouterTest, ForwardsRequestAndResponseWithoutHopByHopHeaders) {
  EchoPod pod("p1");
  Start();
  router_->SetTraffic({{"rev-a", 100}});
  router_->SetEndpoints({{"rev-a", {{pod.address()}, {}}}});
  auto future = Send("POST", "/v2/models/digits/infer?trace=1", R"({"inputs":[]})",
                     {{"content-type", "application/json"}, {"connection", "keep-alive, x-secret-hop"},
                      {"x-secret-hop", "1"}, {"te", "trailers"}, {"x-request-id", "abc"},
                      {"x-forwarded-for", "198.51.100.1"}, {"host", "digits.ns.svc"}});
  auto response = future.get();
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(HeaderOf(response, "x-pod"), "p1");
  EXPECT_EQ(HeaderOf(response, "x-mlscale-revision"), "rev-a");
  EXPECT_EQ(HeaderOf(response, "x-mlscale-queued-ms"), "");
  auto echoed = json::parse(response.body);
  EXPECT_EQ(echoed["method"], "POST");
  EXPECT_EQ(echoed["target"], "/v2/models/digits/infer?trace=1");
  EXPECT_EQ(echoed["body"], R"({"inputs":[]})");
  EXPECT_EQ(echoed["headers"]["x-request-id"], "abc");
  EXPECT_EQ(echoed["headers"]["host"], "digits.ns.svc");
  EXPECT_EQ(echoed["headers"]["x-forwarded-for"], "198.51.100.1, 192.0.2.7");
  EXPECT_FALSE(echoed["headers"].contains("te"));
  EXPECT_FALSE(echoed["headers"].contains("x-secret-hop"));  // named by Connection
  EXPECT_EQ(metrics_.Value("mlscale_router_requests_total", {{"revision", "rev-a"}, {"code", "200"}}), 1);
}

TEST_P(RouterTest, KeepsConnectionsToPodsAlive) {
  EchoPod pod("p1");
  Start();
  router_->SetTraffic({{"rev-a", 100}});
  router_->SetEndpoints({{"rev-a", {{pod.address()}, {}}}});
  for (int i = 0; i < 20; ++i) ASSERT_EQ(Get().status, 200);
  EXPECT_EQ(pod.requests(), 20);
  // Sequential requests reuse one pooled connection (the server counts connections).
  EXPECT_LE(router_->Stats()["revisions"]["rev-a"]["inFlight"].get<int>(), 0);
}

TEST_P(RouterTest, RejectsWhatItWillNotForward) {
  EchoPod pod("p1");
  Start();
  router_->SetTraffic({{"rev-a", 100}});
  router_->SetEndpoints({{"rev-a", {{pod.address()}, {}}}});
  struct Case {
    std::string method, target;
    std::vector<std::pair<std::string, std::string>> headers;
    int status;
    std::string message;
  };
  const Case cases[] = {
      {"CONNECT", "/x", {}, 405, "CONNECT"},
      {"GET", "http://evil.example/v2", {}, 400, "request target"},
      {"OPTIONS", "*", {}, 400, "request target"},
      {"GET", "/ws", {{"upgrade", "websocket"}, {"connection", "upgrade"}}, 400, "Upgrade"},
  };
  for (const auto& c : cases) {
    auto response = Send(c.method, c.target, "", c.headers).get();
    EXPECT_EQ(response.status, c.status) << c.method << " " << c.target;
    auto body = json::parse(response.body, nullptr, false);
    ASSERT_TRUE(body.is_object() && body["error"].is_string()) << response.body;
    EXPECT_NE(body["error"].get<std::string>().find(c.message), std::string::npos) << response.body;
  }
  EXPECT_EQ(pod.requests(), 0);
}

TEST_P(RouterTest, RetriesARefusedConnectionOnAnotherPod) {
  EchoPod pod("good");
  Start();
  router_->SetTraffic({{"rev-a", 100}});
  router_->SetEndpoints({{"rev-a", {{RefusingAddress(), pod.address()}, {}}}});
  for (int i = 0; i < 30; ++i) {
    auto response = Get();
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(HeaderOf(response, "x-pod"), "good");
  }
  EXPECT_GT(metrics_.Value("mlscale_router_retries_total", {{"revision", "rev-a"}}), 0);
}

TEST_P(RouterTest, GivesUpWith503AfterMaxAttemptsWhenNoPodAnswers) {
  testing::ScriptedUpstream closes("");  // reads the request, closes without a byte
  RouterOptions options;
  options.max_attempts = 3;
  options.retry_backoff = milliseconds(1);
  Start(options);
  router_->SetTraffic({{"rev-a", 100}});
  router_->SetEndpoints({{"rev-a", {{{"127.0.0.1", closes.port()}}, {}}}});
  auto response = Get();
  EXPECT_EQ(response.status, 503) << response.body;
  EXPECT_NE(response.body.find("after 3 attempt"), std::string::npos) << response.body;
  EXPECT_EQ(closes.requests(), 3);
}

TEST_P(RouterTest, NeverRetriesOnceAResponseByteArrived) {
  struct Case {
    const char* what;
    std::string script;
    int status;
  };
  const Case cases[] = {
      {"cut short", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", 502},
      {"garbage", "SSH-2.0-OpenSSH_9.2\r\n\r\n", 502},
      {"bad status", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", 502},
      {"bad content-length", "HTTP/1.1 200 OK\r\nContent-Length: twelve\r\n\r\n", 502},
      {"two content-lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 502},
      {"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 502},
      {"header cut", "HTTP/1.1 200 OK\r\nContent-Ty", 502},
      {"huge header", "HTTP/1.1 200 OK\r\nX-Big: " + std::string(70'000, 'a') + "\r\n\r\n", 502},
      {"body over the limit", "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'b'), 502},
      {"chunked body over the limit", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n" + std::string(5000, 'c') + "\r\n0\r\n\r\n", 502},
      {"close-delimited body over the limit", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + std::string(5000, 'd'), 502},
      {"valid chunked", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 201},
      {"close-delimited body", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil eof", 200},
  };
  UpstreamOptions upstream_options;
  upstream_options.max_response_body_bytes = 4096;
  Start({}, upstream_options);
  router_->SetTraffic({{"rev-a", 100}});
  for (const auto& c : cases) {
    testing::ScriptedUpstream pod(c.script);
    router_->SetEndpoints({{"rev-a", {{{"127.0.0.1", pod.port()}}, {}}}});
    auto response = Get();
    EXPECT_EQ(response.status, c.status) << c.what << ": " << response.body;
    EXPECT_EQ(pod.requests(), 1) << c.what << ": sent again after a response byte";
    if (c.status == 502) {
      auto body = json::parse(response.body, nullptr, false);
      EXPECT_TRUE(body.is_object() && body["error"].is_string()) << c.what << ": " << response.body;
      EXPECT_EQ(response.body.find("OpenSSH"), std::string::npos) << "response bytes are never quoted";
    }
  }
}

TEST_P(RouterTest, PassesPodErrorsThrough) {
  testing::ScriptedUpstream pod("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"error\": \"bad input\"}");
  Start();
  router_->SetTraffic({{"rev-a", 100}});
  router_->SetEndpoints({{"rev-a", {{{"127.0.0.1", pod.port()}}, {}}}});
  auto response = Get("/v2/models/m/infer");
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.body, "{\"error\": \"bad input\"}");
}

TEST_P(RouterTest, DeadlineGives504) {
  EchoPod slow("slow", milliseconds(2000));
  RouterOptions options;
  options.request_timeout = milliseconds(300);
  Start(options);
  router_->SetTraffic({{"rev-a", 100}});
  router_->SetEndpoints({{"rev-a", {{slow.address()}, {}}}});
  const auto start = Clock::now();
  auto response = Get();
  EXPECT_EQ(response.status, 504) << response.body;
  EXPECT_LT(Clock::now() - start, milliseconds(1500));
  EXPECT_EQ(slow.requests(), 1);
}

TEST_P(RouterTest, HoldsRequestsUntilAPodIsReady) {
  EchoPod pod("p1");
  Start();
  router_->SetTraffic({{"rev-a", 100}});
  router_->SetEndpoints({{"rev-a", {{}, {}}}});
  std::vector<std::future<http::Response>> held;
  for (int i = 0; i < 3; ++i) held.push_back(Send("GET", "/v2/health/ready"));
  EXPECT_EQ(router_->Queued(), 3);
  auto stats = router_->Stats();
  EXPECT_EQ(stats["revisions"]["rev-a"]["queued"], 3);
  EXPECT_EQ(stats["revisions"]["rev-a"]["readyEndpoints"], 0);
  EXPECT_EQ(stats["revisions"]["rev-a"]["inFlight"], 0);
  EXPECT_TRUE(stats["timeUnixMs"].is_number_integer());
  std::this_thread::sleep_for(milliseconds(150));
  EXPECT_GT(router_->Stats()["revisions"]["rev-a"]["averageConcurrency"].get<double>(), 0.5);
  EXPECT_EQ(held[0].wait_for(milliseconds(0)), std::future_status::timeout);
  router_->SetEndpoints({{"rev-a", {{pod.address()}, {}}}});
  for (auto& future : held) {
    auto response = future.get();
    EXPECT_EQ(response.status, 200) << response.body;
    EXPECT_GE(std::stoi(HeaderOf(response, "x-mlscale-queued-ms")), 150);
  }
  EXPECT_EQ(router_->Queued(), 0);
  EXPECT_NE(router_->RenderMetrics().find("mlscale_router_queue_wait_seconds_count{revision=\"rev-a\"} 3"),
            std::string::npos) << router_->RenderMetrics();
}

TEST_P(RouterTest, HeldRequestsFollowTheTraffic) {
  EchoPod pod("b1");
  Start();
  router_->SetTraffic({{"rev-a", 100}});
  auto held = Send("GET", "/x");
  EXPECT_EQ(router_->Queued(), 1);
  router_->SetEndpoints({{"rev-b", {{pod.address()}, {}}}});
  router_->SetTraffic({{"rev-a", 0}, {"rev-b", 100}});
  auto response = held.get();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(HeaderOf(response, "x-mlscale-revision"), "rev-b");
}

TEST_P(RouterTest, NoTrafficSplitYetHoldsToo) {
  EchoPod pod("p1");
  Start();
  auto held = Send("GET", "/x");
  EXPECT_EQ(router_->Queued(), 1);
  router_->SetEndpoints({{"rev-a", {{pod.address()}, {}}}});
  EXPECT_EQ(router_->Queued(), 1);
  router_->SetTraffic({{"rev-a", 100}});
  EXPECT_EQ(held.get().status, 200);
}

TEST_P(RouterTest, FullQueueAndTimeoutAnswer503WithAReason) {
  RouterOptions options;
  options.queue_limit = 1;
  options.queue_timeout = milliseconds(300);
  Start(options);
  router_->SetTraffic({{"rev-a", 100}});
  auto first = Send("GET", "/x");
  auto second = Send("GET", "/x").get();
  EXPECT_EQ(second.status, 503);
  EXPECT_NE(second.body.find("queue is full"), std::string::npos) << second.body;
  const auto start = Clock::now();
  auto timed_out = first.get();
  EXPECT_EQ(timed_out.status, 503);
  EXPECT_NE(timed_out.body.find("no ready pod after waiting"), std::string::npos) << timed_out.body;
  EXPECT_GE(Clock::now() - start, milliseconds(200));
  EXPECT_EQ(router_->Queued(), 0);
  EXPECT_NE(router_->RenderMetrics().find("mlscale_router_queue_wait_seconds_count{revision=\"rev-a\"} 1"), std::string::npos);
}

TEST_P(RouterTest, UsesDrainingPodsOnlyWithoutReadyOnes) {
  EchoPod ready("ready"), draining("draining");
  Start();
  router_->SetTraffic({{"rev-a", 100}});
  router_->SetEndpoints({{"rev-a", {{ready.address()}, {draining.address()}}}});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(HeaderOf(Get(), "x-pod"), "ready");
  router_->SetEndpoints({{"rev-a", {{}, {draining.address()}}}});
  EXPECT_EQ(HeaderOf(Get(), "x-pod"), "draining");
}

TEST_P(RouterTest, SplitsByTheExactPercent) {
  EchoPod stable("stable"), canary("canary");
  Start();
  router_->SetTraffic({{"stable", 80}, {"canary", 20}});
  router_->SetEndpoints({{"stable", {{stable.address()}, {}}}, {"canary", {{canary.address()}, {}}}});
  std::map<std::string, int> by_revision;
  for (int i = 0; i < 500; ++i) by_revision[HeaderOf(Get(), "x-mlscale-revision")]++;
  EXPECT_EQ(by_revision["canary"], 100);
  EXPECT_EQ(by_revision["stable"], 400);
  EXPECT_EQ(canary.requests(), 100);
}

TEST_P(RouterTest, BalancesConcurrentRequestsByOutstanding) {
  EchoPod slow("slow", milliseconds(300)), fast("fast");
  Start();
  router_->SetTraffic({{"rev-a", 100}});
  router_->SetEndpoints({{"rev-a", {{slow.address(), fast.address()}, {}}}});
  // While the slow pod holds a request, the next ones go to the fast one (fewer outstanding).
  auto first = Send("GET", "/x");
  while (slow.requests() + fast.requests() == 0) std::this_thread::sleep_for(milliseconds(1));
  const bool first_on_slow = slow.requests() == 1;
  int on_fast = 0;
  for (int i = 0; i < 10; ++i) on_fast += HeaderOf(Get(), "x-pod") == "fast";
  if (first_on_slow) {
    EXPECT_EQ(on_fast, 10);
  }
  EXPECT_EQ(first.get().status, 200);
}

TEST_P(RouterTest, ShutdownAnswersHeldRequests) {
  Start();
  router_->SetTraffic({{"rev-a", 100}});
  auto held = Send("GET", "/x");
  StopLoop();
  router_.reset();
  auto response = held.get();
  EXPECT_EQ(response.status, 503);
  EXPECT_NE(response.body.find("shutting down"), std::string::npos);
}

}  // namespace
}  // namespace mlscale::router
