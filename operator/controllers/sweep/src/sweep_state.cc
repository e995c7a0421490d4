#include "mlscale/controllers/sweep/sweep_state.h"

#include <algorithm>
#include <cstdio>

#include "mlscale/controllers/trainingjob/job_state.h"
#include "mlscale/hpo/early_stopping.h"
#include "mlscale/hpo/json.h"

namespace mlscale::controllers::sweep {
namespace {

std::int64_t IntAt(const Object& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_number_integer()) return 0;
  return object[key].get<std::int64_t>();
}

std::string StringAt(const Object& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) return "";
  return object[key].get<std::string>();
}

std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

bool Better(hpo::Direction direction, double a, double b) {
  return direction == hpo::Direction::kMaximize ? a > b : a < b;
}

bool Terminal(const std::string& state) { return state == kStateSucceeded || state == kStateFailed; }

// The conditions of a state: Running while it runs; then Running False and the outcome True.
std::vector<kube::Condition> ConditionsFor(const SweepStatus& status) {
  using kube::ConditionStatus;
  if (!Terminal(status.state)) {
    return {{kStateRunning, ConditionStatus::kTrue, "TrialsRunning", status.message}};
  }
  return {{kStateRunning, ConditionStatus::kFalse, status.reason, status.message},
          {status.state, ConditionStatus::kTrue, status.reason, status.message}};
}

}  // namespace

SweepStatus ReadStatus(const Object& status) {
  SweepStatus read;
  if (!status.is_object()) return read;
  read.state = StringAt(status, "state");
  read.reason = StringAt(status, "reason");
  read.message = StringAt(status, "message");
  const Object trials = status.value("trials", Object::object());
  read.trials = {IntAt(trials, "created"), IntAt(trials, "running"), IntAt(trials, "succeeded"),
                 IntAt(trials, "failed"), IntAt(trials, "earlyStopped")};
  const Object best = status.value("bestTrial", Object::object());
  if (best.is_object() && best.contains("value") && best["value"].is_number()) {
    read.best = BestTrial{StringAt(best, "name"), best.value("assignment", Object::object()), best["value"].get<double>()};
  }
  read.start_time = trainingjob::ParseTime(StringAt(status, "startTime"));
  read.completion_time = trainingjob::ParseTime(StringAt(status, "completionTime"));
  return read;
}

void WriteStatus(const SweepStatus& sweep_status, std::int64_t max_trials, Object& status) {
  if (!status.is_object()) status = Object::object();
  auto set_or_erase = [&status](const char* key, const std::string& value) {
    if (value.empty()) {
      status.erase(key);
    } else {
      status[key] = value;
    }
  };
  set_or_erase("state", sweep_status.state);
  set_or_erase("reason", sweep_status.reason);
  set_or_erase("message", sweep_status.message);
  const TrialCounts& t = sweep_status.trials;
  status["trials"] = {{"created", t.created}, {"running", t.running}, {"succeeded", t.succeeded},
                      {"failed", t.failed},   {"earlyStopped", t.early_stopped}};
  status["trialsDone"] = std::to_string(t.succeeded + t.failed + t.early_stopped) + "/" + std::to_string(max_trials);
  if (sweep_status.best) {
    status["bestTrial"] = {{"name", sweep_status.best->name},
                           {"assignment", sweep_status.best->assignment},
                           {"value", sweep_status.best->value}};
  } else {
    status.erase("bestTrial");
  }
  set_or_erase("startTime", sweep_status.start_time ? trainingjob::FormatTime(*sweep_status.start_time) : "");
  set_or_erase("completionTime",
               sweep_status.completion_time ? trainingjob::FormatTime(*sweep_status.completion_time) : "");
}

