// JSON forms of the search space, trials, suggestions and configs, for a controller that
// persists its history (e.g. in a custom resource's status) and replays it later.
// Parsers take outside input: they never throw and report the JSON path of the first
// problem ("parameters[2].low: expected a number").
//
//   space:   {"parameters": [{"name": "lr", "type": "float", "low": 1e-5, "high": 1,
//             "log": true}, {"name": "layers", "type": "int", "low": 1, "high": 8},
//             {"name": "opt", "type": "categorical", "choices": ["adam", "sgd"]}]}
//            (optional "step" for float and int)
//   trial:   {"id": "t-3", "assignment": {"lr": 0.01, "layers": 3, "opt": "adam"},
//             "state": "completed", "value": 0.25,
//             "intermediate": [{"step": 1, "value": 0.5}]}
//            (state: pending | completed | failed | stopped)
//   sampler: {"algorithm": "bayesian", "direction": "minimize", "seed": 1, ...options}
//   early stopping: {"rule": "asha", "minResource": 1, "reductionFactor": 3}
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"
#include "mlscale/hpo/early_stopping.h"
#include "mlscale/hpo/sampler.h"
#include "mlscale/hpo/space.h"
#include "mlscale/hpo/trial.h"

namespace mlscale::hpo {

nlohmann::json SpaceToJson(const SearchSpace& space);
// Parses and validates (ValidateSpace).
StatusOr<SearchSpace> SpaceFromJson(const nlohmann::json& json);

nlohmann::json AssignmentToJson(const Assignment& assignment);
// Parses the values and checks them against the space (ValidateAssignment).
StatusOr<Assignment> AssignmentFromJson(const SearchSpace& space, const nlohmann::json& json);

nlohmann::json TrialsToJson(const std::vector<Trial>& trials);
// Parses an array of trials and validates it against the space (ValidateHistory).
StatusOr<std::vector<Trial>> TrialsFromJson(const SearchSpace& space, const nlohmann::json& json);

nlohmann::json SamplerConfigToJson(const SamplerConfig& config);
// Missing fields keep their defaults; present ones are type-checked and validated.
StatusOr<SamplerConfig> SamplerConfigFromJson(const nlohmann::json& json);

nlohmann::json EarlyStoppingConfigToJson(const EarlyStoppingConfig& config);
StatusOr<EarlyStoppingConfig> EarlyStoppingConfigFromJson(const nlohmann::json& json);

// Parses text into JSON; DataLoss with the parser's message when it is not JSON.
StatusOr<nlohmann::json> ParseJson(const std::string& text);

}  // namespace mlscale::hpo
