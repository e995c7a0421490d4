#include "mlscale/hpo/json.h"

#include <cmath>
#include <limits>

namespace mlscale::hpo {
namespace {

using nlohmann::json;

Status FieldError(const std::string& path, const std::string& problem) {
  return InvalidArgument(path + ": " + problem);
}

// Readers of optional fields: absent leaves `out` unchanged; a wrong type is an error.
Status ReadNumber(const json& object, const char* key, const std::string& path, double& out) {
  auto it = object.find(key);
  if (it == object.end()) return Status::Ok();
  if (!it->is_number()) return FieldError(path + "." + key, "expected a number");
  out = it->get<double>();
  return Status::Ok();
}

template <typename Integer>
Status ReadInteger(const json& object, const char* key, const std::string& path, Integer& out) {
  auto it = object.find(key);
  if (it == object.end()) return Status::Ok();
  if (it->is_number_unsigned()) {
    auto value = it->get<std::uint64_t>();
    if (value > static_cast<std::uint64_t>(std::numeric_limits<Integer>::max())) {
      return FieldError(path + "." + key, "out of range");
    }
    out = static_cast<Integer>(value);
    return Status::Ok();
  }
  if (!it->is_number_integer()) return FieldError(path + "." + key, "expected an integer");
  auto value = it->get<std::int64_t>();
  if (value < static_cast<std::int64_t>(std::numeric_limits<Integer>::min()) ||
      (value > 0 && static_cast<std::uint64_t>(value) > static_cast<std::uint64_t>(std::numeric_limits<Integer>::max()))) {
    return FieldError(path + "." + key, "out of range");
  }
  out = static_cast<Integer>(value);
  return Status::Ok();
}

Status ReadBool(const json& object, const char* key, const std::string& path, bool& out) {
  auto it = object.find(key);
  if (it == object.end()) return Status::Ok();
  if (!it->is_boolean()) return FieldError(path + "." + key, "expected true or false");
  out = it->get<bool>();
  return Status::Ok();
}

Status ReadString(const json& object, const char* key, const std::string& path, std::string& out) {
  auto it = object.find(key);
  if (it == object.end()) return Status::Ok();
  if (!it->is_string()) return FieldError(path + "." + key, "expected a string");
  out = it->get<std::string>();
  return Status::Ok();
}

Status RequireObject(const json& value, const std::string& path) {
  return value.is_object() ? Status::Ok() : FieldError(path, "expected an object");
}

// Maps a name to an enum value through a table of (name, value) pairs.
template <typename Enum, std::size_t N>
Status ReadEnum(const json& object, const char* key, const std::string& path,
                const std::pair<const char*, Enum> (&table)[N], Enum& out) {
  std::string name;
  MLSCALE_RETURN_IF_ERROR(ReadString(object, key, path, name));
  if (!object.contains(key)) return Status::Ok();
  std::string allowed;
  for (const auto& [text, value] : table) {
    if (name == text) {
      out = value;
      return Status::Ok();
    }
    allowed += allowed.empty() ? text : std::string(", ") + text;
  }
  return FieldError(path + "." + key, "'" + name + "' is not one of: " + allowed);
}

template <typename Enum, std::size_t N>
const char* EnumName(const std::pair<const char*, Enum> (&table)[N], Enum value) {
  for (const auto& [text, v] : table) {
    if (v == value) return text;
  }
  return "";
}

const std::pair<const char*, ParameterType> kParameterTypes[] = {
    {"float", ParameterType::kFloat}, {"int", ParameterType::kInt}, {"categorical", ParameterType::kCategorical}};
const std::pair<const char*, TrialState> kTrialStates[] = {{"pending", TrialState::kPending},
                                                           {"completed", TrialState::kCompleted},
                                                           {"failed", TrialState::kFailed},
                                                           {"stopped", TrialState::kStopped}};
const std::pair<const char*, Algorithm> kAlgorithms[] = {{"random", Algorithm::kRandom},
                                                         {"grid", Algorithm::kGrid},
                                                         {"bayesian", Algorithm::kBayesian},
                                                         {"tpe", Algorithm::kTpe}};
const std::pair<const char*, Direction> kDirections[] = {{"minimize", Direction::kMinimize},
                                                         {"maximize", Direction::kMaximize}};
const std::pair<const char*, EarlyStoppingRule> kRules[] = {
    {"none", EarlyStoppingRule::kNone}, {"median", EarlyStoppingRule::kMedian}, {"asha", EarlyStoppingRule::kAsha}};

StatusOr<Parameter> ParameterFromJson(const json& value, const std::string& path) {
  MLSCALE_RETURN_IF_ERROR(RequireObject(value, path));
  Parameter p;
  if (!value.contains("name")) return FieldError(path + ".name", "missing");
  MLSCALE_RETURN_IF_ERROR(ReadString(value, "name", path, p.name));
  if (!value.contains("type")) return FieldError(path + ".type", "missing");
  MLSCALE_RETURN_IF_ERROR(ReadEnum(value, "type", path, kParameterTypes, p.type));
  if (p.type == ParameterType::kCategorical) {
    auto it = value.find("choices");
    if (it == value.end() || !it->is_array()) return FieldError(path + ".choices", "expected an array of strings");
    for (std::size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) return FieldError(path + ".choices[" + std::to_string(i) + "]", "expected a string");
      p.choices.push_back((*it)[i].get<std::string>());
    }
    return p;
  }
  for (const char* key : {"low", "high"}) {
    if (!value.contains(key)) return FieldError(path + "." + key, "missing");
  }
  MLSCALE_RETURN_IF_ERROR(ReadNumber(value, "low", path, p.low));
  MLSCALE_RETURN_IF_ERROR(ReadNumber(value, "high", path, p.high));
  MLSCALE_RETURN_IF_ERROR(ReadBool(value, "log", path, p.log_scale));
  if (value.contains("step")) {
    double step = 0;
    MLSCALE_RETURN_IF_ERROR(ReadNumber(value, "step", path, step));
    p.step = step;
  }
  return p;
}

json ValueToJson(const ParameterValue& value) {
  return std::visit([](const auto& v) { return json(v); }, value);
}

StatusOr<ParameterValue> ValueFromJson(const Parameter& p, const json& value, const std::string& path) {
  switch (p.type) {
    case ParameterType::kCategorical:
      if (!value.is_string()) return FieldError(path, "expected a string");
      return ParameterValue(value.get<std::string>());
    case ParameterType::kInt:
      if (value.is_number_integer()) return ParameterValue(value.get<std::int64_t>());
      if (value.is_number_float()) {  // 3.0 is an integer written as a float
        double x = value.get<double>();
        if (std::isfinite(x) && std::floor(x) == x && std::fabs(x) < 0x1.0p62) {
          return ParameterValue(static_cast<std::int64_t>(x));
        }
      }
      return FieldError(path, "expected an integer");
    case ParameterType::kFloat:
      if (!value.is_number()) return FieldError(path, "expected a number");
      return ParameterValue(value.get<double>());
  }
  return FieldError(path, "unknown parameter type");
}

StatusOr<Assignment> AssignmentFromJsonAt(const SearchSpace& space, const json& value, const std::string& path) {
  MLSCALE_RETURN_IF_ERROR(RequireObject(value, path));
  Assignment assignment;
  for (const auto& [name, item] : value.items()) {
    auto p = std::find_if(space.parameters.begin(), space.parameters.end(),
                          [&](const Parameter& q) { return q.name == name; });
    if (p == space.parameters.end()) return FieldError(path + "." + name, "not a parameter of the space");
    StatusOr<ParameterValue> parsed = ValueFromJson(*p, item, path + "." + name);
    if (!parsed.ok()) return parsed.status();
    assignment.emplace(name, std::move(*parsed));
  }
  MLSCALE_RETURN_IF_ERROR(ValidateAssignment(space, assignment).WithContext(path));
  return assignment;
}

}  // namespace

