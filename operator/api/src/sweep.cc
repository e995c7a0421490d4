#include "mlscale/api/sweep.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "mlscale/api/manifest.h"
#include "mlscale/common/hash.h"

namespace mlscale::api {
namespace {

using nlohmann::json;

constexpr std::string_view kPlaceholderOpen = "${params.";
// Probing the template: every parameter at its extremes, each choice at least once.
constexpr std::size_t kMaxProbes = kMaxChoices;

bool IsParameterName(const std::string& name) {
  if (name.empty() || name.size() > kMaxParameterNameBytes) return false;
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!letter(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return letter(c) || (c >= '0' && c <= '9'); });
}

// A finite number (an integer or a float) at `key`; `fallback` when absent.
StatusOr<std::optional<double>> OptionalNumber(ObjectReader& reader, std::string_view key) {
  const json* value = reader.Accept(key);
  if (value == nullptr || value->is_null()) return std::optional<double>();
  if (!value->is_number()) {
    return InvalidArgument(reader.PathOf(key) + ": must be a number (got " + QuoteJson(*value) + ")");
  }
  double number = value->get<double>();
  if (!std::isfinite(number)) return InvalidArgument(reader.PathOf(key) + ": must be finite");
  return std::optional<double>(number);
}

StatusOr<SweepObjective> ObjectiveFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.objective");
  if (!reader.ok()) return reader.status();
  SweepObjective objective;
  auto metric = reader->BoundedString("metric", std::nullopt, kMaxMetricBytes, false);
  if (!metric.ok()) return metric.status();
  objective.metric = std::move(*metric);
  auto direction = reader->Choice("direction", std::nullopt, {"minimize", "maximize"});
  if (!direction.ok()) return direction.status();
  objective.direction = *direction == "maximize" ? hpo::Direction::kMaximize : hpo::Direction::kMinimize;
  auto goal = OptionalNumber(*reader, "goal");
  if (!goal.ok()) return goal.status();
  objective.goal = *goal;
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return objective;
}

// Reads an int setting into `out` (kept when absent).
Status IntSetting(ObjectReader& reader, std::string_view key, std::int64_t min, std::int64_t max, int& out) {
  auto value = reader.Integer(key, out, min, max);
  if (!value.ok()) return value.status();
  out = static_cast<int>(*value);
  return Status::Ok();
}

