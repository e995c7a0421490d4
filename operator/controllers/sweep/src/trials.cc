#include "mlscale/controllers/sweep/trials.h"

#include <charconv>
#include <cmath>

#include "mlscale/controllers/trainingjob/job_state.h"
#include "mlscale/hpo/json.h"
#include "mlscale/kube/names.h"
#include "mlscale/kube/objects.h"

namespace mlscale::controllers::sweep {
namespace {

// The member `key` of `object` when it is an object holding it; nullptr otherwise.
const Object* Member(const Object& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string StringMember(const Object& object, const char* key) {
  const Object* value = Member(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : "";
}

std::optional<TimePoint> TimeMember(const Object& status, const char* key) {
  return trainingjob::ParseTime(StringMember(status, key));
}

// [[step, value], ...] with strictly increasing integer steps and finite values; what
// does not fit is dropped from there on (the annotation is ours, but anyone can edit it).
std::vector<hpo::IntermediateValue> ParseRecorded(const std::string& text) {
  std::vector<hpo::IntermediateValue> values;
  if (text.empty()) return values;
  Object parsed = Object::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_array()) return values;
  for (const Object& item : parsed) {
    if (!item.is_array() || item.size() != 2 || !item[0].is_number_integer() || !item[1].is_number()) break;
    const std::int64_t step = item[0].get<std::int64_t>();
    const double value = item[1].get<double>();
    if (!std::isfinite(value) || (!values.empty() && step <= values.back().step)) break;
    values.push_back({step, value});
  }
  return values;
}

}  // namespace

std::string_view TrialPhaseName(TrialPhase phase) {
  switch (phase) {
    case TrialPhase::kActive: return "Active";
    case TrialPhase::kStopping: return "Stopping";
    case TrialPhase::kSucceeded: return "Succeeded";
    case TrialPhase::kFailed: return "Failed";
    case TrialPhase::kEarlyStopped: return "EarlyStopped";
  }
  return "Active";
}

Trial ObserveTrial(const api::SweepSpec& spec, const Object& job) {
  Trial trial;
  trial.name = kube::NameOf(job);
  trial.uid = kube::UidOf(job);
  const Object empty = Object::object();
  const Object* metadata = Member(job, "metadata");
  const Object& labels = metadata && Member(*metadata, "labels") ? (*metadata)["labels"] : empty;
  const Object& annotations = metadata && Member(*metadata, "annotations") ? (*metadata)["annotations"] : empty;
  const Object* status_member = Member(job, "status");
  const Object& status = status_member != nullptr && status_member->is_object() ? *status_member : empty;
  trial.start_time = TimeMember(status, "startTime");
  trial.completion_time = TimeMember(status, "completionTime");

  auto fail = [&trial](std::string message) {
    trial.phase = TrialPhase::kFailed;
    trial.message = std::move(message);
    return trial;
  };
  const std::string index_text = StringMember(labels, kTrialIndexLabel);
  std::int64_t index = -1;
  auto [end, error] = std::from_chars(index_text.data(), index_text.data() + index_text.size(), index);
  if (index_text.empty() || error != std::errc() || end != index_text.data() + index_text.size() || index < 0) {
    return fail(std::string("metadata.labels.") + kTrialIndexLabel + ": not a trial index (\"" + index_text + "\")");
  }
  trial.index = index;
  StatusOr<Object> assignment_json = hpo::ParseJson(StringMember(annotations, kAssignmentAnnotation));
  if (!assignment_json.ok()) {
    return fail(std::string("metadata.annotations.") + kAssignmentAnnotation + ": " + assignment_json.status().message());
  }
  StatusOr<hpo::Assignment> assignment = hpo::AssignmentFromJson(spec.space, *assignment_json);
  if (!assignment.ok()) {
    return fail(std::string("metadata.annotations.") + kAssignmentAnnotation + ": " + assignment.status().message());
  }
  trial.assignment = std::move(*assignment);

  trial.intermediate = ParseRecorded(StringMember(annotations, kIntermediateAnnotation));
  trial.recorded = trial.intermediate.size();
  // The live reading: the objective at the trial's latest evaluation.
  if (const Object* progress = Member(status, "progress"); progress != nullptr && progress->is_object()) {
    const Object* total = Member(*progress, "totalSteps");
    if (total != nullptr && total->is_number_integer()) trial.total_steps = total->get<std::int64_t>();
    std::optional<hpo::IntermediateValue> reading = api::ObjectiveReading(spec.objective, *progress);
    if (reading && (trial.intermediate.empty() || reading->step > trial.intermediate.back().step)) {
      trial.intermediate.push_back(*reading);
    }
  }

  const std::string state = StringMember(status, "state");
  if (state == trainingjob::kSucceeded) {
    const Object* result = Member(status, "result");
    const Object* metrics = result != nullptr ? Member(*result, "metrics") : nullptr;
    const Object* metric = metrics != nullptr ? Member(*metrics, spec.objective.metric.c_str()) : nullptr;
    if (metric == nullptr || !metric->is_number() || !std::isfinite(metric->get<double>())) {
      return fail("its result has no number status.result.metrics." + spec.objective.metric);
    }
    trial.phase = TrialPhase::kSucceeded;
    trial.value = metric->get<double>();
    return trial;
  }
  const std::string stopped = StringMember(annotations, kEarlyStoppedAnnotation);
  if (state == trainingjob::kFailed) {
    // A job failed after the stop request (its pods' SIGTERM, say) was stopped all the same.
    if (!stopped.empty()) {
      trial.phase = TrialPhase::kEarlyStopped;
      trial.message = stopped;
      return trial;
    }
    std::string reason = StringMember(status, "reason");
    std::string message = StringMember(status, "message");
    return fail(reason.empty() ? message : message.empty() ? reason : reason + ": " + message);
  }
  if (!stopped.empty()) {
    trial.phase = state == trainingjob::kSuspended ? TrialPhase::kEarlyStopped : TrialPhase::kStopping;
    trial.message = stopped;
  }
  return trial;
}

std::vector<hpo::Trial> SamplerHistory(const std::vector<Trial>& trials,
                                       bool with_intermediate) {
  std::vector<const Trial*> ordered;
  for (const Trial& trial : trials) {
    // ObserveTrial read the assignment against this space (AssignmentFromJson validates).
    if (trial.assignment) ordered.push_back(&trial);
  }
  std::sort(ordered.begin(), ordered.end(), [](const Trial* a, const Trial* b) { return a->index < b->index; });
  std::vector<hpo::Trial> history;
  history.reserve(ordered.size());
  for (const Trial* trial : ordered) {
    hpo::Trial entry;
    entry.id = trial->name;
    entry.assignment = *trial->assignment;
    switch (trial->phase) {
      case TrialPhase::kActive:
      case TrialPhase::kStopping: entry.state = hpo::TrialState::kPending; break;
      case TrialPhase::kSucceeded:
        entry.state = hpo::TrialState::kCompleted;
        entry.value = trial->value;
        break;
      case TrialPhase::kFailed: entry.state = hpo::TrialState::kFailed; break;
      case TrialPhase::kEarlyStopped: entry.state = hpo::TrialState::kStopped; break;
    }
    if (with_intermediate) entry.intermediate_values = trial->intermediate;
    history.push_back(std::move(entry));
  }
  return history;
}

std::string TrialJobName(const std::string& sweep_name, std::int64_t index) {
  return kube::ChildName(sweep_name, std::to_string(index));
}

StatusOr<Object> BuildTrial(const api::HyperparameterSweep& sweep, const Object& sweep_object, std::int64_t index,
                            const hpo::Assignment& assignment, const api::TrainerValidator& validate_trainer) {
  const std::string name = TrialJobName(sweep.name, index);
  // The parser's verdict first, so a value the TrainingJob refuses fails here, naming the field.
  StatusOr<api::TrainingJob> checked = api::TrialJob(sweep, assignment, name, validate_trainer);
  if (!checked.ok()) return checked.status();
  StatusOr<Object> spec = api::SubstituteTemplate(sweep.spec.trial_template, assignment);
  if (!spec.ok()) return spec.status();
  Object job = {{"apiVersion", std::string(api::kApiVersion)},
                {"kind", std::string(api::kTrainingJobKind)},
                {"metadata",
                 {{"name", name},
                  {"namespace", sweep.namespace_},
                  {"labels", {{kSweepNameLabel, sweep.name}, {kTrialIndexLabel, std::to_string(index)}}},
                  {"annotations", {{kAssignmentAnnotation, hpo::AssignmentToJson(assignment).dump()}}}}},
                {"spec", std::move(*spec)}};
  if (Status owned = kube::SetOwnerReference(job, sweep_object, /*controller=*/true); !owned.ok()) {
    return owned.WithContext("trial " + name);
  }
  return job;
}

Object StopPatch(const std::string& message) {
  return {{"metadata", {{"annotations", {{kEarlyStoppedAnnotation, message}}}}},
          {"spec", {{"runPolicy", {{"suspend", true}}}}}};
}

Object RecordPatch(const std::vector<hpo::IntermediateValue>& values) {
  Object list = Object::array();
  for (const hpo::IntermediateValue& value : values) list.push_back({value.step, value.value});
  return {{"metadata", {{"annotations", {{kIntermediateAnnotation, list.dump()}}}}}};
}

std::optional<std::vector<hpo::IntermediateValue>> ValuesToRecord(const Trial& trial) {
  if (trial.intermediate.size() <= trial.recorded) return std::nullopt;
  const hpo::IntermediateValue& live = trial.intermediate.back();
  const std::int64_t gap = std::max<std::int64_t>(1, trial.total_steps / static_cast<std::int64_t>(kMaxRecordedValues));
  if (trial.recorded > 0 && live.step - trial.intermediate[trial.recorded - 1].step < gap) return std::nullopt;
  std::vector<hpo::IntermediateValue> values(trial.intermediate.begin(), trial.intermediate.end());
  while (values.size() > kMaxRecordedValues) {
    std::vector<hpo::IntermediateValue> thinned;
    for (std::size_t i = 0; i < values.size(); i += 2) thinned.push_back(values[i]);
    if (thinned.back().step != values.back().step) thinned.push_back(values.back());
    values = std::move(thinned);
  }
  return values;
}

}  // namespace mlscale::controllers::sweep
