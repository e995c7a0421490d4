// The TrainingJob state machine as pure functions: what the worker pods say (observed
// from the informer cache), the job's status as last written, and the clock go in; the
// next status, the conditions, the pods to create or delete, and when to look again
// come out. The reconciler only reads the cache, calls Decide and carries out its plan.
//
//   Pending ──all pods created──▶ (Created) ──all running──▶ Running ──rank 0 exit 0──▶ Succeeded
//      ▲                                                       │
//      └── backoff elapsed, no pods left ◀── Restarting ◀──────┘ a worker failed (retryable),
//                                                                 was evicted, lost its node,
//                                                                 or the gang timed out
//   permanent exit code, backoffLimit exceeded, deadline, a pod that can never start ──▶ Failed
//   spec.runPolicy.suspend ──▶ Suspended (pods deleted, status kept) ──resume──▶ Pending
//
// Why restarts are of the whole group: data-parallel ranks cannot go on without a peer,
// so one failure deletes every pod; the new group resumes from the newest checkpoint.
//
// Rank 0's exit 0 decides success unless a worker failed before rank 0 finished (by the
// pods' finishedAt): then the group restarts, however late the look that sees both.
//
// Which failure decides: when one rank dies its peers lose it and exit too (our trainer
// with 2, a PyTorch script with 1), codes that alone would be permanent. So failures
// come in a wave: those that finished within kFailureWave of the first are one event;
// an eviction or a retryable exit code in the wave makes it a restart. A wave of only
// permanent codes fails the job once the group has settled (every pod finished, or
// kFailureSettle after the first failure, so a slow status update of the rank that
// really died is not missed).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/api/training_job.h"
#include "mlscale/kube/conditions.h"
#include "mlscale/kube/time_format.h"

