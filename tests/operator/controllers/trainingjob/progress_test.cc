// The progress reader (progress.h): reply parsing table-tested with malformed input, and
// FetchProgress against a real local HTTP server (a socket that answers what each case
// needs: a good reply, 401, an oversized body, silence).
#include "mlscale/controllers/trainingjob/progress.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "loopback_listener.h"

namespace mlscale::controllers::trainingjob {
namespace {

using namespace std::chrono_literals;

TEST(ParseProgressReplyTest, ReadsTheContractShape) {
  StatusOr<ProgressReading> reading = ParseProgressReply(
      R"({"progress": {"step": 5, "totalSteps": 100, "loss": 0.5}, "result": null, "time": "2026-12-01T10:00:00Z"})");
  ASSERT_TRUE(reading.ok()) << reading.status().ToString();
  EXPECT_EQ(reading->progress["step"], 5);
  EXPECT_TRUE(reading->result.is_null());
  EXPECT_EQ(reading->time, "2026-12-01T10:00:00Z");
  reading = ParseProgressReply(R"({"progress": null, "result": {"metrics": {"testAccuracy": 0.98}}})");
  ASSERT_TRUE(reading.ok());
  EXPECT_TRUE(reading->progress.is_null());
  EXPECT_EQ(reading->result["metrics"]["testAccuracy"], 0.98);
}

TEST(ParseProgressReplyTest, MalformedRepliesAreErrors) {
  for (const std::string& body : {std::string(""), std::string("null"), std::string("[1]"), std::string("{"),
                                 std::string(R"({"progress": 3})"), std::string(R"({"result": "x"})"),
                                 std::string(R"({"time": 5})"), std::string("\xff\xfe{}"),
                                 std::string(R"({"progress": {"step": 1}, "pad": ")") + std::string(70000, 'x') + "\"}"}) {
    EXPECT_FALSE(ParseProgressReply(body).ok()) << body.substr(0, 40);
  }
}

// A one-connection-at-a-time HTTP server on 127.0.0.1 that answers every request with
// `reply` (raw bytes), or with nothing when `reply` is empty.
class TinyServer {
 public:
  explicit TinyServer(std::string reply) : reply_(std::move(reply)) {
    EXPECT_TRUE(listener_.ok());
    thread_ = std::thread([this] { Serve(); });
  }
  ~TinyServer() {
    stopping_ = true;
    listener_.Shutdown();
    thread_.join();
  }
  int port() const { return listener_.port(); }
  std::string last_request() const { return last_request_; }

 private:
  void Serve() {
    while (!stopping_) {
      const int client = ::accept(listener_.fd(), nullptr, nullptr);
      if (client < 0) return;
      char buffer[4096];
      const ssize_t n = ::read(client, buffer, sizeof buffer);
      if (n > 0) last_request_.assign(buffer, size_t(n));
      if (reply_.empty()) {
        std::this_thread::sleep_for(1500ms);  // silence: the client's deadline must fire first
      } else {
        (void)::write(client, reply_.data(), reply_.size());
      }
      ::close(client);
    }
  }
  std::string reply_;
  mlscale::testing::LoopbackListener listener_;
  std::atomic<bool> stopping_{false};
  std::string last_request_;
  std::thread thread_;
};

std::string HttpReply(int code, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

TEST(FetchProgressTest, SendsTheBearerTokenAndReadsTheReply) {
  TinyServer server(HttpReply(200, R"({"progress": {"step": 7}, "result": null, "time": "t"})"));
  StatusOr<ProgressReading> reading = FetchProgress("127.0.0.1", server.port(), "s3cret", 2000ms);
  ASSERT_TRUE(reading.ok()) << reading.status().ToString();
  EXPECT_EQ(reading->progress["step"], 7);
  EXPECT_NE(server.last_request().find("GET /v1/progress HTTP/1.1"), std::string::npos);
  EXPECT_NE(server.last_request().find("Authorization: Bearer s3cret"), std::string::npos);
}

TEST(FetchProgressTest, RefusalsAndFaultsAreErrorsWithoutTheToken) {
  {
    TinyServer server(HttpReply(401, "{}"));
    Status status = FetchProgress("127.0.0.1", server.port(), "s3cret", 2000ms).status();
    EXPECT_EQ(status.code(), StatusCode::kUnauthenticated);
    EXPECT_EQ(status.message().find("s3cret"), std::string::npos);
  }
  {
    TinyServer server(HttpReply(200, std::string(kMaxProgressReplyBytes + 10, ' ')));
    Status status = FetchProgress("127.0.0.1", server.port(), "t", 2000ms).status();
    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  }
  {
    // No length given: read until the peer closes, but never past the cap.
    TinyServer server("HTTP/1.1 200 X\r\nConnection: close\r\n\r\n" + std::string(200 * 1024, 'x'));
    Status status = FetchProgress("127.0.0.1", server.port(), "t", 2000ms).status();
    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
    EXPECT_NE(status.message().find("larger than 64 KiB"), std::string::npos) << status.ToString();
  }
  {
    TinyServer server(HttpReply(500, "{}"));
    EXPECT_EQ(FetchProgress("127.0.0.1", server.port(), "t", 2000ms).status().code(), StatusCode::kUnavailable);
  }
  {
    TinyServer server(HttpReply(200, "not json"));
    EXPECT_FALSE(FetchProgress("127.0.0.1", server.port(), "t", 2000ms).ok());
  }
  {
    TinyServer server("garbage\r\n\r\n");
    EXPECT_FALSE(FetchProgress("127.0.0.1", server.port(), "t", 2000ms).ok());
  }
  {
    TinyServer server("");  // accepts, never answers
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(FetchProgress("127.0.0.1", server.port(), "t", 300ms).status().code(), StatusCode::kUnavailable);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1200ms);
  }
  EXPECT_FALSE(FetchProgress("not-an-ip", 1, "t", 300ms).ok());
}

TEST(ProgressPollerTest, PollsTrackedJobsAndReportsChanges) {
  TinyServer server(HttpReply(200, R"({"progress": {"step": 1}, "result": null, "time": "t1"})"));
  std::atomic<int> changes{0};
  ProgressPoller::Options options;
  options.min_interval = 50ms;
  ProgressPoller poller(options, [&](const std::string& key) {
    EXPECT_EQ(key, "ns/job");
    ++changes;
  });
  poller.Track("ns/job", "127.0.0.1", server.port(), "t");
  for (int i = 0; i < 100 && !poller.Latest("ns/job"); ++i) std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(poller.Latest("ns/job").has_value());
  EXPECT_EQ(poller.Latest("ns/job")->progress["step"], 1);
  std::this_thread::sleep_for(300ms);  // more polls, same reading: one change only
  EXPECT_EQ(changes.load(), 1);
  poller.Untrack("ns/job");
  EXPECT_FALSE(poller.Latest("ns/job").has_value());
  EXPECT_EQ(poller.Tracked(), 0u);
}

}  // namespace
}  // namespace mlscale::controllers::trainingjob
