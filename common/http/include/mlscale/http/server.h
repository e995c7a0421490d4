// A small HTTP/1.1 server for the endpoints mlscale processes expose (model inference,
// health, metrics, progress). It knows nothing of what it serves: a Handler gets each
// complete request and answers it through a Responder, now or later, from any thread.
//
// What it guarantees to the process that runs it, whatever clients send:
//   - keep-alive (HTTP/1.1 default, HTTP/1.0 with "Connection: keep-alive"), one request
//     at a time per connection;
//   - at most `max_connections` open connections: the next one gets 503 and is closed;
//   - request headers over `max_header_bytes` get 431, bodies (Content-Length or the sum of
//     the chunks of a chunked body) over `max_body_bytes` get 413, anything malformed 400,
//     and the connection is closed after such an answer;
//   - a connection that does not deliver a complete request within `read_timeout` of its
//     first byte (slowloris), stays idle longer than `idle_timeout` between requests, or does
//     not take a response within `write_timeout`, is closed;
//   - Drain() stops accepting, lets requests in progress finish (their responses carry
//     "Connection: close"), closes idle connections, and returns when none is left.
//
// Built on Boost.Beast (measured against cpprestsdk's listener: tests/bench/results/serve.md).
//
//   http::ServerOptions options;
//   options.port = 8081;
//   auto server = http::Server::Start(options, http::SyncHandler([](const http::Request& request) {
//     http::Response response;
//     if (request.path != "/healthz") response.status = 404;
//     response.content_type = "text/plain";
//     response.body = response.status == 200 ? "ok" : "not found";
//     return response;
//   }));
//   if (!server.ok()) return server.status();
//   ...
//   (*server)->Drain(std::chrono::seconds(10));  // on shutdown; the destructor stops the rest
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mlscale/common/status.h"

namespace boost::asio {
class io_context;
}

namespace mlscale::http {

// One complete request. Header names are lower-case; the body is decoded (de-chunked).
struct Request {
  std::string method;  // "GET", "POST", ... as sent
  std::string target;  // as sent: "/v2/models/m/infer?x=1"
  std::string path;    // target up to '?' (not percent-decoded)
  std::string query;   // after '?', empty when none
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_address;  // peer IP, for logs

  // The value of the first header named `lower_case_name`, empty when absent.
  std::string_view Header(std::string_view lower_case_name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
};

// The one way to answer a request. Move-only; Send() may be called from any thread, once.
// A Responder destroyed without Send() answers 500 (a handler bug must not hang a client).
class Responder {
 public:
  class Sink {  // implemented by the server's connection
   public:
    virtual ~Sink() = default;
    virtual void Send(Response response) = 0;
  };
  explicit Responder(std::shared_ptr<Sink> sink) : sink_(std::move(sink)) {}
  Responder(Responder&&) noexcept = default;
  Responder& operator=(Responder&&) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  void Send(Response response);

 private:
  std::shared_ptr<Sink> sink_;
};

// Called on a server thread for every complete request. It must not block for long (it
// holds one of the server's threads); work that waits goes elsewhere with the Responder.
using Handler = std::function<void(Request&& request, Responder responder)>;

// A Handler for answers computed at once.
Handler SyncHandler(std::function<Response(const Request&)> handle);

struct ServerOptions {
  std::string address = "0.0.0.0";  // IPv4 or IPv6 literal
  uint16_t port = 0;                // 0: any free port (see Server::port())
  int threads = 1;                  // threads running the connections
  size_t max_connections = 1024;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds read_timeout{10'000};   // first byte -> complete request
  std::chrono::milliseconds idle_timeout{60'000};   // between requests on a connection
  std::chrono::milliseconds write_timeout{10'000};  // to hand a response to the client
  std::string server_name = "mlscale";              // the Server header
  // The event loop to run the connections on; null: one of the server's own. A proxy
  // passes the context its outgoing connections use, so that a request, its exchange with
  // the upstream and the answer run on one thread without a hand-off (mlscale-router).
  // The server's `threads` run it; Stop() stops it. Whatever else uses it and may hold a
  // Responder must be destroyed before the server.
  std::shared_ptr<boost::asio::io_context> io_context;
};

class Server {
 public:
  // Binds, listens and starts `options.threads` threads. Errors: InvalidArgument for a bad
  // address or option, Unavailable when the port cannot be bound.
  static StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options, Handler handler);

  virtual ~Server() = default;  // stops at once (Stop()) and joins the threads

  // The port listened on (the chosen one when options.port was 0).
  virtual uint16_t port() const = 0;
  // Connections open now.
  virtual size_t connections() const = 0;

  // Graceful: stops accepting, closes idle connections, lets each request in progress be
  // answered (then closes its connection), and returns true when no connection is left,
  // or false after `deadline` (the rest are left to Stop()).
  virtual bool Drain(std::chrono::milliseconds deadline) = 0;
  // Closes everything now and joins the threads. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace mlscale::http
