// Malformed and failing server responses give clear errors, never crashes. The server
// here is a FAULT INJECTOR: a raw TCP server on loopback that answers each request with
// scripted bytes (broken HTTP, bad JSON, error statuses), since a real API server
// cannot be made to send these.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "mlscale/kube/client.h"
#include "mlscale/kube/errors.h"
#include "mlscale/kube/informer.h"
#include "mlscale/kube/watch.h"

namespace mlscale::kube {
namespace {

using namespace std::chrono_literals;

class FaultInjector {
 public:
  FaultInjector() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(listen(listen_fd_, 64), 0);
    socklen_t length = sizeof address;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::jthread([this](std::stop_token stop) { Serve(stop); });
  }
  ~FaultInjector() {
    thread_.request_stop();
    thread_.join();
    close(listen_fd_);
  }
  // Responses in order; the last one repeats.
  void Script(std::deque<std::string> responses) {
    std::lock_guard lock(mutex_);
    responses_ = std::move(responses);
  }
  // Holds each answer this long before sending it (a server that does not answer).
  void Stall(std::chrono::milliseconds delay) { stall_ms_ = delay.count(); }
  int requests() const { return requests_.load(); }
  std::string server() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void Serve(std::stop_token stop) {
    while (!stop.stop_requested()) {
      pollfd fd = {listen_fd_, POLLIN, 0};
      if (poll(&fd, 1, 50) <= 0) continue;
      int connection = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection < 0) continue;
      // Keep-alive: answer every request on this connection until the client closes.
      std::string pending;
      for (;;) {
        size_t head_end;
        while ((head_end = pending.find("\r\n\r\n")) == std::string::npos) {
          pollfd in = {connection, POLLIN, 0};
          if (poll(&in, 1, 2000) <= 0) break;
          char buffer[4096];
          ssize_t n = recv(connection, buffer, sizeof buffer, 0);
          if (n <= 0) break;
          pending.append(buffer, static_cast<size_t>(n));
        }
        if (head_end == std::string::npos) break;
        size_t body_length = 0;
        size_t header = pending.find("Content-Length: ");
        if (header != std::string::npos && header < head_end) body_length = std::stoul(pending.substr(header + 16));
        while (pending.size() < head_end + 4 + body_length) {
          char buffer[4096];
          ssize_t n = recv(connection, buffer, sizeof buffer, 0);
          if (n <= 0) break;
          pending.append(buffer, static_cast<size_t>(n));
        }
        pending.erase(0, std::min(pending.size(), head_end + 4 + body_length));
        ++requests_;
        std::string response;
        {
          std::lock_guard lock(mutex_);
          response = responses_.front();
          if (responses_.size() > 1) responses_.pop_front();
        }
        for (auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(stall_ms_.load());
             !stop.stop_requested() && std::chrono::steady_clock::now() < until;) {
          std::this_thread::sleep_for(10ms);
        }
        send(connection, response.data(), response.size(), MSG_NOSIGNAL);
        if (response.find("Connection: keep-alive") == std::string::npos) break;
      }
      close(connection);
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::mutex mutex_;
  std::deque<std::string> responses_ = {"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"};
  std::atomic<int> requests_{0};
  std::atomic<int64_t> stall_ms_{0};
  std::jthread thread_;
};

std::string Http(int status, const std::string& body, const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

std::unique_ptr<Client> ClientFor(const FaultInjector& injector, int max_retries = 2,
                                  const std::function<void(ClientConfig&)>& adjust = nullptr) {
  ClientConfig config;
  config.server = injector.server();
  config.max_retries = max_retries;
  config.request_timeout = 3s;
  if (adjust) adjust(config);
  StatusOr<std::unique_ptr<Client>> client = Client::Create(config);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(*client) : nullptr;
}

struct BadResponse {
  const char* name;
  std::string bytes;
  StatusCode code;
  const char* expected;  // part of the message
};

TEST(MalformedResponseTest, GetGivesClearErrors) {
  FaultInjector injector;
  auto client = ClientFor(injector, 0);
  ASSERT_NE(client, nullptr);
  const std::string status_409 =
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Conflict","message":"stale","code":409})";
  const BadResponse cases[] = {
      {"not JSON", Http(200, "<html>hello</html>"), StatusCode::kDataLoss, "malformed JSON"},
      {"truncated JSON", Http(200, R"({"metadata": {"name": "x")"), StatusCode::kDataLoss, "malformed JSON"},
      {"JSON array", Http(200, "[1,2,3]"), StatusCode::kDataLoss, "not a JSON object"},
      {"empty 200", Http(200, ""), StatusCode::kDataLoss, "malformed JSON"},
      {"Status body", Http(409, status_409), StatusCode::kConflict, "Conflict (HTTP 409): stale"},
      {"409 without Status", Http(409, "nope"), StatusCode::kConflict, "Conflict (HTTP 409): a body of 4 bytes"},
      {"404 HTML", Http(404, "<h1>nope</h1>"), StatusCode::kNotFound, "NotFound (HTTP 404)"},
      {"403", Http(403, "{}"), StatusCode::kPermissionDenied, "Forbidden (HTTP 403)"},
      {"401", Http(401, ""), StatusCode::kUnauthenticated, "empty body"},
      {"418", Http(418, "teapot"), StatusCode::kInternal, "HTTP 418"},
      {"garbage status line", "HELLO WORLD\r\n\r\n", StatusCode::kUnavailable, "GET /api/v1/namespaces/n/configmaps/x"},
      {"closed without answer", "", StatusCode::kUnavailable, "GET"},
      {"short body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":", StatusCode::kUnavailable, "GET"},
  };
  for (const BadResponse& bad : cases) {
    injector.Script({bad.bytes});
    StatusOr<Object> got = client->Get(resources::ConfigMaps(), "n", "x");
    ASSERT_FALSE(got.ok()) << bad.name;
    EXPECT_EQ(got.status().code(), bad.code) << bad.name << ": " << got.status().ToString();
    EXPECT_NE(got.status().message().find(bad.expected), std::string::npos)
        << bad.name << ": " << got.status().ToString();
  }
}

TEST(MalformedResponseTest, ListRejectsItemsThatAreNotObjects) {
  FaultInjector injector;
  auto client = ClientFor(injector, 0);
  ASSERT_NE(client, nullptr);
  injector.Script({Http(200, R"({"items": "many"})")});
  EXPECT_EQ(client->List(resources::Pods(), "n").status().code(), StatusCode::kDataLoss);
  injector.Script({Http(200, R"({"items": [1]})")});
  EXPECT_EQ(client->List(resources::Pods(), "n").status().code(), StatusCode::kDataLoss);
  injector.Script({Http(200, R"({"items": null, "metadata": {"resourceVersion": "5"}})")});
  StatusOr<ObjectList> empty = client->List(resources::Pods(), "n");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->resource_version, "5");
}

TEST(MalformedResponseTest, TransientFailuresAreRetriedWithRetryAfter) {
  FaultInjector injector;
  auto client = ClientFor(injector, 3);
  ASSERT_NE(client, nullptr);
  const std::string ok = Http(200, R"({"metadata": {"name": "x"}})");
  injector.Script({Http(429, "slow down", "Retry-After: 1\r\n"), Http(503, "busy"), ok});
  auto started = std::chrono::steady_clock::now();
  StatusOr<Object> got = client->Get(resources::ConfigMaps(), "n", "x");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(injector.requests(), 3);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1s) << "Retry-After was not honoured";

  // Retries are bounded: the last error surfaces with the server's reason.
  injector.Script({Http(500, R"({"kind":"Status","reason":"InternalError","message":"etcd down","code":500})")});
  int before = injector.requests();
  StatusOr<Object> failed = client->Get(resources::ConfigMaps(), "n", "x");
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(failed.status().message().find("etcd down"), std::string::npos) << failed.status().ToString();
  EXPECT_EQ(injector.requests() - before, 4) << "1 attempt + 3 retries";

  // A mutation answered with a plain 500 is not repeated (it may have been applied);
  // one that never reached the server (the injector closed the pooled connection) is.
  injector.Script({Http(500, "oops")});
  before = injector.requests();
  StatusOr<Object> created = client->Create(resources::ConfigMaps(), "n", {{"metadata", {{"name", "x"}}}});
  EXPECT_EQ(created.status().code(), StatusCode::kUnavailable) << created.status().ToString();
  EXPECT_EQ(injector.requests() - before, 1) << created.status().ToString();
}

std::string Chunked(const std::vector<std::string>& lines) {
  std::string out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const std::string& line : lines) {
    std::string chunk = line + "\n";
    char size[16];
    std::snprintf(size, sizeof size, "%zx", chunk.size());
    out += std::string(size) + "\r\n" + chunk + "\r\n";
  }
  return out + "0\r\n\r\n";
}

TEST(MalformedResponseTest, WatchStreamsReportBadEvents) {
  FaultInjector injector;
  auto client = ClientFor(injector, 0);
  ASSERT_NE(client, nullptr);
  const std::string added = R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"2"}}})";
  struct Case {
    const char* name;
    std::vector<std::string> lines;
    StatusCode code;
    int events;
  };
  const Case cases[] = {
      {"clean end", {added, added}, StatusCode::kOk, 2},
      {"garbage line", {added, "}{not json"}, StatusCode::kDataLoss, 1},
      {"unknown type", {R"({"type":"EXPLODED","object":{}})"}, StatusCode::kDataLoss, 0},
      {"object not an object", {R"({"type":"ADDED","object":"a"})"}, StatusCode::kDataLoss, 0},
      {"410 in-stream",
       {added, R"({"type":"ERROR","object":{"kind":"Status","reason":"Expired","message":"too old","code":410}})"},
       StatusCode::kAborted, 1},
  };
  for (const Case& c : cases) {
    injector.Script({Chunked(c.lines)});
    int events = 0;
    Status ended = client->WatchStream(resources::ConfigMaps(), "n", {}, [&](WatchEvent&&) {
      ++events;
      return true;
    });
    EXPECT_EQ(ended.code(), c.code) << c.name << ": " << ended.ToString();
    EXPECT_EQ(events, c.events) << c.name;
  }
  injector.Script({Http(410, R"({"kind":"Status","reason":"Expired","message":"too old","code":410})")});
  Status gone = client->WatchStream(resources::ConfigMaps(), "n", {}, [](WatchEvent&&) { return true; });
  EXPECT_TRUE(IsGone(gone)) << gone.ToString();
  EXPECT_EQ(ReasonOf(gone), "Expired");
}