namespace mlscale::controllers::trainingjob {

using Object = nlohmann::json;
using TimePoint = std::chrono::system_clock::time_point;

// Condition types and state names (status.state, the printer column).
inline constexpr const char* kCreated = "Created";
inline constexpr const char* kRunning = "Running";
inline constexpr const char* kRestarting = "Restarting";
inline constexpr const char* kSuspended = "Suspended";
inline constexpr const char* kSucceeded = "Succeeded";
inline constexpr const char* kFailed = "Failed";
inline constexpr const char* kPending = "Pending";

// One worker pod as the controller sees it.
struct WorkerObservation {
  enum class Phase { kPodPending, kPodRunning, kPodSucceeded, kPodFailed };
  std::int64_t rank = -1;   // from the replica-index label; -1 when missing or malformed
  std::string name;
  Phase phase = Phase::kPodPending;
  bool ready = false;
  bool deleting = false;    // metadata.deletionTimestamp set
  // Evicted, preempted or its node is gone: restarted without counting against backoffLimit.
  bool disrupted = false;
  std::optional<int> exit_code;  // the worker container's, once terminated
  // Why it is not running: a waiting reason (ErrImagePull, CreateContainerConfigError,
  // ...), a terminated reason (Error, OOMKilled) or the pod's status.reason (Evicted).
  std::string reason;
  std::string message;           // the termination message or the waiting message
  std::string pod_ip;
  bool scheduled = false;             // bound to a node (spec.nodeName set)
  std::optional<TimePoint> created;   // metadata.creationTimestamp
  std::optional<TimePoint> finished;  // the worker container's terminated.finishedAt
  bool operator==(const WorkerObservation&) const = default;
};

// Reads a pod (as cached: ProjectWorkerPod keeps what is read here). `node_exists` says
// whether the pod's spec.nodeName is still a Node (false marks a bound pod as disrupted).
WorkerObservation ObserveWorker(const Object& pod, bool node_exists);

// The pod informer's transform: replaces `pod` by the few fields ObserveWorker and the
// controller read (identity, labels, owners, deletion and creation times, spec.nodeName,
// status phase/reason/message/podIP, the Ready and DisruptionTarget conditions, the
// worker container's name and waiting/terminated state), so that
// ObserveWorker(projected) == ObserveWorker(pod) for every pod. A projected worker pod is
// ~0.6 KB of JSON instead of ~7 KB; in a packed cache (kube::InformerOptions::packed)
// it costs about that.
void ProjectWorkerPod(Object& pod);

// status.workers: the printer column reads ready/total.
struct WorkerCounts {
  std::int64_t total = 0;  // spec.replicas
  std::int64_t pending = 0, running = 0, ready = 0, succeeded = 0, failed = 0;
  bool operator==(const WorkerCounts&) const = default;
};

// The fields of status the state machine owns (conditions are set separately).
struct JobStatus {
  std::string state;              // kPending, kRunning, ... ("" before the first reconcile)
  std::string reason, message;    // why the job is in `state` (terminal and restarting states)
  std::int64_t restarts = 0;      // group restarts counted against backoffLimit
  std::int64_t disruptions = 0;   // group restarts after evictions/node loss (not counted)
  std::optional<TimePoint> start_time;       // the current run's (reset on resume)
  std::optional<TimePoint> completion_time;
  std::optional<TimePoint> group_created_time;  // when the current group's pods were first created
  std::optional<TimePoint> restart_time;        // when the current restart began (backoff from here)
  WorkerCounts workers;
  Object progress;  // rank 0's last reading (null: none)
  Object result;    // the trainer's result (null: none)
};

// Reads status as written by WriteStatus (unknown or malformed fields read as absent).
JobStatus ReadStatus(const Object& status);
// Writes the owned fields into `status` (other fields, e.g. conditions, are kept).
void WriteStatus(const JobStatus& job_status, Object& status);

inline constexpr std::chrono::seconds kFailureWave{2};   // finishedAt has 1 s resolution
inline constexpr std::chrono::seconds kFailureSettle{5};

// Knobs of the operator (flags), not of a job.
struct DecideOptions {
  std::chrono::milliseconds restart_backoff{10'000};      // before the first restart; doubles
  std::chrono::milliseconds max_restart_backoff{360'000};  // cap
  // How long a pod may wait on something only the user can fix (an image that cannot be
  // pulled, a missing Secret or ConfigMap) before the job fails with the pod's reason.
  std::chrono::milliseconds start_timeout{120'000};
};

struct Event {
  std::string type;  // "Normal" or "Warning"
  std::string reason;
  std::string message;
};

struct Decision {
  JobStatus status;                          // the next status
  std::vector<kube::Condition> conditions;   // to set (SetCondition keeps unchanged ones)
  std::vector<std::int64_t> create_ranks;    // pods to create (in rank order)
  std::vector<std::string> delete_pods;      // pod names to delete
  bool delete_job = false;                   // ttlSecondsAfterFinished elapsed
  std::optional<std::chrono::milliseconds> requeue_after;  // a timer to look again at
  std::vector<Event> events;                 // transitions, to record once the status is written
};

// What holds once every pod of decision.create_ranks was created: they count as pending
// workers and the Created condition is True. The controller leaves the status to the look
// that sees the pods, which decides the same (Decide takes the group's times from the pods
// when the status has none). One event says how many pods were made: now, when `previous`
// (the status written last) already records the group (the rest of a creation that failed
// midway); for a group no status records yet, Decide says it in the look that records it,
// with that look's status write, so that under a backlog no event is written in front of
// other jobs' pods. (Leaving Restarting is written before creating: controller.h.)
void MarkPodsCreated(Decision& decision, const JobStatus& previous);

// One step of the state machine. `workers` are the job's pods (any order; pods of ranks
// >= replicas are deleted); `previous` is the status last written.
Decision Decide(const api::TrainingJobSpec& spec, const JobStatus& previous,
                const std::vector<WorkerObservation>& workers, TimePoint now, const DecideOptions& options);

// The delay before restart number `attempt` (1-based): restart_backoff * 2^(attempt-1), capped.
std::chrono::milliseconds RestartBackoff(std::int64_t attempt, const DecideOptions& options);

// RFC 3339 ("2026-01-02T03:04:05Z", fractional seconds allowed) <-> time points; parsing
// is kube's (one parser of Kubernetes timestamps).
using kube::ParseTime;
using kube::FormatTime;

}  // namespace mlscale::controllers::trainingjob
