// The HTTP layer under Client: a narrow interface so that only http_transport_cpprest.cc
// includes cpprestsdk (expensive to compile). Internal to mlscale_kube.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/kube/config.h"

namespace mlscale::kube {

struct HttpRequest {
  std::string method;           // GET, POST, PUT, PATCH, DELETE
  std::string path_and_query;   // already percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type;     // with a body
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::string body;         // the whole body (for streams: only when status is not 2xx)
  std::string retry_after;  // the Retry-After header, when present
};

// Prefix of the message of a failure that happened before the request could reach the
// server (connecting, TLS handshake, writing): such a request is safe to repeat.
inline constexpr const char* kNotSent = "not sent: ";

class HttpTransport {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~HttpTransport() = default;
  // Sends the request and reads the whole response, abandoning it (the connection is
  // closed) at `deadline` (kDeadlineExceeded) or when `stop` is requested (kCancelled).
  // A connection failure is kUnavailable with the cause; any HTTP status is a response.
  // A body longer than ClientConfig::max_response_bytes is kResourceExhausted.
  virtual StatusOr<HttpResponse> Send(const HttpRequest& request, Clock::time_point deadline,
                                      std::stop_token stop) = 0;
  // Sends the request; on a 2xx status calls `on_line` for each line of the body as it
  // arrives until the body ends, `on_line` returns false or `stop` is requested. On
  // other statuses the body is read whole into the response. `idle_timeout` bounds the
  // wait for headers and between lines; a line longer than
  // ClientConfig::max_watch_line_bytes ends the stream with kResourceExhausted, as does
  // more than ClientConfig::max_watch_backlog_bytes arrived and not yet taken by `on_line`.
  virtual StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                        const std::function<bool(std::string_view)>& on_line,
                                        std::chrono::seconds idle_timeout, std::stop_token stop) = 0;
};

// The cpprestsdk implementation: TLS per `config` (the given CA alone, or the system's
// roots when none is given; client certificate; verification on unless
// insecure_skip_tls_verify). Errors: unparsable server URL.
StatusOr<std::unique_ptr<HttpTransport>> MakeCpprestTransport(const ClientConfig& config);

}  // namespace mlscale::kube