// Response bytes may be Secret data (a proxy echoing, a truncated Secret): errors say
// how many bytes were wrong, never what they were.
TEST(MalformedResponseTest, ErrorsNeverQuoteResponseBytes) {
  FaultInjector injector;
  auto client = ClientFor(injector, 0);
  ASSERT_NE(client, nullptr);
  const std::string secret = "c2VjcmV0LXBhc3N3b3Jk";
  injector.Script({Http(200, R"({"kind":"Secret","data":{"password":")" + secret + "\"")});
  Status truncated = client->Get(resources::Secrets(), "n", "s").status();
  EXPECT_EQ(truncated.code(), StatusCode::kDataLoss);
  EXPECT_EQ(truncated.message().find(secret), std::string::npos) << truncated.ToString();
  injector.Script({Http(500, "password=" + secret)});
  Status failed = client->Get(resources::Secrets(), "n", "s").status();
  EXPECT_EQ(failed.message().find(secret), std::string::npos) << failed.ToString();
  injector.Script({Chunked({std::string(R"({"type":"ADDED","object":{"data":{"password":")") + secret})});
  Status watch = client->WatchStream(resources::Secrets(), "n", {}, [](WatchEvent&&) { return true; });
  EXPECT_EQ(watch.code(), StatusCode::kDataLoss);
  EXPECT_EQ(watch.message().find(secret), std::string::npos) << watch.ToString();
}

// A hostile or broken server cannot exhaust memory: bodies and watch lines are capped.
TEST(MalformedResponseTest, ResponseBodiesAndWatchLinesAreCapped) {
  FaultInjector injector;
  auto client = ClientFor(injector, 0, [](ClientConfig& config) {
    config.max_response_bytes = 4096;
    config.max_watch_line_bytes = 4096;
  });
  ASSERT_NE(client, nullptr);
  const std::string big = R"({"metadata":{"name":"x"},"data":{"k":")" + std::string(10000, 'a') + "\"}}";
  injector.Script({Http(200, big)});
  Status declared = client->Get(resources::ConfigMaps(), "n", "x").status();
  EXPECT_EQ(declared.code(), StatusCode::kResourceExhausted) << declared.ToString();
  // Without a Content-Length (chunked), the reading stops at the cap.
  std::string chunked = Chunked({big});
  injector.Script({chunked});
  Status streamed = client->Get(resources::ConfigMaps(), "n", "x").status();
  EXPECT_EQ(streamed.code(), StatusCode::kResourceExhausted) << streamed.ToString();
  injector.Script({Chunked({R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})", big})});
  int events = 0;
  Status watch = client->WatchStream(resources::ConfigMaps(), "n", {}, [&](WatchEvent&&) {
    ++events;
    return true;
  });
  EXPECT_EQ(watch.code(), StatusCode::kResourceExhausted) << watch.ToString();
  EXPECT_EQ(events, 1);
  // Within the caps, the same sizes pass.
  injector.Script({Http(200, R"({"metadata":{"name":"x"}})")});
  EXPECT_TRUE(client->Get(resources::ConfigMaps(), "n", "x").ok());
}

// cpprestsdk reads a stream's socket as fast as the server sends, whatever the reader's
// pace: what has arrived unread is capped, and a reader that far behind gets a clear
// error (a Watcher then resumes from the last event it took) instead of growing memory.
TEST(MalformedResponseTest, AStreamReaderFarBehindTheServerEndsTheStream) {
  FaultInjector injector;
  std::vector<std::string> lines;
  for (int i = 0; i < 400; ++i) {
    lines.push_back(R"({"type":"ADDED","object":{"metadata":{"name":"c)" + std::to_string(i) + R"("},"data":{"k":")" +
                    std::string(1000, 'a') + "\"}}}");
  }
  injector.Script({Chunked(lines)});
  auto slow_reader = [](int& events) {
    return [&events](WatchEvent&&) {
      if (events++ == 0) std::this_thread::sleep_for(300ms);  // the rest arrives meanwhile
      return true;
    };
  };
  auto capped = ClientFor(injector, 0, [](ClientConfig& config) { config.max_watch_backlog_bytes = 32 * 1024; });
  ASSERT_NE(capped, nullptr);
  int events = 0;
  Status behind = capped->WatchStream(resources::ConfigMaps(), "n", {}, slow_reader(events));
  EXPECT_EQ(behind.code(), StatusCode::kResourceExhausted) << behind.ToString();
  EXPECT_NE(behind.message().find("fell more than 32768 bytes behind"), std::string::npos) << behind.ToString();
  EXPECT_LT(events, 400);
  // The default cap (64 MiB) takes the same stream whole at the same pace.
  auto uncapped = ClientFor(injector, 0);
  ASSERT_NE(uncapped, nullptr);
  events = 0;
  Status whole = uncapped->WatchStream(resources::ConfigMaps(), "n", {}, slow_reader(events));
  EXPECT_TRUE(whole.ok()) << whole.ToString();
  EXPECT_EQ(events, 400);
}

// A call ends at its deadline or when its stop token is requested, however long the
// server takes; the rate limiter's wait counts against the deadline.
TEST(MalformedResponseTest, CallsEndAtTheirDeadlineOrWhenStopped) {
  FaultInjector injector;
  auto client = ClientFor(injector, 3);
  ASSERT_NE(client, nullptr);
  injector.Script({Http(200, R"({"metadata":{"name":"x"}})")});
  injector.Stall(20s);
  auto started = std::chrono::steady_clock::now();
  Status late = client->Get(resources::ConfigMaps(), "n", "x", "", CallOptions::Within(300ms)).status();
  EXPECT_EQ(late.code(), StatusCode::kDeadlineExceeded) << late.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s) << "the deadline was not honoured";

  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(300ms);
    stop.request_stop();
  });
  started = std::chrono::steady_clock::now();
  Status stopped = client->Get(resources::ConfigMaps(), "n", "x", "", {.stop = stop.get_token()}).status();
  EXPECT_EQ(stopped.code(), StatusCode::kCancelled) << stopped.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s) << "the stop token was not honoured";
  injector.Stall(0ms);

  FaultInjector quiet;
  auto throttled = ClientFor(quiet, 0, [](ClientConfig& config) {
    config.qps = 0.2;
    config.burst = 1;
  });
  quiet.Script({Http(200, R"({"metadata":{"name":"x"}})")});
  ASSERT_TRUE(throttled->Get(resources::ConfigMaps(), "n", "x").ok());
  started = std::chrono::steady_clock::now();
  Status limited = throttled->Get(resources::ConfigMaps(), "n", "x", "", CallOptions::Within(200ms)).status();
  EXPECT_EQ(limited.code(), StatusCode::kDeadlineExceeded) << limited.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
}

