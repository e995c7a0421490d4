// Sending one HTTP/1.1 request to one model-server pod, over keep-alive connections pooled
// per pod. It says precisely how an exchange failed, because the router's retry rule
// depends on it: a request may be sent again only when no byte of a response came back.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/router/endpoints.h"

namespace boost::asio {
class io_context;
}

namespace mlscale::router {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct UpstreamRequest {
  std::string method;
  std::string target;  // origin-form: "/v2/models/m/infer?x=1"
  Headers headers;     // sent as given (hop-by-hop headers already removed)
  std::string body;
  std::chrono::steady_clock::time_point deadline;  // the whole exchange
};

struct UpstreamResult {
  enum class Outcome {
    kResponse,            // a complete, well-formed response (any status code)
    kNoResponse,          // failed before any response byte (refused, reset, closed, connect timeout)
    kMalformedResponse,   // bytes came back but not a valid HTTP response, or the pod closed mid-response
    kResponseTooLarge,    // the response's header or body exceeds the configured limits
    kDeadlineExceeded,    // the request's deadline passed (possibly after the request was sent)
  };
  Outcome outcome = Outcome::kNoResponse;
  int status = 0;
  std::string content_type;
  Headers headers;  // end-to-end headers only (no Connection, Content-Length, Server, ...)
  std::string body;
  std::string error;  // what went wrong, for logs and the 502 body; never response bytes
};

struct UpstreamOptions {
  int threads = 1;  // I/O threads of the client's own; 0: run on the context given to Create
  std::chrono::milliseconds connect_timeout{1000};
  size_t max_response_header_bytes = 64 * 1024;
  size_t max_response_body_bytes = 64 * 1024 * 1024;
  size_t max_idle_per_endpoint = 64;        // pooled keep-alive connections per pod
  std::chrono::milliseconds idle_timeout{30'000};  // pooled longer than this: closed (below a server's usual 60 s)
};

class UpstreamClient {
 public:
  // Starts `options.threads` I/O threads of its own, or, with `threads` 0, runs every
  // exchange on `io_context`, which others run: mlscale-router passes the context of its
  // client-facing http::Server, so that a request, its exchange with the pod and the answer
  // stay on one thread with no hand-off (tests/bench/results/router.md). A client on a
  // shared context must be destroyed once that context no longer runs (after the server's
  // Stop()). InvalidArgument for bad options or a missing context.
  static StatusOr<std::unique_ptr<UpstreamClient>> Create(const UpstreamOptions& options,
                                                          std::shared_ptr<boost::asio::io_context> io_context = nullptr);
  virtual ~UpstreamClient() = default;  // closes every pooled connection, joins its own threads

  // Sends `request` to `endpoint` and calls `done` once, on an I/O thread, with the result.
  // A pooled connection that turns out closed (no response byte) is replaced by a fresh
  // one once, transparently. `request` is shared so that a retry can reuse it.
  virtual void Send(const EndpointAddress& endpoint, std::shared_ptr<const UpstreamRequest> request,
                    std::function<void(UpstreamResult)> done) = 0;
  // Closes the pooled connections of endpoints not in `keep` (pods that went away).
  virtual void RetainOnly(const std::vector<EndpointAddress>& keep) = 0;
  // Connections pooled now (for tests and metrics).
  virtual size_t IdleConnections() const = 0;
};

}  // namespace mlscale::router
