// The kubelet's container-log endpoint, which kube-apiserver proxies for `kubectl logs`
// (pods/log): GET /containerLogs/<namespace>/<pod>/<container> with the query parameters
// follow, previous, tailLines and limitBytes, served over TLS with a certificate from the
// cluster's CA to clients whose certificate that CA signed (the API server's
// --kubelet-client-certificate). Logs are the files the pod runtime writes:
// <container>.log (every run appended) and <container>.log.runs ("start <offset>" and
// "end <offset>" per run), so "current" is the last run's part of the file and
// "previous" the one before.
//
// Not supported, answered 400 with the reason: timestamps (the log holds no per-line
// times), sinceSeconds/sinceTime.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::nodeagent {

struct LogRequest {
  std::string namespace_name;
  std::string pod;
  std::string container;
  bool follow = false;
  bool previous = false;
  std::optional<int64_t> tail_lines;   // the last N lines (of the selected run)
  std::optional<int64_t> limit_bytes;  // at most this many bytes
};

// Parses a request target ("/containerLogs/ns/pod/c?follow=true&tailLines=10").
// InvalidArgument naming the parameter for a malformed or unsupported one; NotFound for
// another path.
StatusOr<LogRequest> ParseLogRequest(std::string_view target);

// One run of a container in its log file: [start, end); no end while it runs.
struct LogRun {
  int64_t start = 0;
  std::optional<int64_t> end;
  bool operator==(const LogRun&) const = default;
};

// Parses <container>.log.runs; lines that are not "start N"/"end N" are skipped (a line
// cut short by a crash), an "end" closes the run before it.
std::vector<LogRun> ParseRuns(std::string_view text);

// The run a request reads: the last one, or with `previous` the one before (which has
// ended). InvalidArgument with the kubelet's wording when there is none.
StatusOr<LogRun> SelectRun(const std::vector<LogRun>& runs, const LogRequest& request);

// Where the last `lines` lines of [begin, end) begin; a newline at end-1 ends the last
// line rather than starting an empty one. `read(offset, size)` returns the bytes there
// (fewer at the end); the range is read backwards in blocks, so only the tail is read.
int64_t TailOffset(const std::function<std::string(int64_t offset, size_t size)>& read, int64_t begin,
                   int64_t end, int64_t lines);

struct LogServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port (LogServer::port())
  std::string cert_file;       // PEM: the serving certificate (its chain)
  std::string key_file;        // PEM: its key
  std::string client_ca_file;  // PEM: the CA client certificates must be signed by
  size_t max_connections = 32;  // more are refused (closed at once)
  // The log file of a container of a pod this node runs (<pod dir>/<container>.log, init
  // containers' "init-<name>.log"), nullopt when the node runs no such pod.
  std::function<std::optional<std::string>(const std::string& namespace_name, const std::string& pod,
                                           const std::string& container)>
      log_file;
};

class LogServer {
 public:
  // Loads the certificates and listens. Errors: unreadable or mismatched certificate/key
  // (InvalidArgument naming the file), a port that cannot be bound (Unavailable).
  static StatusOr<std::unique_ptr<LogServer>> Start(LogServerOptions options);
  virtual ~LogServer() = default;  // closes every connection (follows end) and joins
  virtual uint16_t port() const = 0;
};

}  // namespace mlscale::nodeagent