TEST(MalformedResponseTest, ListedItemsCarryApiVersionAndKind) {
  FaultInjector injector;
  auto client = ClientFor(injector, 0);
  ASSERT_NE(client, nullptr);
  injector.Script({Http(200, R"({"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"resourceVersion":"3"},
                                 "items":[{"metadata":{"name":"a","uid":"u"}}]})")});
  StatusOr<ObjectList> list = client->List(resources::Deployments(), "n");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(list->items[0]["apiVersion"], "apps/v1");
  EXPECT_EQ(list->items[0]["kind"], "Deployment");
}

// An object deleted while the watch was down is noticed by the relist: its delete
// handler gets the last cached state marked final_state_unknown (client-go's tombstone).
// The injector plays the API server: list {a, b}, a watch that expires (410), list {a}.
TEST(MalformedResponseTest, DeletionsSeenOnlyByARelistAreMarkedFinalStateUnknown) {
  FaultInjector injector;
  auto client = ClientFor(injector, 0);
  ASSERT_NE(client, nullptr);
  auto list = [](const std::string& items) {
    return Http(200, R"({"kind":"ConfigMapList","metadata":{"resourceVersion":"10"},"items":[)" + items + "]}");
  };
  const std::string a = R"({"metadata":{"name":"a","namespace":"n","resourceVersion":"5"}})";
  const std::string b = R"({"metadata":{"name":"b","namespace":"n","resourceVersion":"6"}})";
  const std::string expired =
      Chunked({R"({"type":"ERROR","object":{"kind":"Status","reason":"Expired","message":"too old","code":410}})"});
  injector.Script({list(a + "," + b), expired, list(a), Chunked({})});
  std::mutex mutex;
  std::vector<std::pair<std::string, bool>> deleted;
  InformerOptions options;
  options.watch.initial_backoff = 10ms;
  SharedInformer informer(*client, resources::ConfigMaps(), "n", options);
  informer.AddHandler({.on_delete = [&](const ObjectPtr& object, bool unknown) {
    std::lock_guard lock(mutex);
    deleted.emplace_back(NameOf(*object), unknown);
  }});
  informer.Start();
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mutex);
      if (!deleted.empty()) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  informer.Stop();
  std::lock_guard lock(mutex);
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_EQ(deleted[0].first, "b");
  EXPECT_TRUE(deleted[0].second) << "the final state is not known after a relist";
}