json SpaceToJson(const SearchSpace& space) {
  json parameters = json::array();
  for (const Parameter& p : space.parameters) {
    json item = {{"name", p.name}, {"type", EnumName(kParameterTypes, p.type)}};
    if (p.type == ParameterType::kCategorical) {
      item["choices"] = p.choices;
    } else {
      item["low"] = p.low;
      item["high"] = p.high;
      if (p.log_scale) item["log"] = true;
      if (p.step) item["step"] = *p.step;
    }
    parameters.push_back(std::move(item));
  }
  return {{"parameters", std::move(parameters)}};
}

StatusOr<SearchSpace> SpaceFromJson(const json& value) {
  MLSCALE_RETURN_IF_ERROR(RequireObject(value, "space"));
  auto it = value.find("parameters");
  if (it == value.end() || !it->is_array()) return FieldError("parameters", "expected an array");
  SearchSpace space;
  for (std::size_t i = 0; i < it->size(); ++i) {
    StatusOr<Parameter> p = ParameterFromJson((*it)[i], "parameters[" + std::to_string(i) + "]");
    if (!p.ok()) return p.status();
    space.parameters.push_back(std::move(*p));
  }
  MLSCALE_RETURN_IF_ERROR(ValidateSpace(space));
  return space;
}

json AssignmentToJson(const Assignment& assignment) {
  json object = json::object();
  for (const auto& [name, value] : assignment) object[name] = ValueToJson(value);
  return object;
}

