// Rank 0's progress endpoint: the operator (or anyone holding the run token) reads the
// trainer's live progress and, once written, its result over HTTP:
//
//   GET /v1/progress   Authorization: Bearer <MLSCALE_RUN_TOKEN>
//   200 {"progress": {...} | null, "result": {...} | null, "time": "<RFC 3339, UTC>"}
//   401 without the right token (compared in constant time), 404 for another path,
//   405 for another method; from the shared server (common/http): 400 for a malformed
//   request, 413 for a request with a body, 431 for headers over the limit, 503 beyond
//   the connection limit, and a closed connection for a client slower than the deadline.
//
// The files are the ones the launcher gives its child (MLSCALE_PROGRESS_FILE,
// MLSCALE_RESULT_FILE), read on each request: at most kMaxProgressFileBytes each; a file
// that is missing, too large or not a JSON object reads as null.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"

namespace mlscale::launcher {

inline constexpr std::size_t kMaxProgressFileBytes = 64 * 1024;

struct ProgressServerOptions {
  std::string address = "0.0.0.0";  // numeric IPv4 or IPv6 address to listen on
  std::uint16_t port = 29501;        // 0: any free port (see ProgressServer::port)
  std::string token;                 // required; requests must present it
  std::filesystem::path progress_file;
  std::filesystem::path result_file;
  std::size_t max_connections = 16;  // more get 503
  std::size_t max_header_bytes = 8 * 1024;
  // A request must arrive within this time of its first byte (or of the last response,
  // on a kept-alive connection), and its response leave within it.
  std::chrono::milliseconds request_deadline{std::chrono::seconds(5)};
};

// The JSON object in `path`, or nullopt when it is missing, unreadable, larger than
// `max_bytes` or not a JSON object (a file being rewritten is never half-read: writers
// rename a complete file into place).
std::optional<nlohmann::json> ReadJsonObjectFile(const std::filesystem::path& path, std::size_t max_bytes);

// The progress fields of the contract, each kept only when of the right type
// (numbers finite; phase a string of at most 64 bytes); null when `progress` is not an
// object. What a user script writes beyond these fields is dropped. The contract's
// "evaluation" {"step": <integer>, "metrics": {<name>: <number>, ...}} is the latest
// evaluation (the trainer's at each epoch's end, names as in the result's metrics, which
// a sweep's objective names); kept with its finite metrics, at most 32, names of at most
// 253 bytes.
nlohmann::json SanitizeProgress(const nlohmann::json& progress);

// The response body of GET /v1/progress.
nlohmann::json ProgressDocument(const std::optional<nlohmann::json>& progress,
                                const std::optional<nlohmann::json>& result,
                                std::chrono::system_clock::time_point now);

// "2026-12-01T14:35:23Z".
std::string FormatRfc3339(std::chrono::system_clock::time_point time);

// Serves the endpoint on a thread of its own until destroyed (the destructor closes the
// listener and every connection and joins the thread).
class ProgressServer {
 public:
  // Binds and starts serving. The thread runs with every signal blocked, so signals
  // reach the launcher's main thread (which forwards them to its child). Fails when the
  // token is empty or the address cannot be bound.
  static StatusOr<std::unique_ptr<ProgressServer>> Start(const ProgressServerOptions& options);
  virtual ~ProgressServer() = default;
  // The bound port (the chosen one when options.port was 0).
  virtual std::uint16_t port() const = 0;
};

}  // namespace mlscale::launcher
