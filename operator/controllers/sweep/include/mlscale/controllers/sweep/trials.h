// The trials of a HyperparameterSweep as pure functions: each trial is a child
// TrainingJob, and everything the sweep knows about it is read back from that object, so
// a restarted operator rebuilds the whole history from its cache and the sweep's status
// stays small.
//
//   metadata.name                         kube::ChildName(<sweep>, "<index>")
//   labels mlscale.io/sweep-name          the sweep
//          mlscale.io/trial-index         the index (0, 1, ...; never reused)
//   annotations mlscale.io/assignment     the parameters' values, JSON ({"lr": 0.01, ...})
//               mlscale.io/objective-values
//                                         [[step, objective], ...]: the readings early
//                                         stopping judged, recorded by the sweep controller
//                                         from the trial's live status.progress (the
//                                         objective metric of its latest evaluation,
//                                         api::ObjectiveReading; at most kMaxRecordedValues)
//               mlscale.io/early-stopped  why the sweep stopped it (it also sets
//                                         spec.runPolicy.suspend: the TrainingJob deletes its
//                                         pods, the trainer checkpoints on SIGTERM, the job's
//                                         status and checkpoint stay)
//   ownerReferences                       the sweep (controller: true)
//   status (the TrainingJob controller's) state, result.metrics.<objective>, progress
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/api/sweep.h"
#include "mlscale/common/status.h"
#include "mlscale/hpo/trial.h"

namespace mlscale::controllers::sweep {

using Object = nlohmann::json;
using TimePoint = std::chrono::system_clock::time_point;

inline constexpr const char* kSweepNameLabel = "mlscale.io/sweep-name";
inline constexpr const char* kTrialIndexLabel = "mlscale.io/trial-index";
inline constexpr const char* kAssignmentAnnotation = "mlscale.io/assignment";
// (Before the readings were the objective they were training losses, under
// "mlscale.io/intermediate-values": a new name, so those are not read as objectives.)
inline constexpr const char* kIntermediateAnnotation = "mlscale.io/objective-values";
inline constexpr const char* kEarlyStoppedAnnotation = "mlscale.io/early-stopped";
// Recorded readings per trial: enough for ASHA's rungs and the median rule's curve, few
// enough that a trial's annotations stay under a few KiB.
inline constexpr std::size_t kMaxRecordedValues = 64;

enum class TrialPhase {
  kActive,        // not finished: pods pending, running or restarting
  kStopping,      // early stop requested; its pods are still going away
  kSucceeded,     // finished with the objective in its result
  kFailed,        // the job failed, or its result lacks the objective
  kEarlyStopped,  // stopped by the early-stopping rule (or because the sweep ended)
};
std::string_view TrialPhaseName(TrialPhase phase);  // "Active", ..., "EarlyStopped"

struct Trial {
  std::int64_t index = -1;
  std::string name;
  std::string uid;
  std::optional<hpo::Assignment> assignment;  // nullopt: the annotation is unreadable
  TrialPhase phase = TrialPhase::kActive;
  std::optional<double> value;  // kSucceeded: the objective
  // Recorded readings, then the live one when it is newer (steps strictly increase).
  std::vector<hpo::IntermediateValue> intermediate;
  std::size_t recorded = 0;     // how many of `intermediate` the annotation holds
  std::int64_t total_steps = 0;  // from the live progress (0: unknown)
  std::string message;           // kFailed / kEarlyStopped / kStopping: why
  std::optional<TimePoint> start_time, completion_time;  // the TrainingJob's
};

// Reads one child TrainingJob (as cached). Never fails: what cannot be read is said in
// the result (an unreadable assignment, index or objective makes a failed trial whose
// message names the field), so one damaged child cannot stop the sweep.
Trial ObserveTrial(const api::SweepSpec& spec, const Object& job);

// The history the sampler and the early-stopping rule see, in index order: active and
// stopping trials pending, succeeded completed, failed failed, early-stopped stopped.
// Trials whose assignment could not be read (nullopt) are left out. With
// `with_intermediate` false the readings are dropped (the samplers do not use them), so
// the history, and thus Suggest's answer, changes only when a trial starts or ends.
std::vector<hpo::Trial> SamplerHistory(const std::vector<Trial>& trials,
                                       bool with_intermediate);

// The child TrainingJob of trial `index` with `assignment`: name, labels, annotations,
// owner reference to `sweep_object` (the cached sweep: apiVersion, kind, name, uid) and
// the substituted template, checked by the TrainingJob parser. Errors name the
// template's field.
StatusOr<Object> BuildTrial(const api::HyperparameterSweep& sweep, const Object& sweep_object, std::int64_t index,
                            const hpo::Assignment& assignment, const api::TrainerValidator& validate_trainer);

// The name of trial `index`: kube::ChildName(sweep, "<index>") ("<sweep>-<index>" when it fits).
std::string TrialJobName(const std::string& sweep_name, std::int64_t index);

// The merge patch that stops a trial early: the annotation with `message` and
// spec.runPolicy.suspend = true.
Object StopPatch(const std::string& message);
// The merge patch that records `values` (the trial's readings to keep) in its annotation.
Object RecordPatch(const std::vector<hpo::IntermediateValue>& values);
// The readings to record for `trial` when its live reading should be kept, thinned to at
// most kMaxRecordedValues (every other one dropped, the last kept); nullopt when nothing
// new is worth a write (no new reading, or it is closer than totalSteps/kMaxRecordedValues
// steps to the last one recorded).
std::optional<std::vector<hpo::IntermediateValue>> ValuesToRecord(const Trial& trial);

}  // namespace mlscale::controllers::sweep
