// Autoscaling off the reconcile path: a poller thread reads every router's /v1/stats once a
// second (notes/CONTRACTS.md), sums the revisions' load over the routers, feeds one
// Autoscaler (autoscaler.h) per revision and, when a revision's decision changes, enqueues its
// InferenceService; the reconcile then writes Latest()'s replicas to the Deployments.
// A revision at zero replicas with requests queued in a router is taken to >= 1 at once
// (scale from zero), without waiting for the decider; a revision with no ready replica is never
// scaled below the replicas it is starting.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mlscale/api/inference_service.h"
#include "mlscale/common/status.h"
#include "mlscale/controllers/inference/autoscaler.h"
#include "mlscale/controllers/inference/children.h"

namespace mlscale::controllers::inference {

// The most of a stats reply read; a longer one is an error.
inline constexpr std::size_t kMaxStatsReplyBytes = 256 * 1024;

struct RevisionStats {
  std::int64_t in_flight = 0;
  double average_concurrency = 0;
  double requests_per_second = 0;
  std::int64_t queued = 0;
  std::int64_t ready_endpoints = 0;
  bool operator==(const RevisionStats&) const = default;
};
struct RouterStats {
  std::map<std::string, RevisionStats> revisions;
  std::int64_t time_unix_ms = 0;
};

// Reads a /v1/stats body. Errors name what is wrong; negative or non-finite numbers are errors.
StatusOr<RouterStats> ParseRouterStats(std::string_view body);

// The autoscaler settings of a spec (Knative's names and defaults; autoscaler.h).
::mlscale::inference::AutoscalerSettings SettingsOf(const api::AutoscalingSpec& spec);

// The metric the autoscaler records for a revision: averageConcurrency (the router counts the
// requests it holds in it: demand too) for concurrency, requestsPerSecond for rps.
double Observation(const RevisionStats& stats, const std::string& metric);

class ScalingPoller {
 public:
  struct Options {
    std::chrono::milliseconds interval{1000};
    std::chrono::milliseconds deadline{500};  // per router
    int router_port = kRouterMetricsPort;
  };
  struct RevisionInput {
    std::string name;
    std::int32_t ready = 0;     // ready replicas now
    std::int32_t current = 0;   // replicas the Deployment asks for now
  };
  struct Decision {
    std::int32_t replicas = 0;
    bool panicking = false;
    double observed = 0;  // the last observation (metric unit), summed over routers
  };

  ScalingPoller(Options options, std::function<void(const std::string& key)> on_change);
  ~ScalingPoller();
  ScalingPoller(const ScalingPoller&) = delete;
  ScalingPoller& operator=(const ScalingPoller&) = delete;

  // Starts or updates polling for `key`: its routers (pod IPs; port Options::router_port), its
  // autoscaling settings and its revisions. Revisions no longer listed are forgotten.
  void Track(const std::string& key, std::vector<std::string> routers, const api::AutoscalingSpec& spec,
             std::vector<RevisionInput> revisions);
  void Untrack(const std::string& key);
  // The latest decision for `key`'s revision, if one was made.
  std::optional<Decision> Latest(const std::string& key, const std::string& revision) const;

  // One poll of every tracked service at `now` (what the thread does each interval; public
  // for tests, which give it routers of their own).
  void PollOnce(std::chrono::steady_clock::time_point now);

 private:
  struct Scaled {
    std::unique_ptr<::mlscale::inference::Autoscaler> autoscaler;
    RevisionInput input;
    std::optional<Decision> decision;
  };
  struct Target {
    std::vector<std::string> routers;
    api::AutoscalingSpec spec;
    std::map<std::string, Scaled> revisions;
  };
  void Loop(std::stop_token stop);

  Options options_;
  std::function<void(const std::string&)> on_change_;
  mutable std::mutex mutex_;
  std::map<std::string, Target> targets_;
  std::chrono::steady_clock::time_point epoch_ = std::chrono::steady_clock::now();
  std::jthread thread_;  // last: started after everything it uses
};

}  // namespace mlscale::controllers::inference
