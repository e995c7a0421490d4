// mlscale::http::Server over real loopback sockets: the request parser and limits (table
// and fuzz), keep-alive, chunked bodies, slowloris and idle deadlines, the connection limit,
// graceful drain with a request in flight.
#include "mlscale/http/server.h"

#include <atomic>
#include <chrono>
#include <future>
#include <random>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "raw_connection.h"

namespace mlscale::http {
namespace {

using testing::BodyOf;
using testing::RawConnection;
using testing::StatusOf;

using namespace std::chrono_literals;

// Echoes method, path, query and body length: "POST /a q=1 5".
Response Echo(const Request& request) {
  Response response;
  response.content_type = "text/plain";
  response.body = request.method + " " + request.path + " " + request.query + " " + std::to_string(request.body.size());
  if (!request.Header("x-echo").empty()) response.body += " " + std::string(request.Header("x-echo"));
  return response;
}

ServerOptions SmallLimits() {
  ServerOptions options;
  options.address = "127.0.0.1";
  options.threads = 2;
  options.max_header_bytes = 1024;
  options.max_body_bytes = 1000;
  options.read_timeout = 500ms;
  options.idle_timeout = 2s;
  options.write_timeout = 2s;
  return options;
}

std::unique_ptr<Server> StartOrDie(const ServerOptions& options, Handler handler) {
  auto server = Server::Start(options, std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return std::move(server).value();
}

TEST(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  auto server = StartOrDie(SmallLimits(), SyncHandler(Echo));
  RawConnection client(server->port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send("GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Echo: one\r\n\r\n"));
  auto first = client.ReadResponse();
  EXPECT_EQ(StatusOf(first), 200) << first;
  EXPECT_EQ(BodyOf(first), "GET /a x=1 0 one");
  EXPECT_NE(first.find("Content-Type: text/plain"), std::string::npos);
  // Two pipelined requests, answered in order on the same connection.
  ASSERT_TRUE(client.Send("POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                          "POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"));
  EXPECT_EQ(BodyOf(client.ReadResponse()), "POST /b  5");
  EXPECT_EQ(BodyOf(client.ReadResponse()), "POST /c  2");
  EXPECT_EQ(server->connections(), 1u);
}

TEST(HttpServerTest, Http10ClosesUnlessKeepAliveIsAsked) {
  auto server = StartOrDie(SmallLimits(), SyncHandler(Echo));
  RawConnection client(server->port());
  ASSERT_TRUE(client.Send("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(StatusOf(client.ReadResponse()), 200);
  EXPECT_TRUE(client.ClosedByServer());
}

TEST(HttpServerTest, ChunkedBodyIsDecoded) {
  auto server = StartOrDie(SmallLimits(), SyncHandler(Echo));
  RawConnection client(server->port());
  ASSERT_TRUE(client.Send("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\n\r\n"));
  auto response = client.ReadResponse();
  EXPECT_EQ(StatusOf(response), 200) << response;
  EXPECT_EQ(BodyOf(response), "POST /x  7");
}

TEST(HttpServerTest, ExpectContinueGets100BeforeTheBody) {
  auto server = StartOrDie(SmallLimits(), SyncHandler(Echo));
  RawConnection client(server->port());
  ASSERT_TRUE(client.Send("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_EQ(StatusOf(client.ReadResponse()), 100);
  ASSERT_TRUE(client.Send("abc"));
  EXPECT_EQ(BodyOf(client.ReadResponse()), "POST /x  3");
}

// Each malformed or over-limit request: the status answered (0: closed without an answer),
// and the connection is closed afterwards in every case.
struct MalformedCase {
  const char* name;
  std::string bytes;
  int status;
};

TEST(HttpServerTest, MalformedRequestsAreAnsweredAndClosed) {
  const std::string big_header(2000, 'a');
  const std::vector<MalformedCase> cases = {
      {"garbage", std::string("\x01\x02\x03 nonsense\r\n\r\n", 17), 400},
      {"no version", "GET /\r\n\r\n", 400},
      {"bad version", "GET / HTTP/9\r\n\r\n", 400},
      {"space in method", "G T / HTTP/1.1\r\n\r\n", 400},
      {"bad header line", "GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400},
      {"header too large", "GET / HTTP/1.1\r\nX-Big: " + big_header + "\r\n\r\n", 431},
      {"many headers", "GET / HTTP/1.1\r\n" + [] {
         std::string h;
         for (int i = 0; i < 200; ++i) h += "X-" + std::to_string(i) + ": v\r\n";
         return h;
       }() + "\r\n", 431},
      {"content-length too large", "POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413},
      {"content-length huge", "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
      {"content-length negative", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"two content-lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"chunk over the limit", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n", 413},
      {"chunks summing over the limit",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1f4\r\n" + std::string(500, 'x') + "\r\n1f5\r\n", 413},
      {"chunk size overflow", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n", 400},
      {"chunk size not hex", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 400},
      {"chunk without CRLF after data",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n", 400},
      {"endless chunk extension",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(20000, 'e'), 400},
  };
  auto server = StartOrDie(SmallLimits(), SyncHandler(Echo));
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RawConnection client(server->port());
    ASSERT_TRUE(client.connected());
    client.Send(c.bytes);  // the server may close before all is sent
    auto response = client.ReadResponse();
    EXPECT_EQ(StatusOf(response), c.status) << response;
    if (c.status != 0) {
      EXPECT_EQ(BodyOf(response).rfind("{\"error\": ", 0), 0u) << response;
    }
    EXPECT_TRUE(client.ClosedByServer());
  }
  // Still serving.
  RawConnection client(server->port());
  client.Send("GET /ok HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(StatusOf(client.ReadResponse()), 200);
}

TEST(HttpServerTest, FuzzedRequestsNeverTakeTheServerDown) {
  auto options = SmallLimits();
  options.read_timeout = 50ms;  // mutations that leave a request incomplete end quickly
  auto server = StartOrDie(options, SyncHandler(Echo));
  const std::string seeds[] = {
      "POST /v2/models/m/infer?a=b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n",
  };
  std::mt19937 random(42);
  int answered = 0;
  for (int i = 0; i < 400; ++i) {
    std::string bytes = seeds[i % 2];
    int mutations = 1 + int(random() % 6);
    for (int m = 0; m < mutations; ++m) {
      size_t at = random() % bytes.size();
      switch (random() % 4) {
        case 0: bytes[at] = char(random() % 256); break;
        case 1: bytes.erase(at, 1 + random() % 8); break;
        case 2: bytes.insert(at, std::string(1 + random() % 64, char(random() % 256))); break;
        default: bytes.insert(at, bytes.substr(at, random() % 200)); break;
      }
      if (bytes.empty()) bytes = "x";
    }
    RawConnection client(server->port());
    ASSERT_TRUE(client.connected()) << "iteration " << i;
    client.Send(bytes);
    auto response = client.ReadResponse();
    if (!response.empty()) {
      ++answered;
      int status = StatusOf(response);
      EXPECT_TRUE(status == 200 || status == 400 || status == 413 || status == 431) << response;
    }
  }
  EXPECT_GT(answered, 100);
  RawConnection client(server->port());
  client.Send("GET /ok HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(StatusOf(client.ReadResponse()), 200);
}

TEST(HttpServerTest, SlowlorisIsCutAtTheReadDeadlineWhileOthersAreServed) {
  auto server = StartOrDie(SmallLimits(), SyncHandler(Echo));  // read_timeout 500 ms
  RawConnection slow(server->port());
  ASSERT_TRUE(slow.Send("GET / HTTP/1.1\r\nHost: h\r\n"));
  auto started = std::chrono::steady_clock::now();
  bool cut = false;
  for (int i = 0; i < 40 && !cut; ++i) {  // one header byte every 50 ms: never completes
    std::this_thread::sleep_for(50ms);
    cut = !slow.Send("X");
    RawConnection other(server->port());
    other.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_EQ(StatusOf(other.ReadResponse()), 200);
  }
  EXPECT_TRUE(cut || slow.ClosedByServer());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

TEST(HttpServerTest, SlowBodyIsCutAtTheReadDeadline) {
  auto server = StartOrDie(SmallLimits(), SyncHandler(Echo));
  RawConnection slow(server->port());
  ASSERT_TRUE(slow.Send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc"));
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(slow.ClosedByServer());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1500ms);
}

TEST(HttpServerTest, IdleConnectionIsClosedAfterTheIdleTimeout) {
  auto options = SmallLimits();
  options.idle_timeout = 300ms;
  auto server = StartOrDie(options, SyncHandler(Echo));
  RawConnection idle(server->port());
  ASSERT_TRUE(idle.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_EQ(StatusOf(idle.ReadResponse()), 200);
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(idle.ClosedByServer());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 250ms);
}

TEST(HttpServerTest, ConnectionsOverTheLimitGet503) {
  auto options = SmallLimits();
  options.max_connections = 2;
  auto server = StartOrDie(options, SyncHandler(Echo));
  RawConnection first(server->port()), second(server->port());
  for (auto* c : {&first, &second}) {
    c->Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_EQ(StatusOf(c->ReadResponse()), 200);
  }
  RawConnection third(server->port());
  auto refused = third.ReadResponse();
  EXPECT_EQ(StatusOf(refused), 503) << refused;
  EXPECT_TRUE(third.ClosedByServer());
  // A freed slot is usable again.
  first.Send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(StatusOf(first.ReadResponse()), 200);
  ASSERT_TRUE(first.ClosedByServer());
  for (int attempt = 0; attempt < 50 && server->connections() > 1; ++attempt) std::this_thread::sleep_for(10ms);
  RawConnection fourth(server->port());
  fourth.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(StatusOf(fourth.ReadResponse()), 200);
}

TEST(HttpServerTest, DroppedResponderAnswers500) {
  auto server = StartOrDie(SmallLimits(), [](Request&&, Responder) {});
  RawConnection client(server->port());
  client.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(StatusOf(client.ReadResponse()), 500);
}

TEST(HttpServerTest, ThrowingHandlerAnswers500AndServerKeepsServing) {
  auto server = StartOrDie(SmallLimits(), SyncHandler([](const Request&) -> Response {
                             throw std::runtime_error("handler bug");
                           }));
  for (int i = 0; i < 2; ++i) {
    RawConnection client(server->port());
    client.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(StatusOf(client.ReadResponse()), 500);
  }
}

TEST(HttpServerTest, DrainAnswersTheRequestInFlightAndClosesIdleConnections) {
  std::promise<Responder> parked;
  auto parked_future = parked.get_future();
  auto server = StartOrDie(SmallLimits(), [&](Request&& request, Responder responder) {
    if (request.path == "/slow") {
      parked.set_value(std::move(responder));
    } else {
      responder.Send(Echo(request));
    }
  });
  RawConnection idle(server->port());
  idle.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(StatusOf(idle.ReadResponse()), 200);
  RawConnection busy(server->port());
  busy.Send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n");
  Responder in_flight = parked_future.get();

  auto drained = std::async(std::launch::async, [&] { return server->Drain(5s); });
  EXPECT_TRUE(idle.ClosedByServer());
  RawConnection late(server->port());
  EXPECT_FALSE(late.connected() && late.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n") &&
               !late.ReadResponse().empty());
  EXPECT_EQ(drained.wait_for(100ms), std::future_status::timeout);  // still answering /slow

  Response answer;
  answer.body = "done";
  in_flight.Send(answer);
  auto response = busy.ReadResponse();
  EXPECT_EQ(StatusOf(response), 200);
  EXPECT_EQ(BodyOf(response), "done");
  EXPECT_NE(response.find("Connection: close"), std::string::npos) << response;
  EXPECT_TRUE(busy.ClosedByServer());
  EXPECT_TRUE(drained.get());
  EXPECT_EQ(server->connections(), 0u);
}

TEST(HttpServerTest, StartRejectsBadOptions) {
  ServerOptions options;
  options.address = "not-an-ip";
  auto bad_address = Server::Start(options, SyncHandler(Echo));
  ASSERT_FALSE(bad_address.ok());
  EXPECT_EQ(bad_address.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_address.status().message().find("not-an-ip"), std::string::npos);

  auto first = StartOrDie(SmallLimits(), SyncHandler(Echo));
  auto taken = SmallLimits();
  taken.port = first->port();
  auto conflict = Server::Start(taken, SyncHandler(Echo));
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mlscale::http
