// The request router of an InferenceService: every request on its port goes to one ready
// model-server pod of one revision.
//
//   - revision: by the exact canary percent of `status.traffic` (WeightedSplitter);
//   - pod: least outstanding requests, power of two choices (balancer.h); terminating pods
//     that still serve are used only while a revision has no ready pod;
//   - retry: a request that got no response byte (refused, reset, closed: a pod going away)
//     is sent again to another pod, up to `max_attempts` sends within its deadline; one that
//     got any response byte is never resent;
//   - hold: while the chosen revision has no pod to send to (starting, or scaled to zero),
//     the request waits in the revision's bounded queue, shown as `queued` to the
//     autoscaler; 503 with an error body when the queue is full or `queue_timeout` passes.
//
// Answers the router gives itself (JSON `{"error": "..."}`): 400/405 for requests it will
// not forward, 503 queue full / timed out / no pod answered, 502 when a pod answered
// something that is not a valid HTTP response (or too large), 504 when the deadline passed.
// Forwarded answers carry `x-mlscale-revision` and, when the request was held,
// `x-mlscale-queued-ms`.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/http/server.h"
#include "mlscale/kube/metrics.h"
#include "mlscale/router/balancer.h"
#include "mlscale/router/endpoints.h"
#include "mlscale/router/stats_window.h"
#include "mlscale/router/traffic_split.h"
#include "mlscale/router/upstream.h"

namespace mlscale::router {

struct RouterOptions {
  size_t queue_limit = 1000;                       // held requests per revision
  std::chrono::milliseconds queue_timeout{60'000};  // longest hold
  std::chrono::milliseconds request_timeout{60'000};  // arrival -> response, hold included
  int max_attempts = 5;                            // sends of one request (first + retries)
  std::chrono::milliseconds retry_backoff{20};     // doubled per round once every pod was tried
  std::chrono::milliseconds stats_window{1000};    // averageConcurrency, requestsPerSecond
  uint64_t seed = std::random_device{}();
};

// A request the router refuses to forward (400/405 with an error body), or nullopt.
std::optional<http::Response> RejectRequest(const http::Request& request);

// The request as sent to a pod: hop-by-hop headers (and those the Connection header
// names) removed, X-Forwarded-For extended with the client's address. Takes the request's
// strings (the body is not copied).
UpstreamRequest ToUpstreamRequest(http::Request&& request, Clock::time_point deadline);

// The client's answer for a finished exchange (see the file comment for the codes).
// `attempts` and `revision` go into error messages.
http::Response ToClientResponse(UpstreamResult&& result, const std::string& revision, int attempts);

// `{"error": message}` with `message` JSON-escaped.
std::string ErrorBody(const std::string& message);

class Scheduler;

class Router {
 public:
  // `metrics` must outlive the router.
  Router(std::unique_ptr<UpstreamClient> upstream, kube::Metrics& metrics, RouterOptions options);
  // Answers every held request 503, stops the timers, then the UpstreamClient (requests
  // still in flight to pods get 503 or, when dropped with it, the Responder's 500). Call
  // it once the server no longer calls Handle (after its Drain or Stop).
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // The http::Handler: never blocks.
  void Handle(http::Request&& request, http::Responder responder);

  // The pods by revision now (from the EndpointSlices): held requests of revisions that
  // gained a pod are sent.
  void SetEndpoints(const std::map<std::string, RevisionEndpoints>& revisions);
  // The traffic split now (from status.traffic): held requests of revisions that lost
  // their traffic are assigned again.
  void SetTraffic(std::vector<TrafficTarget> targets);

  // The /v1/stats document (see README.md).
  nlohmann::json Stats();
  // Prometheus text: the stats as gauges plus the registry's counters and histograms.
  std::string RenderMetrics();

  // Requests held now, all revisions.
  int64_t Queued();

 private:
  struct Call;
  struct RevisionState;
  // What to do once the lock is released (sending and answering call out of the router).
  struct Effects;

  RevisionState& StateLocked(const std::string& revision);
  // Sends `call` to a pod of its revision, or schedules a retry round, or holds it.
  void RouteLocked(const std::shared_ptr<Call>& call, Clock::time_point now, Effects& effects);
  void ReplyLocked(const std::shared_ptr<Call>& call, http::Response response, Effects& effects);
  void ExpireQueued(const std::shared_ptr<Call>& call);
  void RetryRound(const std::shared_ptr<Call>& call);
  void OnUpstreamDone(const std::shared_ptr<Call>& call, const UpstreamPtr& upstream, UpstreamResult&& result);
  bool HasTrafficLocked(const std::string& revision) const;
  void Apply(Effects& effects);
  void PruneLocked();

  std::unique_ptr<UpstreamClient> upstream_;
  kube::Metrics& metrics_;
  const RouterOptions options_;

  std::mutex mutex_;
  bool stopping_ = false;  // set by the destructor: nothing more is sent
  std::mt19937_64 random_;
  WeightedSplitter splitter_;
  std::map<std::string, std::unique_ptr<RevisionState>> revisions_;
  std::set<std::string> reported_;  // revisions that ever had gauges (set to 0 once gone)
  std::unique_ptr<Scheduler> scheduler_;  // last: its thread stops before the rest goes
};

}  // namespace mlscale::router