Plan Decide(const api::SweepSpec& spec, const SweepStatus& previous, const std::vector<Trial>& trials,
            bool exhausted, TimePoint now) {
  Plan plan;
  SweepStatus& status = plan.status;
  status = previous;
  if (previous.reason == kInvalidSpec) status = SweepStatus{};  // the spec was fixed: start over
  if (!status.start_time) status.start_time = now;

  TrialCounts counts;
  const Trial* best = nullptr;
  std::vector<const Trial*> active;
  for (const Trial& trial : trials) {
    ++counts.created;
    plan.next_index = std::max(plan.next_index, trial.index + 1);
    switch (trial.phase) {
      case TrialPhase::kActive:
        active.push_back(&trial);
        ++counts.running;
        break;
      case TrialPhase::kStopping: ++counts.running; break;
      case TrialPhase::kSucceeded:
        ++counts.succeeded;
        if (best == nullptr || Better(spec.objective.direction, *trial.value, *best->value) ||
            (*trial.value == *best->value && trial.index < best->index)) {
          best = &trial;
        }
        break;
      case TrialPhase::kFailed: ++counts.failed; break;
      case TrialPhase::kEarlyStopped: ++counts.early_stopped; break;
    }
  }
  status.trials = counts;
  if (best != nullptr) {
    status.best = BestTrial{best->name, hpo::AssignmentToJson(*best->assignment), *best->value};
  } else {
    status.best.reset();
  }

  if (!Terminal(status.state)) {
    auto finish = [&](const char* state, const char* reason, std::string message) {
      status.state = state;
      status.reason = reason;
      status.message = std::move(message);
      status.completion_time = now;
      plan.events.push_back({state == kStateFailed ? "Warning" : "Normal", reason, status.message});
    };
    const std::int64_t unfinished = counts.running;
    if (best != nullptr && spec.objective.GoalReached(*best->value)) {
      finish(kStateSucceeded, kGoalReached,
             "trial " + best->name + " reached " + spec.objective.metric + " " + Number(*best->value) + " (goal " +
                 Number(*spec.objective.goal) + ")");
    } else if (counts.failed > spec.max_failed_trials) {
      finish(kStateFailed, kTooManyFailedTrials,
             std::to_string(counts.failed) + " trials failed (spec.maxFailedTrials is " +
                 std::to_string(spec.max_failed_trials) + ")");
    } else if (plan.next_index >= spec.max_trials && unfinished == 0) {
      finish(kStateSucceeded, kMaxTrialsReached, "all " + std::to_string(spec.max_trials) + " trials finished");
    } else if (exhausted && unfinished == 0) {
      finish(kStateSucceeded, kSearchSpaceExhausted,
             "every assignment of the search space was tried (" + std::to_string(counts.created) + " trials)");
    } else {
      status.state = kStateRunning;
      status.reason.clear();
      status.message = std::to_string(counts.running) + " trials running, " +
                       std::to_string(counts.succeeded + counts.failed + counts.early_stopped) + " of " +
                       std::to_string(spec.max_trials) + " finished";
    }
  }
  plan.conditions = ConditionsFor(status);

  if (Terminal(status.state)) {
    // Nothing more is learned from the trials still going: stop them as early stopping does.
    for (const Trial* trial : active) {
      plan.stop.push_back({trial->name, "the sweep finished (" + status.reason + ")"});
    }
    return plan;
  }
  if (!exhausted) {
    plan.create = std::clamp<std::int64_t>(
        std::min(spec.parallel_trials - counts.running, spec.max_trials - plan.next_index), 0, spec.max_trials);
  }
  if (spec.early_stopping.rule == hpo::EarlyStoppingRule::kNone) return plan;
  std::vector<hpo::Trial> history;  // built once, only when some trial has a reading to judge
  for (const Trial* trial : active) {
    if (trial->intermediate.empty() || !trial->assignment) continue;
    if (std::optional<std::vector<hpo::IntermediateValue>> values = ValuesToRecord(*trial)) {
      plan.record.push_back({trial->name, std::move(*values)});
    }
    if (history.empty()) history = SamplerHistory(trials, /*with_intermediate=*/true);
    // The intermediate values are the objective's (trials.h): judged in its direction.
    StatusOr<hpo::StopDecision> decision =
        hpo::DecideEarlyStop(spec.early_stopping, spec.objective.direction, history, trial->name);
    if (decision.ok() && *decision == hpo::StopDecision::kStop) {
      const hpo::IntermediateValue& at = trial->intermediate.back();
      plan.stop.push_back({trial->name, std::string(api::EarlyStoppingRuleName(spec.early_stopping.rule)) +
                                            " rule at step " + std::to_string(at.step) + " (" + spec.objective.metric +
                                            " " + Number(at.value) + ")"});
    }
  }
  return plan;
}

Plan InvalidSpec(const SweepStatus& previous, const std::string& message, TimePoint now) {
  Plan plan;
  plan.status = previous;
  SweepStatus& status = plan.status;
  if (status.state != kStateFailed || status.reason != kInvalidSpec || status.message != message) {
    plan.events.push_back({"Warning", kInvalidSpec, message});
    status.completion_time = now;
  }
  status.state = kStateFailed;
  status.reason = kInvalidSpec;
  status.message = message;
  plan.conditions = ConditionsFor(status);
  return plan;
}

}  // namespace mlscale::controllers::sweep