Status AlgorithmFromJson(const json& value, hpo::SamplerConfig& config) {
  auto reader = ObjectReader::Make(value, "spec.algorithm");
  if (!reader.ok()) return reader.status();
  auto name = reader->Choice("name", std::nullopt, {"random", "grid", "bayesian", "tpe"});
  if (!name.ok()) return name.status();
  config.algorithm = *name == "random"  ? hpo::Algorithm::kRandom
                     : *name == "grid"  ? hpo::Algorithm::kGrid
                     : *name == "tpe"   ? hpo::Algorithm::kTpe
                                        : hpo::Algorithm::kBayesian;
  auto seed = reader->Integer("seed", 0, 0, std::numeric_limits<std::int64_t>::max());
  if (!seed.ok()) return seed.status();
  config.seed = static_cast<std::uint64_t>(*seed);
  auto settings_json = reader->Object("settings", json::object());
  if (!settings_json.ok()) return settings_json.status();
  MLSCALE_RETURN_IF_ERROR(reader->Finish());

  auto settings = ObjectReader::Make(*settings_json, "spec.algorithm.settings");
  if (!settings.ok()) return settings.status();
  constexpr std::int64_t kMaxCount = 1'000'000;
  switch (config.algorithm) {
    case hpo::Algorithm::kRandom: {
      auto quasi = settings->Bool("quasiRandom", config.random.quasi_random);
      if (!quasi.ok()) return quasi.status();
      config.random.quasi_random = *quasi;
      break;
    }
    case hpo::Algorithm::kGrid:
      MLSCALE_RETURN_IF_ERROR(IntSetting(*settings, "pointsPerFloat", 2, 10'000, config.grid.points_per_float));
      break;
    case hpo::Algorithm::kBayesian:
      MLSCALE_RETURN_IF_ERROR(IntSetting(*settings, "startupTrials", 1, kMaxCount, config.bayesian.startup_trials));
      MLSCALE_RETURN_IF_ERROR(IntSetting(*settings, "candidates", 1, kMaxCount, config.bayesian.candidates));
      MLSCALE_RETURN_IF_ERROR(IntSetting(*settings, "localSearches", 0, 1000, config.bayesian.local_searches));
      MLSCALE_RETURN_IF_ERROR(IntSetting(*settings, "maxFitTrials", 2, kMaxCount, config.bayesian.max_fit_trials));
      break;
    case hpo::Algorithm::kTpe: {
      MLSCALE_RETURN_IF_ERROR(IntSetting(*settings, "startupTrials", 1, kMaxCount, config.tpe.startup_trials));
      MLSCALE_RETURN_IF_ERROR(IntSetting(*settings, "candidates", 1, kMaxCount, config.tpe.candidates));
      auto gamma = OptionalNumber(*settings, "gamma");
      if (!gamma.ok()) return gamma.status();
      if (*gamma) {
        if (!(**gamma > 0 && **gamma < 1)) {
          return InvalidArgument("spec.algorithm.settings.gamma: must be in (0, 1) (got " + QuoteJson(**gamma) + ")");
        }
        config.tpe.gamma = **gamma;
      }
      break;
    }
  }
  MLSCALE_RETURN_IF_ERROR(settings->Finish());
  Status valid = hpo::ValidateSamplerConfig(config);
  if (!valid.ok()) return InvalidArgument("spec.algorithm.settings: " + valid.message());
  return Status::Ok();
}

StatusOr<hpo::Parameter> ParameterFromJson(const json& value, const std::string& path) {
  auto reader = ObjectReader::Make(value, path);
  if (!reader.ok()) return reader.status();
  hpo::Parameter parameter;
  auto name = reader->String("name", std::nullopt);
  if (!name.ok()) return name.status();
  if (!IsParameterName(*name)) {
    return InvalidArgument(reader->PathOf("name") + ": " + Quote(*name) +
                           " is not a parameter name: a letter or '_', then letters, digits or '_', at most 63");
  }
  parameter.name = std::move(*name);
  auto type = reader->Choice("type", std::nullopt, {"float", "int", "categorical"});
  if (!type.ok()) return type.status();
  if (*type == "categorical") {
    parameter.type = hpo::ParameterType::kCategorical;
    auto choices = reader->StringList("choices", kMaxChoices, kMaxChoiceBytes);
    if (!choices.ok()) return choices.status();
    if (choices->empty()) return InvalidArgument(reader->PathOf("choices") + ": needs at least one choice");
    std::set<std::string> seen;
    for (std::size_t i = 0; i < choices->size(); ++i) {
      if (!seen.insert((*choices)[i]).second) {
        return InvalidArgument(reader->PathOf("choices") + "[" + std::to_string(i) + "]: " + Quote((*choices)[i]) +
                               " is given twice");
      }
    }
    parameter.choices = std::move(*choices);
    MLSCALE_RETURN_IF_ERROR(reader->Finish());
    return parameter;
  }
  parameter.type = *type == "int" ? hpo::ParameterType::kInt : hpo::ParameterType::kFloat;
  bool integral = parameter.type == hpo::ParameterType::kInt;
  for (auto [key, out] : {std::pair{"min", &parameter.low}, std::pair{"max", &parameter.high}}) {
    if (!reader->Has(key)) return InvalidArgument(reader->PathOf(key) + ": required for a " + *type + " parameter");
    if (integral) {
      auto bound = reader->Integer(key, std::nullopt, -(std::int64_t(1) << 53), std::int64_t(1) << 53);
      if (!bound.ok()) return bound.status();
      *out = static_cast<double>(*bound);
    } else {
      auto bound = OptionalNumber(*reader, key);
      if (!bound.ok()) return bound.status();
      *out = **bound;
    }
  }
  if (!(parameter.low < parameter.high)) {
    return InvalidArgument(reader->PathOf("min") + ": must be less than max (" + QuoteJson(parameter.low) +
                           " >= " + QuoteJson(parameter.high) + ")");
  }
  auto scale = reader->Choice("scale", "linear", {"linear", "log"});
  if (!scale.ok()) return scale.status();
  parameter.log_scale = *scale == "log";
  if (parameter.log_scale && !(parameter.low > 0)) {
    return InvalidArgument(reader->PathOf("min") + ": must be > 0 on a log scale (got " + QuoteJson(parameter.low) + ")");
  }
  if (reader->Has("step")) {
    if (integral) {
      auto step = reader->Integer("step", std::nullopt, 1, std::int64_t(1) << 53);
      if (!step.ok()) return step.status();
      parameter.step = static_cast<double>(*step);
    } else {
      auto step = OptionalNumber(*reader, "step");
      if (!step.ok()) return step.status();
      if (!(**step > 0)) return InvalidArgument(reader->PathOf("step") + ": must be > 0");
      parameter.step = **step;
    }
    if (parameter.log_scale && !integral) {
      return InvalidArgument(reader->PathOf("step") + ": a float on a log scale has no step");
    }
    if (*parameter.step > parameter.high - parameter.low) {
      return InvalidArgument(reader->PathOf("step") + ": must be at most max - min");
    }
  }
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return parameter;
}

StatusOr<hpo::SearchSpace> ParametersFromJson(const json& items) {
  if (items.empty()) return InvalidArgument("spec.parameters: needs at least one parameter");
  hpo::SearchSpace space;
  std::set<std::string> names;
  for (std::size_t i = 0; i < items.size(); ++i) {
    std::string path = "spec.parameters[" + std::to_string(i) + "]";
    auto parameter = ParameterFromJson(items[i], path);
    if (!parameter.ok()) return parameter.status();
    if (!names.insert(parameter->name).second) {
      return InvalidArgument(path + ".name: " + Quote(parameter->name) + " is given twice");
    }
    space.parameters.push_back(std::move(*parameter));
  }
  Status valid = hpo::ValidateSpace(space);
  if (!valid.ok()) return InvalidArgument("spec.parameters: " + valid.message());
  return space;
}

Status EarlyStoppingFromJson(const json& value, hpo::EarlyStoppingConfig& config) {
  auto reader = ObjectReader::Make(value, "spec.earlyStopping");
  if (!reader.ok()) return reader.status();
  auto rule = reader->Choice("rule", "none", {"none", "median", "asha"});
  if (!rule.ok()) return rule.status();
  config.rule = *rule == "median" ? hpo::EarlyStoppingRule::kMedian
                : *rule == "asha" ? hpo::EarlyStoppingRule::kAsha
                                  : hpo::EarlyStoppingRule::kNone;
  auto settings_json = reader->Object("settings", json::object());
  if (!settings_json.ok()) return settings_json.status();
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  auto settings = ObjectReader::Make(*settings_json, "spec.earlyStopping.settings");
  if (!settings.ok()) return settings.status();
  constexpr std::int64_t kMaxSteps = std::int64_t(1) << 40;
  if (config.rule == hpo::EarlyStoppingRule::kMedian) {
    MLSCALE_RETURN_IF_ERROR(IntSetting(*settings, "minTrials", 1, 10'000, config.min_trials));
    auto warmup = settings->Integer("warmupSteps", config.warmup_steps, 0, kMaxSteps);
    if (!warmup.ok()) return warmup.status();
    config.warmup_steps = *warmup;
  } else if (config.rule == hpo::EarlyStoppingRule::kAsha) {
    auto min_resource = settings->Integer("minResource", config.min_resource, 1, kMaxSteps);
    if (!min_resource.ok()) return min_resource.status();
    config.min_resource = *min_resource;
    MLSCALE_RETURN_IF_ERROR(IntSetting(*settings, "reductionFactor", 2, 100, config.reduction_factor));
  }
  MLSCALE_RETURN_IF_ERROR(settings->Finish());
  Status valid = hpo::ValidateEarlyStoppingConfig(config);
  if (!valid.ok()) return InvalidArgument("spec.earlyStopping.settings: " + valid.message());
  return Status::Ok();
}

// The text of a value inside a longer string: numbers in JSON's shortest form.
std::string ValueText(const hpo::ParameterValue& value) {
  if (const auto* text = std::get_if<std::string>(&value)) return *text;
  if (const auto* integer = std::get_if<std::int64_t>(&value)) return std::to_string(*integer);
  return json(std::get<double>(value)).dump();
}

json ValueJson(const hpo::ParameterValue& value) {
  if (const auto* text = std::get_if<std::string>(&value)) return *text;
  if (const auto* integer = std::get_if<std::int64_t>(&value)) return *integer;
  return std::get<double>(value);
}

// Substitutes the placeholders of one string; `path` names it in errors.
StatusOr<json> SubstituteString(const std::string& text, const hpo::Assignment& assignment, const std::string& path) {
  std::string out;
  std::size_t position = 0;
  for (;;) {
    std::size_t open = text.find(kPlaceholderOpen, position);
    if (open == std::string::npos) break;
    std::size_t close = text.find('}', open);
    if (close == std::string::npos) {
      return InvalidArgument(path + ": unterminated placeholder " + Quote(text.substr(open)) + " (write ${params.<name>})");
    }
    std::string name = text.substr(open + kPlaceholderOpen.size(), close - open - kPlaceholderOpen.size());
    auto it = assignment.find(name);
    if (it == assignment.end()) {
      return InvalidArgument(path + ": " + Quote(text.substr(open, close + 1 - open)) +
                             " names no parameter of spec.parameters");
    }
    if (open == 0 && close + 1 == text.size()) return ValueJson(it->second);  // the whole string: typed
    out.append(text, position, open - position);
    out += ValueText(it->second);
    position = close + 1;
  }
  if (position == 0) return json(text);
  out.append(text, position);
  return json(std::move(out));
}

StatusOr<json> Substitute(const json& value, const hpo::Assignment& assignment, const std::string& path) {
  if (value.is_string()) return SubstituteString(value.get_ref<const std::string&>(), assignment, path);
  if (value.is_object()) {
    json out = json::object();
    for (const auto& [key, item] : value.items()) {
      auto substituted = Substitute(item, assignment, path + "." + key);
      if (!substituted.ok()) return substituted.status();
      out[key] = std::move(*substituted);
    }
    return out;
  }
  if (value.is_array()) {
    json out = json::array();
    for (std::size_t i = 0; i < value.size(); ++i) {
      auto substituted = Substitute(value[i], assignment, path + "[" + std::to_string(i) + "]");
      if (!substituted.ok()) return substituted.status();
      out.push_back(std::move(*substituted));
    }
    return out;
  }
  return value;
}

// The i-th probe of the template: floats and ints alternate between min and the largest
// value on their grid, categoricals go through their choices.
hpo::Assignment ProbeAssignment(const hpo::SearchSpace& space, std::size_t i) {
  hpo::Assignment assignment;
  for (const auto& p : space.parameters) {
    if (p.type == hpo::ParameterType::kCategorical) {
      assignment[p.name] = p.choices[i % p.choices.size()];
    } else if (p.type == hpo::ParameterType::kFloat && !p.step) {
      assignment[p.name] = i % 2 == 0 ? p.low : p.high;  // exactly (decoding a log scale rounds)
    } else {
      assignment[p.name] = hpo::DecodeValue(p, i % 2 == 0 ? 0.0 : 1.0);
    }
  }
  return assignment;
}

// "spec.x" of the template's TrainingJob as a field of the sweep.
Status InTemplate(const Status& status) {
  const std::string& message = status.message();
  if (message.starts_with("spec.") || message.starts_with("spec:")) {
    return Status(status.code(), "spec.trialTemplate." + message);
  }
  return Status(status.code(), "spec.trialTemplate.spec: " + message);
}

StatusOr<TrainingJob> BuildTrialJob(const json& trial_template, const hpo::Assignment& assignment,
                                    const std::string& name, const std::string& namespace_name,
                                    const TrainerValidator& validate_trainer) {
  auto spec = Substitute(trial_template, assignment, "spec.trialTemplate.spec");
  if (!spec.ok()) return spec.status();
  json metadata = {{"name", name}};
  if (!namespace_name.empty()) metadata["namespace"] = namespace_name;
  json manifest = {{"apiVersion", kApiVersion}, {"kind", kTrainingJobKind}, {"metadata", metadata}, {"spec", *spec}};
  auto job = TrainingJobFromJson(manifest, validate_trainer);
  if (!job.ok()) return InTemplate(job.status());
  return job;
}

Status CheckTemplate(const SweepSpec& spec, const TrainerValidator& validate_trainer) {
  std::size_t probes = 2;
  for (const auto& p : spec.space.parameters) probes = std::max(probes, p.choices.size());
  probes = std::min(probes, kMaxProbes);
  for (std::size_t i = 0; i < probes; ++i) {
    hpo::Assignment assignment = ProbeAssignment(spec.space, i);
    auto job = BuildTrialJob(spec.trial_template, assignment, "trial", "", validate_trainer);
    if (!job.ok()) return Status(job.status().code(), job.status().message() + " (with " + hpo::AssignmentKey(assignment) + ")");
  }
  return Status::Ok();
}

StatusOr<SweepSpec> SpecFromJson(const json& spec_json, const TrainerValidator& validate_trainer) {
  auto reader = ObjectReader::Make(spec_json, "spec");
  if (!reader.ok()) return reader.status();
  SweepSpec spec;

  auto objective = reader->Object("objective", std::nullopt);
  if (!objective.ok()) return objective.status();
  auto parsed_objective = ObjectiveFromJson(*objective);
  if (!parsed_objective.ok()) return parsed_objective.status();
  spec.objective = std::move(*parsed_objective);
  spec.sampler.direction = spec.objective.direction;

  auto algorithm = reader->Object("algorithm", std::nullopt);
  if (!algorithm.ok()) return algorithm.status();
  MLSCALE_RETURN_IF_ERROR(AlgorithmFromJson(*algorithm, spec.sampler));

  if (!reader->Has("parameters")) return InvalidArgument("spec.parameters: required");
  auto parameters = reader->Array("parameters", kMaxSweepParameters);
  if (!parameters.ok()) return parameters.status();
  auto space = ParametersFromJson(*parameters);
  if (!space.ok()) return space.status();
  spec.space = std::move(*space);

  auto template_json = reader->Object("trialTemplate", std::nullopt);
  if (!template_json.ok()) return template_json.status();
  auto template_reader = ObjectReader::Make(*template_json, "spec.trialTemplate");
  if (!template_reader.ok()) return template_reader.status();
  auto trial_spec = template_reader->Object("spec", std::nullopt);
  if (!trial_spec.ok()) return trial_spec.status();
  MLSCALE_RETURN_IF_ERROR(template_reader->Finish());
  spec.trial_template = std::move(*trial_spec);

  auto max_trials = reader->Integer("maxTrials", std::nullopt, 1, kMaxSweepTrials);
  if (!max_trials.ok()) return max_trials.status();
  spec.max_trials = *max_trials;
  auto parallel = reader->Integer("parallelTrials", spec.parallel_trials, 1, kMaxSweepTrials);
  if (!parallel.ok()) return parallel.status();
  spec.parallel_trials = *parallel;
  if (spec.parallel_trials > spec.max_trials) {
    return InvalidArgument("spec.parallelTrials: must be at most spec.maxTrials (" + std::to_string(spec.max_trials) + ")");
  }
  auto max_failed = reader->Integer("maxFailedTrials", spec.max_failed_trials, 0, kMaxSweepTrials);
  if (!max_failed.ok()) return max_failed.status();
  spec.max_failed_trials = *max_failed;

  if (const json* early = reader->Accept("earlyStopping")) {
    MLSCALE_RETURN_IF_ERROR(EarlyStoppingFromJson(*early, spec.early_stopping));
  }
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  MLSCALE_RETURN_IF_ERROR(CheckTemplate(spec, validate_trainer));
  return spec;
}

}  // namespace

bool SweepObjective::GoalReached(double value) const {
  if (!goal) return false;
  return direction == hpo::Direction::kMaximize ? value >= *goal : value <= *goal;
}

std::string_view AlgorithmName(hpo::Algorithm algorithm) {
  switch (algorithm) {
    case hpo::Algorithm::kRandom: return "random";
    case hpo::Algorithm::kGrid: return "grid";
    case hpo::Algorithm::kBayesian: return "bayesian";
    case hpo::Algorithm::kTpe: return "tpe";
  }
  return "bayesian";
}

std::string_view DirectionName(hpo::Direction direction) {
  return direction == hpo::Direction::kMaximize ? "maximize" : "minimize";
}

std::string_view EarlyStoppingRuleName(hpo::EarlyStoppingRule rule) {
  switch (rule) {
    case hpo::EarlyStoppingRule::kNone: return "none";
    case hpo::EarlyStoppingRule::kMedian: return "median";
    case hpo::EarlyStoppingRule::kAsha: return "asha";
  }
  return "none";
}

std::string ManifestKind(const json& manifest) {
  if (!manifest.is_object()) return "";
  auto it = manifest.find("kind");
  return it != manifest.end() && it->is_string() ? it->get<std::string>() : "";
}

StatusOr<HyperparameterSweep> SweepFromJson(const json& manifest, const TrainerValidator& validate_trainer) {
  auto top = ObjectReader::Make(manifest, "");
  if (!top.ok()) return InvalidArgument("the manifest must be an object (a YAML mapping)");
  auto envelope = ReadManifestEnvelope(*top, kApiVersion, kSweepKind);
  if (!envelope.ok()) return envelope.status();
  HyperparameterSweep sweep;
  sweep.name = std::move(envelope->name);
  sweep.namespace_ = std::move(envelope->namespace_);

  const json* spec_json = top->Accept("spec");
  if (spec_json == nullptr) return InvalidArgument("spec: required");
  auto spec = SpecFromJson(*spec_json, validate_trainer);
  if (!spec.ok()) return spec.status();
  sweep.spec = std::move(*spec);
  top->Accept("status");  // written by the controller
  MLSCALE_RETURN_IF_ERROR(top->Finish());
  return sweep;
}

StatusOr<HyperparameterSweep> ParseSweep(std::string_view yaml, const TrainerValidator& validate_trainer) {
  auto manifest = ParseYamlDocument(yaml);
  if (!manifest.ok()) return manifest.status();
  return SweepFromJson(*manifest, validate_trainer);
}

StatusOr<HyperparameterSweep> LoadSweepFile(const std::string& path, const TrainerValidator& validate_trainer) {
  auto text = ReadManifestFile(path);
  if (!text.ok()) return text.status().WithContext(path);
  auto sweep = ParseSweep(*text, validate_trainer);
  if (!sweep.ok()) return sweep.status().WithContext(path);
  return sweep;
}

StatusOr<json> SubstituteTemplate(const json& trial_template, const hpo::Assignment& assignment) {
  return Substitute(trial_template, assignment, "spec.trialTemplate.spec");
}

StatusOr<TrainingJob> TrialJob(const HyperparameterSweep& sweep, const hpo::Assignment& assignment,
                               const std::string& trial_name, const TrainerValidator& validate_trainer) {
  return BuildTrialJob(sweep.spec.trial_template, assignment, trial_name, sweep.namespace_, validate_trainer);
}

std::optional<hpo::IntermediateValue> ObjectiveReading(const SweepObjective& objective, const json& progress) {
  if (!progress.is_object()) return std::nullopt;
  auto evaluation = progress.find("evaluation");
  if (evaluation == progress.end() || !evaluation->is_object()) return std::nullopt;
  auto step = evaluation->find("step");
  auto metrics = evaluation->find("metrics");
  if (step == evaluation->end() || !step->is_number_integer() || metrics == evaluation->end() || !metrics->is_object()) {
    return std::nullopt;
  }
  auto value = metrics->find(objective.metric);
  if (value == metrics->end() || !value->is_number() || !std::isfinite(value->get<double>())) return std::nullopt;
  if (step->get<std::int64_t>() <= 0) return std::nullopt;
  return hpo::IntermediateValue{step->get<std::int64_t>(), value->get<double>()};
}

std::string TrialName(const std::string& sweep_name, std::int64_t index) {
  constexpr std::size_t kMaxLabel = 63;
  const std::string suffix = std::to_string(index);
  if (sweep_name.size() + 1 + suffix.size() <= kMaxLabel) return sweep_name + "-" + suffix;
  // Cut alone, two sweeps sharing their first characters would name their trials alike;
  // the hash of the whole name keeps them apart (kube::ChildName's scheme and hash).
  const std::string hash = HexDigits(Fnv1a32(sweep_name + '\0' + suffix), 8);
  std::string base = sweep_name.substr(0, kMaxLabel - (1 + hash.size() + 1 + suffix.size()));
  while (!base.empty() && base.back() == '-') base.pop_back();
  return base + "-" + hash + "-" + suffix;
}

}  // namespace mlscale::api