StatusOr<Assignment> AssignmentFromJson(const SearchSpace& space, const json& value) {
  return AssignmentFromJsonAt(space, value, "assignment");
}

json TrialsToJson(const std::vector<Trial>& trials) {
  json array = json::array();
  for (const Trial& trial : trials) {
    json item = {{"id", trial.id},
                 {"assignment", AssignmentToJson(trial.assignment)},
                 {"state", EnumName(kTrialStates, trial.state)}};
    if (trial.value) item["value"] = *trial.value;
    if (!trial.intermediate_values.empty()) {
      json intermediate = json::array();
      for (const IntermediateValue& iv : trial.intermediate_values) {
        intermediate.push_back({{"step", iv.step}, {"value", iv.value}});
      }
      item["intermediate"] = std::move(intermediate);
    }
    array.push_back(std::move(item));
  }
  return array;
}

StatusOr<std::vector<Trial>> TrialsFromJson(const SearchSpace& space, const json& value) {
  if (!value.is_array()) return FieldError("trials", "expected an array");
  std::vector<Trial> trials;
  for (std::size_t i = 0; i < value.size(); ++i) {
    std::string path = "trials[" + std::to_string(i) + "]";
    const json& item = value[i];
    MLSCALE_RETURN_IF_ERROR(RequireObject(item, path));
    Trial trial;
    if (!item.contains("id")) return FieldError(path + ".id", "missing");
    MLSCALE_RETURN_IF_ERROR(ReadString(item, "id", path, trial.id));
    if (!item.contains("state")) return FieldError(path + ".state", "missing");
    MLSCALE_RETURN_IF_ERROR(ReadEnum(item, "state", path, kTrialStates, trial.state));
    if (!item.contains("assignment")) return FieldError(path + ".assignment", "missing");
    StatusOr<Assignment> assignment = AssignmentFromJsonAt(space, item["assignment"], path + ".assignment");
    if (!assignment.ok()) return assignment.status();
    trial.assignment = std::move(*assignment);
    if (item.contains("value")) {
      double v = 0;
      MLSCALE_RETURN_IF_ERROR(ReadNumber(item, "value", path, v));
      trial.value = v;
    }
    if (auto it = item.find("intermediate"); it != item.end()) {
      if (!it->is_array()) return FieldError(path + ".intermediate", "expected an array");
      for (std::size_t j = 0; j < it->size(); ++j) {
        std::string at = path + ".intermediate[" + std::to_string(j) + "]";
        const json& entry = (*it)[j];
        MLSCALE_RETURN_IF_ERROR(RequireObject(entry, at));
        if (!entry.contains("step") || !entry.contains("value")) return FieldError(at, "needs step and value");
        IntermediateValue iv;
        MLSCALE_RETURN_IF_ERROR(ReadInteger(entry, "step", at, iv.step));
        MLSCALE_RETURN_IF_ERROR(ReadNumber(entry, "value", at, iv.value));
        trial.intermediate_values.push_back(iv);
      }
    }
    trials.push_back(std::move(trial));
  }
  MLSCALE_RETURN_IF_ERROR(ValidateHistory(space, trials));
  return trials;
}

json SamplerConfigToJson(const SamplerConfig& config) {
  return {{"algorithm", EnumName(kAlgorithms, config.algorithm)},
          {"direction", EnumName(kDirections, config.direction)},
          {"seed", config.seed},
          {"random", {{"quasiRandom", config.random.quasi_random}}},
          {"grid", {{"pointsPerFloat", config.grid.points_per_float}}},
          {"bayesian",
           {{"startupTrials", config.bayesian.startup_trials},
            {"candidates", config.bayesian.candidates},
            {"localSearches", config.bayesian.local_searches},
            {"maxFitTrials", config.bayesian.max_fit_trials}}},
          {"tpe",
           {{"startupTrials", config.tpe.startup_trials},
            {"candidates", config.tpe.candidates},
            {"gamma", config.tpe.gamma}}}};
}