// Random bytes, truncations and mutations of valid responses: every request ends with a
// value or an error, none crashes or hangs.
TEST(MalformedResponseTest, FuzzedResponsesNeverCrash) {
  FaultInjector injector;
  auto client = ClientFor(injector, 0);
  ASSERT_NE(client, nullptr);
  std::mt19937 random(777);
  const std::string valid_list =
      Http(200, R"({"kind":"ConfigMapList","metadata":{"resourceVersion":"9"},"items":[{"metadata":{"name":"a"}}]})");
  const std::string valid_watch = Chunked({R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})"});
  int ok = 0;
  for (int i = 0; i < 150; ++i) {
    std::string bytes = i % 2 ? valid_list : valid_watch;
    int edits = 1 + static_cast<int>(random() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t at = random() % (bytes.size() + 1);
      switch (random() % 3) {
        case 0: bytes.resize(std::max<size_t>(at, 1)); break;
        case 1: if (at < bytes.size()) bytes[at] = static_cast<char>(random() % 256); break;
        default: bytes.insert(at, std::string(1 + random() % 8, static_cast<char>(random() % 256))); break;
      }
    }
    injector.Script({bytes});
    if (i % 2) {
      StatusOr<ObjectList> list = client->List(resources::ConfigMaps(), "n");
      ok += list.ok();
      if (!list.ok()) {
        EXPECT_FALSE(list.status().message().empty());
      }
    } else {
      Status ended = client->WatchStream(resources::ConfigMaps(), "n", {}, [](WatchEvent&&) { return true; });
      ok += ended.ok();
    }
  }
  EXPECT_GT(ok, 0);
}

// A Watcher against a server that only sends garbage keeps retrying (it never stops
// silently) and stops promptly when asked.
TEST(MalformedResponseTest, WatcherKeepsRetryingAgainstGarbage) {
  FaultInjector injector;
  auto client = ClientFor(injector, 0);
  ASSERT_NE(client, nullptr);
  injector.Script({Http(200, "garbage")});
  WatcherOptions options;
  options.initial_backoff = 10ms;
  options.max_backoff = 50ms;
  Watcher watcher(*client, resources::ConfigMaps(), "n", options, {});
  watcher.Start();
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(watcher.HasSynced());
  EXPECT_GE(injector.requests(), 4) << "the watcher gave up";
  auto stopping = std::chrono::steady_clock::now();
  watcher.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 2s);
}

}  // namespace
}  // namespace mlscale::kube
