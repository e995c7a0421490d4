// What an InferenceService should look like now, decided by pure functions from what was
// observed: replicas per revision, the traffic split the routers apply, which revisions
// drain and go, and the status with its conditions. The reconciler only acts on the plan.
//
// Rollout: a revision is *routable* once it has had a ready replica (it stays so when the
// autoscaler takes it to zero: the router then holds requests and asks for a replica). The
// targets (the default revision and the canary) get their percent of the traffic when
// routable; the share of one that is not yet routable stays with the revisions that had the
// traffic before, so a model change moves traffic only once the new revision is ready. A
// revision without traffic is retired: kept (at its replicas) for rollout.oldRevisionGraceSeconds
// so every router has switched, then deleted (its servers drain on SIGTERM).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/api/inference_service.h"
#include "mlscale/controllers/inference/children.h"
#include "mlscale/kube/conditions.h"

namespace mlscale::controllers::inference {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

inline constexpr const char* kModelLoaded = "ModelLoaded";
inline constexpr const char* kReady = "Ready";
inline constexpr const char* kRolloutInProgress = "RolloutInProgress";

// One revision's Deployment as observed (from the cache).
struct RevisionObservation {
  std::string name;
  std::string role;                // its kRoleLabel
  std::int32_t spec_replicas = 0;  // what the Deployment asks for
  std::int32_t replicas = 0;       // pods (status.replicas)
  std::int32_t ready_replicas = 0;
  std::string failure;             // a server pod's crash ("exit 1: <message>"), "" when none
  // The model version its ready pods report serving (served_version.h), "" when none said yet.
  std::string served_version;
};

// A revision the spec asks for, with its share and the replicas it should have.
struct TargetRevision {
  Revision revision;
  std::int64_t percent = 0;
  std::int32_t replicas = 0;
};

struct TrafficEntry {
  std::string revision;
  std::int64_t percent = 0;
  bool operator==(const TrafficEntry&) const = default;
};

// What the controller remembers per revision in status.revisions.
struct RevisionRecord {
  std::string name;
  std::string role;
  std::string model;         // ResolvedModel::description
  std::string model_version; // what its pods last reported serving; "" until one did
  bool ever_ready = false;
  std::optional<TimePoint> created;  // when the controller first asked for it
  std::optional<TimePoint> retired;  // when it lost its traffic
};

// The autoscaler's view, for the status (absent when autoscaling is off or nothing observed).
struct ObservedMetric {
  std::string name;  // "concurrency" | "rps"
  double value = 0;  // summed over the revisions
};

struct PlanInput {
  const ServiceRef* service = nullptr;
  // The targets; empty when a model source cannot be resolved (then nothing is created or
  // deleted: what serves keeps serving) and `unresolved` says why.
  std::vector<TargetRevision> targets;
  std::optional<Unresolved> unresolved;
  std::vector<RevisionObservation> revisions;  // every revision Deployment of the service
  std::int32_t router_ready = 0;
  std::vector<TrafficEntry> traffic;          // status.traffic as read
  std::vector<RevisionRecord> records;        // status.revisions as read
  std::optional<ObservedMetric> metric;
  TimePoint now;
};

struct Plan {
  std::vector<TrafficEntry> traffic;   // sums to 100 (or empty: nothing to route to yet)
  // Replicas to write per revision Deployment to keep or create (targets at their replicas,
  // retiring ones as they are).
  std::map<std::string, std::int32_t> replicas;
  std::vector<std::string> delete_revisions;  // Deployment and Service of each
  std::vector<RevisionRecord> records;
  std::vector<kube::Condition> conditions;  // ModelLoaded, Ready, RolloutInProgress
  // Normal/Warning events: {type, reason, message}.
  struct Event {
    std::string type, reason, message;
  };
  std::vector<Event> events;
  std::optional<std::chrono::milliseconds> requeue_after;  // a grace or deadline to look at again
};

Plan PlanService(const PlanInput& input);

// Splits `total` replicas between the default revision and a canary with `canary_percent` of
// the traffic: the canary gets round(total * percent / 100), at least 1 when its percent is
// above 0 and total is; the default the rest, at least 1 when its percent is above 0.
std::pair<std::int32_t, std::int32_t> SplitReplicas(std::int64_t total, std::int64_t canary_percent);

// Moves `percent` points over `entries` in proportion to their percents (largest remainder),
// so integer percents still sum as before.
std::vector<TrafficEntry> Redistribute(const std::vector<TrafficEntry>& entries, std::int64_t percent);

// A server pod's container that keeps failing, with its last words (the termination message,
// the log's tail under FallbackToLogsOnError), e.g. "server container CrashLoopBackOff (exit 1):
// mlscale-serve: ... is not a folder"; "" when none fails. At most ~600 bytes.
std::string ServerPodFailure(const Object& pod);

// status.traffic / status.revisions in and out of their JSON forms (lenient on input: an
// entry of the wrong shape is skipped).
std::vector<TrafficEntry> ReadTraffic(const Object& status);
std::vector<RevisionRecord> ReadRecords(const Object& status);
// The whole status (without conditions and observedGeneration, which the reconciler merges):
// url, replicas, readyReplicas, desiredReplicas, readyDesired, selector, traffic,
// canaryTrafficPercent, latestReadyRevision, observedMetric, revisions.
Object StatusJson(const PlanInput& input, const Plan& plan);

}  // namespace mlscale::controllers::inference
