// BoundedGet (get.h) against real servers on loopback: our own http::Server for well-formed
// answers, and a raw socket for what no HTTP library sends (an endless header, silence).
#include "mlscale/http/get.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "loopback_listener.h"
#include "mlscale/http/server.h"

namespace mlscale::http {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<Server> Echo() {
  ServerOptions options;
  options.address = "127.0.0.1";
  auto server = Server::Start(options, SyncHandler([](const Request& request) {
    Response response;
    if (request.path == "/missing") response.status = 404;
    if (request.path == "/big") {
      response.body = std::string(5000, 'x');
    } else {
      response.body = std::string(request.Header("authorization")) + " " + request.path;
    }
    return response;
  }));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return std::move(*server);
}

// Accepts one connection and sends `bytes`, then keeps it open for `hold`.
class RawServer {
 public:
  RawServer(std::string bytes, std::chrono::milliseconds hold) {
    EXPECT_TRUE(listener_.ok());
    thread_ = std::thread([this, bytes = std::move(bytes), hold] {
      const int client = ::accept(listener_.fd(), nullptr, nullptr);
      if (client < 0) return;
      for (size_t sent = 0; sent < bytes.size();) {
        const ssize_t n = ::write(client, bytes.data() + sent, bytes.size() - sent);
        if (n <= 0) break;
        sent += size_t(n);
      }
      std::this_thread::sleep_for(hold);
      ::close(client);
    });
  }
  ~RawServer() {
    listener_.Shutdown();
    thread_.join();
  }
  int port() const { return listener_.port(); }

 private:
  mlscale::testing::LoopbackListener listener_{4};
  std::thread thread_;
};

TEST(BoundedGet, ReturnsAnyStatusWithItsBodyAndSendsTheHeaders) {
  auto server = Echo();
  auto reply = BoundedGet({.address = "127.0.0.1", .port = server->port(), .path = "/v1/x",
                           .headers = {{"Authorization", "Bearer t"}}, .max_body_bytes = 1000, .deadline = 2s});
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "Bearer t /v1/x");
  reply = BoundedGet({.address = "127.0.0.1", .port = server->port(), .path = "/missing", .headers = {},
                      .max_body_bytes = 1000, .deadline = 2s});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status, 404) << "a status is the caller's to judge";
}

TEST(BoundedGet, RefusesWhatIsTooLargeMalformedOrLate) {
  auto server = Echo();
  auto reply = BoundedGet({.address = "127.0.0.1", .port = server->port(), .path = "/big", .headers = {},
                           .max_body_bytes = 4096, .deadline = 2s});
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(reply.status().message().find("larger than 4 KiB"), std::string::npos) << reply.status().ToString();
  EXPECT_TRUE(BoundedGet({.address = "127.0.0.1", .port = server->port(), .path = "/big", .headers = {},
                          .max_body_bytes = 8000, .deadline = 2s})
                  .ok());

  {  // A header that never ends: refused at the header limit, not read on.
    RawServer raw("HTTP/1.1 200 OK\r\nX: " + std::string(100'000, 'a'), 2s);
    auto endless = BoundedGet({.address = "127.0.0.1", .port = raw.port(), .path = "/", .headers = {},
                               .max_body_bytes = 100, .deadline = 2s});
    EXPECT_EQ(endless.status().code(), StatusCode::kUnavailable) << endless.status().ToString();
  }
  {  // Not HTTP.
    RawServer raw("SSH-2.0-OpenSSH\r\n\r\n", 0ms);
    EXPECT_EQ(BoundedGet({.address = "127.0.0.1", .port = raw.port(), .path = "/", .headers = {},
                          .max_body_bytes = 100, .deadline = 2s})
                  .status()
                  .code(),
              StatusCode::kUnavailable);
  }
  {  // Cut short: Content-Length promises more than comes.
    RawServer raw("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0ms);
    EXPECT_FALSE(BoundedGet({.address = "127.0.0.1", .port = raw.port(), .path = "/", .headers = {},
                             .max_body_bytes = 100, .deadline = 2s})
                     .ok());
  }
  {  // Silence: the deadline ends it.
    RawServer raw("", 1500ms);
    auto silent = BoundedGet({.address = "127.0.0.1", .port = raw.port(), .path = "/", .headers = {},
                              .max_body_bytes = 100, .deadline = 200ms});
    EXPECT_EQ(silent.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(silent.status().message().find("deadline"), std::string::npos) << silent.status().ToString();
  }
  EXPECT_EQ(BoundedGet({.address = "localhost", .port = 80, .path = "/", .headers = {}, .max_body_bytes = 1,
                        .deadline = 1s})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(BoundedGet({.address = "127.0.0.1", .port = 0, .path = "/", .headers = {}, .max_body_bytes = 1,
                        .deadline = 1s})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mlscale::http
