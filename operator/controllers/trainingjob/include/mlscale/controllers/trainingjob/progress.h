// Live progress of running jobs, read from rank 0's launcher (CONTRACTS.md section 2):
// GET http://<pod IP>:<port>/v1/progress with the job's bearer token. Worker pods have
// no API access; the operator polls them, within a global budget of status writes.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"
#include "mlscale/kube/rate_limiter.h"

namespace mlscale::controllers::trainingjob {

// The most of a reply that is read; a longer one is an error.
inline constexpr size_t kMaxProgressReplyBytes = 64 * 1024;

struct ProgressReading {
  nlohmann::json progress;  // {step, totalSteps, epoch, epochs, loss, ...}, or null
  nlohmann::json result;    // the trainer's result, or null
  std::string time;         // when the launcher took the reading (RFC 3339)
  bool operator==(const ProgressReading&) const = default;
};

// Reads a reply body: an object with "progress" and "result" objects (or null) and a
// "time" string. Errors name what is wrong; numbers are not checked beyond their type.
StatusOr<ProgressReading> ParseProgressReply(std::string_view body);

// One GET of the progress endpoint: connects to `address:port`, sends the bearer token,
// reads at most kMaxProgressReplyBytes, all within `deadline`. 401 is kUnauthenticated;
// other non-200 answers, connection failures and timeouts are kUnavailable. The token
// never appears in an error.
StatusOr<ProgressReading> FetchProgress(const std::string& address, int port, const std::string& token,
                                        std::chrono::milliseconds deadline);

// Polls the rank 0 of every tracked job, one job per token of a global budget (so the
// status writes the readings cause stay within it), each job at most once per
// `min_interval`. A reading that differs from the last one calls `on_change(key)`, which
// enqueues the job; the reconcile then takes Latest(key) into the status. Thread-safe;
// the poller's thread stops with the object.
class ProgressPoller {
 public:
  struct Options {
    double writes_per_second = 20;  // the budget (operator flag --status-write-qps)
    std::chrono::milliseconds min_interval{1000};
    std::chrono::milliseconds deadline{2000};
  };
  ProgressPoller(Options options, std::function<void(const std::string& key)> on_change);
  ~ProgressPoller();
  ProgressPoller(const ProgressPoller&) = delete;
  ProgressPoller& operator=(const ProgressPoller&) = delete;

  // Starts (or updates) polling `key`'s rank 0 at address:port with `token`.
  void Track(const std::string& key, const std::string& address, int port, const std::string& token);
  // Stops polling `key` and forgets its reading.
  void Untrack(const std::string& key);
  // The last reading of `key`, if any.
  std::optional<ProgressReading> Latest(const std::string& key) const;
  size_t Tracked() const;

 private:
  struct Target {
    std::string address;
    int port = 0;
    std::string token;
    std::chrono::steady_clock::time_point last_poll{};
    std::optional<ProgressReading> latest;
  };
  void Loop(std::stop_token stop);

  Options options_;
  std::function<void(const std::string&)> on_change_;
  kube::RateLimiter budget_;
  mutable std::mutex mutex_;
  std::map<std::string, Target> targets_;
  std::jthread thread_;
};

}  // namespace mlscale::controllers::trainingjob
