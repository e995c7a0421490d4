// One bounded HTTP/1.1 GET to a pod: how the operator's pollers read the small JSON
// documents pods serve (a router's /v1/stats, a trainer's /v1/progress, a model server's
// /v2/models/<name>). Whatever the pod sends, at most `max_body_bytes` of body (and 16 KiB
// of header) are read, and the whole exchange (connect, send, read) ends by `deadline`.
//
//   auto reply = http::BoundedGet({.address = "10.1.2.3", .port = 9090, .path = "/v1/stats",
//                                  .max_body_bytes = 256 * 1024, .deadline = 500ms});
//   if (reply.ok() && reply->status == 200) Parse(reply->body);
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::http {

struct GetRequest {
  std::string address;  // an IPv4 or IPv6 literal (pods are reached by address, no DNS)
  int port = 0;
  std::string path = "/";
  // Extra request headers (e.g. authorization). Never part of an error message.
  std::vector<std::pair<std::string, std::string>> headers;
  std::size_t max_body_bytes = 64 * 1024;
  std::chrono::milliseconds deadline{1000};
};

struct GetReply {
  int status = 0;    // any status code the pod answered
  std::string body;  // at most max_body_bytes
};

// Errors (each message starts "address:port/path: "): InvalidArgument for an address that is
// not an IP literal or a port outside 1..65535; Unavailable when the connection fails, the
// deadline passes, the reply is larger than the limits ("reply larger than 64 KiB"), or it
// is not a complete HTTP response.
StatusOr<GetReply> BoundedGet(const GetRequest& request);

}  // namespace mlscale::http
