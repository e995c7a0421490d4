// The HyperparameterSweep's decisions as pure functions: the spec, the status last
// written and the trials (read from the child TrainingJobs, trials.h) go in; the next
// status, its conditions, how many trials to create, which to stop early and which
// readings to record come out. The reconcile (controller.h) only reads the cache, asks
// for suggestions, calls Decide and carries out the plan.
//
//   Running ──best trial reaches spec.objective.goal────────▶ Succeeded/GoalReached
//      │    ──maxTrials created and none active──────────────▶ Succeeded/MaxTrialsReached
//      │    ──the sampler has no unused assignment, none active▶ Succeeded/SearchSpaceExhausted
//      └────more than maxFailedTrials failed─────────────────▶ Failed/TooManyFailedTrials
//   a spec the parser refuses ─────────────────────────────────▶ Failed/InvalidSpec (message names the field)
//
// A finished sweep stops its remaining active trials (as early stopping does) and creates
// no more. Exactly maxTrials trials ever exist: the next index is one past the highest
// seen, and new trials fill at most parallelTrials - active slots.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mlscale/api/sweep.h"
#include "mlscale/controllers/sweep/trials.h"
#include "mlscale/kube/conditions.h"

namespace mlscale::controllers::sweep {

// status.state values and condition types.
inline constexpr const char* kStateRunning = "Running";
inline constexpr const char* kStateSucceeded = "Succeeded";
inline constexpr const char* kStateFailed = "Failed";
// Reasons.
inline constexpr const char* kGoalReached = "GoalReached";
inline constexpr const char* kMaxTrialsReached = "MaxTrialsReached";
inline constexpr const char* kSearchSpaceExhausted = "SearchSpaceExhausted";
inline constexpr const char* kTooManyFailedTrials = "TooManyFailedTrials";
inline constexpr const char* kInvalidSpec = "InvalidSpec";

struct TrialCounts {
  std::int64_t created = 0;  // trials that exist (indices 0..created-1 unless one was deleted)
  std::int64_t running = 0;  // active or stopping
  std::int64_t succeeded = 0, failed = 0, early_stopped = 0;
  bool operator==(const TrialCounts&) const = default;
};

struct BestTrial {
  std::string name;
  Object assignment;  // hpo::AssignmentToJson
  double value = 0;
  bool operator==(const BestTrial&) const = default;
};

struct SweepStatus {
  std::string state;  // "" (never reconciled), kStateRunning, kStateSucceeded, kStateFailed
  std::string reason, message;
  TrialCounts trials;
  std::optional<BestTrial> best;
  std::optional<TimePoint> start_time, completion_time;
};

// Reads status as written by WriteStatus (unknown or malformed fields read as absent).
SweepStatus ReadStatus(const Object& status);
// Writes the owned fields (and trialsDone "<finished>/<maxTrials>") into `status`; other
// fields (conditions, observedGeneration) are kept.
void WriteStatus(const SweepStatus& sweep_status, std::int64_t max_trials, Object& status);

struct TrialEvent {
  std::string type;  // "Normal" or "Warning"
  std::string reason;
  std::string message;
};

struct StopRequest {
  std::string trial;    // the TrainingJob's name
  std::string message;  // for the annotation and the event
};

struct RecordRequest {
  std::string trial;
  std::vector<hpo::IntermediateValue> values;
};

struct Plan {
  SweepStatus status;
  std::vector<kube::Condition> conditions;
  std::int64_t create = 0;      // new trials wanted now, indices next_index, next_index + 1, ...
  std::int64_t next_index = 0;
  std::vector<StopRequest> stop;
  std::vector<RecordRequest> record;
  std::vector<TrialEvent> events;  // the sweep's own transitions (trial events: the controller)
};

// One step. `exhausted` says the sampler returned no assignment for the current history
// (the caller learns it from Suggest and calls again). `now` stamps start/completion.
Plan Decide(const api::SweepSpec& spec, const SweepStatus& previous, const std::vector<Trial>& trials,
            bool exhausted, TimePoint now);

// The status of a sweep whose spec the parser refused (`message` names the field).
Plan InvalidSpec(const SweepStatus& previous, const std::string& message, TimePoint now);

}  // namespace mlscale::controllers::sweep