StatusOr<SamplerConfig> SamplerConfigFromJson(const json& value) {
  MLSCALE_RETURN_IF_ERROR(RequireObject(value, "sampler"));
  SamplerConfig config;
  MLSCALE_RETURN_IF_ERROR(ReadEnum(value, "algorithm", "sampler", kAlgorithms, config.algorithm));
  MLSCALE_RETURN_IF_ERROR(ReadEnum(value, "direction", "sampler", kDirections, config.direction));
  MLSCALE_RETURN_IF_ERROR(ReadInteger(value, "seed", "sampler", config.seed));
  auto section = [&](const char* key) -> StatusOr<const json*> {
    auto it = value.find(key);
    if (it == value.end()) return static_cast<const json*>(nullptr);
    MLSCALE_RETURN_IF_ERROR(RequireObject(*it, std::string("sampler.") + key));
    return &*it;
  };
  StatusOr<const json*> random = section("random");
  if (!random.ok()) return random.status();
  if (*random) MLSCALE_RETURN_IF_ERROR(ReadBool(**random, "quasiRandom", "sampler.random", config.random.quasi_random));
  StatusOr<const json*> grid = section("grid");
  if (!grid.ok()) return grid.status();
  if (*grid) MLSCALE_RETURN_IF_ERROR(ReadInteger(**grid, "pointsPerFloat", "sampler.grid", config.grid.points_per_float));
  StatusOr<const json*> bayesian = section("bayesian");
  if (!bayesian.ok()) return bayesian.status();
  if (*bayesian) {
    const json& b = **bayesian;
    MLSCALE_RETURN_IF_ERROR(ReadInteger(b, "startupTrials", "sampler.bayesian", config.bayesian.startup_trials));
    MLSCALE_RETURN_IF_ERROR(ReadInteger(b, "candidates", "sampler.bayesian", config.bayesian.candidates));
    MLSCALE_RETURN_IF_ERROR(ReadInteger(b, "localSearches", "sampler.bayesian", config.bayesian.local_searches));
    MLSCALE_RETURN_IF_ERROR(ReadInteger(b, "maxFitTrials", "sampler.bayesian", config.bayesian.max_fit_trials));
  }
  StatusOr<const json*> tpe = section("tpe");
  if (!tpe.ok()) return tpe.status();
  if (*tpe) {
    const json& t = **tpe;
    MLSCALE_RETURN_IF_ERROR(ReadInteger(t, "startupTrials", "sampler.tpe", config.tpe.startup_trials));
    MLSCALE_RETURN_IF_ERROR(ReadInteger(t, "candidates", "sampler.tpe", config.tpe.candidates));
    MLSCALE_RETURN_IF_ERROR(ReadNumber(t, "gamma", "sampler.tpe", config.tpe.gamma));
  }
  MLSCALE_RETURN_IF_ERROR(ValidateSamplerConfig(config));
  return config;
}

json EarlyStoppingConfigToJson(const EarlyStoppingConfig& config) {
  return {{"rule", EnumName(kRules, config.rule)},
          {"minTrials", config.min_trials},
          {"warmupSteps", config.warmup_steps},
          {"minResource", config.min_resource},
          {"reductionFactor", config.reduction_factor}};
}

StatusOr<EarlyStoppingConfig> EarlyStoppingConfigFromJson(const json& value) {
  MLSCALE_RETURN_IF_ERROR(RequireObject(value, "earlyStopping"));
  EarlyStoppingConfig config;
  const std::string path = "earlyStopping";
  MLSCALE_RETURN_IF_ERROR(ReadEnum(value, "rule", path, kRules, config.rule));
  MLSCALE_RETURN_IF_ERROR(ReadInteger(value, "minTrials", path, config.min_trials));
  MLSCALE_RETURN_IF_ERROR(ReadInteger(value, "warmupSteps", path, config.warmup_steps));
  MLSCALE_RETURN_IF_ERROR(ReadInteger(value, "minResource", path, config.min_resource));
  MLSCALE_RETURN_IF_ERROR(ReadInteger(value, "reductionFactor", path, config.reduction_factor));
  MLSCALE_RETURN_IF_ERROR(ValidateEarlyStoppingConfig(config));
  return config;
}

StatusOr<json> ParseJson(const std::string& text) {
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return DataLoss("not valid JSON");
  return value;
}

}  // namespace mlscale::hpo
