// HyperparameterSweep (mlscale.io/v1alpha1): trials of a TrainingJob template, each with
// one assignment of the search parameters, suggested by the hpo library (hpo/). Parsed
// by pure functions shared by the sweep controller and the local CLI (`mlscale sweep -f`,
// `mlscale validate -f`). The CRD (crds/hyperparametersweeps.mlscale.io.yaml) states the
// same rules for the API server; the corpus test (tests/operator/api/corpus) holds the two
// to one verdict per manifest.
//
//   apiVersion: mlscale.io/v1alpha1
//   kind: HyperparameterSweep
//   metadata: {name: digits-bayesian}
//   spec:
//     objective: {metric: testAccuracy, direction: maximize, goal: 0.97}  # goal optional
//     algorithm: {name: bayesian, seed: 1, settings: {startupTrials: 4}}  # random|grid|bayesian|tpe
//     parameters:
//       - {name: lr, type: float, min: 0.0001, max: 0.1, scale: log}
//       - {name: width, type: int, min: 16, max: 128, step: 16}
//       - {name: optimizer, type: categorical, choices: [adam, sgd]}
//     trialTemplate:
//       spec: {...a TrainingJob spec; "${params.lr}" stands for a value...}
//     maxTrials: 8          # required
//     parallelTrials: 2     # default 1
//     maxFailedTrials: 3    # default 3: one more fails the sweep
//     earlyStopping: {rule: asha, settings: {minResource: 50, reductionFactor: 3}}  # none|median|asha
//
// Placeholders: a string of the template that is exactly "${params.<name>}" becomes the
// value itself, typed (a float parameter gives a number, an int an integer, a categorical
// its string); one inside a longer string is replaced by the value's text. Keys are not
// substituted. Everything is checked before any trial: a placeholder naming no parameter,
// and the template with every parameter at its extremes (min and max, each choice) through
// the TrainingJob parser, so a value of the wrong type for its field is refused with the
// field's path ("spec.trialTemplate.spec.replicas: ...").
//
// algorithm.settings by algorithm (all optional, hpo/sampler.h has their meaning):
//   random: quasiRandom (bool)   grid: pointsPerFloat
//   bayesian: startupTrials, candidates, localSearches, maxFitTrials
//   tpe: startupTrials, candidates, gamma (number in (0, 1))
// earlyStopping.settings: median: minTrials, warmupSteps; asha: minResource, reductionFactor.
// Early stopping judges a trial by its objective before it ends: the objective metric of
// the latest evaluation in its live progress ("evaluation": {"step", "metrics"}, which
// mlscale-train writes at each epoch's end with the result's metric names;
// launcher/progress_server.h), in the objective's direction. A trial whose trainer
// reports no such evaluation is never stopped early.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mlscale/api/training_job.h"
#include "mlscale/common/status.h"
#include "mlscale/hpo/early_stopping.h"
#include "mlscale/hpo/sampler.h"
#include "mlscale/hpo/space.h"

namespace mlscale::api {

inline constexpr std::string_view kSweepKind = "HyperparameterSweep";
// Limits of the spec (the CRD states the same; tests/operator/api holds them to it).
inline constexpr std::int64_t kMaxSweepTrials = 100'000;
inline constexpr std::size_t kMaxSweepParameters = 32;
inline constexpr std::size_t kMaxChoices = 256;
inline constexpr std::size_t kMaxChoiceBytes = 253;
inline constexpr std::size_t kMaxParameterNameBytes = 63;  // [A-Za-z_][A-Za-z0-9_]*
inline constexpr std::size_t kMaxMetricBytes = 253;
// The fields of spec, in the order of the schema.
inline constexpr std::string_view kSweepSpecFields[] = {"objective",     "algorithm",      "parameters",
                                                        "trialTemplate", "maxTrials",      "parallelTrials",
                                                        "maxFailedTrials", "earlyStopping"};

struct SweepObjective {
  std::string metric;  // a key of the trial's result metrics, e.g. "testAccuracy"
  hpo::Direction direction = hpo::Direction::kMinimize;
  std::optional<double> goal;  // the sweep succeeds (GoalReached) once a trial reaches it

  // True when `value` reaches the goal in the objective's direction.
  bool GoalReached(double value) const;
  bool operator==(const SweepObjective&) const = default;
};

struct SweepSpec {
  SweepObjective objective;
  // The sampler: algorithm, direction (the objective's), seed and settings.
  hpo::SamplerConfig sampler;
  hpo::SearchSpace space;           // validated (hpo::ValidateSpace)
  nlohmann::json trial_template;    // trialTemplate.spec as written, nulls removed, placeholders in place
  std::int64_t max_trials = 0;
  std::int64_t parallel_trials = 1;
  std::int64_t max_failed_trials = 3;
  hpo::EarlyStoppingConfig early_stopping;  // validated (hpo::ValidateEarlyStoppingConfig)
};

struct HyperparameterSweep {
  std::string name;        // metadata.name: a DNS-1123 label
  std::string namespace_;  // metadata.namespace; empty when not given
  SweepSpec spec;
};

std::string_view AlgorithmName(hpo::Algorithm algorithm);          // "random", "grid", "bayesian", "tpe"
std::string_view DirectionName(hpo::Direction direction);          // "minimize", "maximize"
std::string_view EarlyStoppingRuleName(hpo::EarlyStoppingRule rule);  // "none", "median", "asha"

// The kind of a manifest already read into JSON ("" when it has none or it is not a string),
// so a caller can dispatch between TrainingJob and HyperparameterSweep.
std::string ManifestKind(const nlohmann::json& manifest);

// Builds a sweep from a manifest already read into JSON, checking every field and the
// trial template (see the top of this file); `validate_trainer` checks the template's
// spec.trainer (may be empty). Errors are InvalidArgument naming the field.
StatusOr<HyperparameterSweep> SweepFromJson(const nlohmann::json& manifest, const TrainerValidator& validate_trainer);
// Parses a YAML (or JSON) manifest (manifest.h's limits); the same checks.
StatusOr<HyperparameterSweep> ParseSweep(std::string_view yaml, const TrainerValidator& validate_trainer);
// Reads and parses a manifest file; errors are prefixed with the file's name.
StatusOr<HyperparameterSweep> LoadSweepFile(const std::string& path, const TrainerValidator& validate_trainer);

// The template with `assignment` substituted (it must hold every parameter of the space);
// InvalidArgument naming the template's field for a placeholder naming no parameter.
StatusOr<nlohmann::json> SubstituteTemplate(const nlohmann::json& trial_template, const hpo::Assignment& assignment);

// The TrainingJob of one trial: named `trial_name` (a DNS-1123 label the caller makes
// unique, e.g. "<sweep>-<index>"), in the sweep's namespace, spec the substituted template,
// parsed by the TrainingJob parser. Errors name the template's field.
StatusOr<TrainingJob> TrialJob(const HyperparameterSweep& sweep, const hpo::Assignment& assignment,
                               const std::string& trial_name, const TrainerValidator& validate_trainer);

// The intermediate value a trial's live progress gives for `objective`: the step and
// value of objective.metric in progress.evaluation.metrics; nullopt when the progress has
// no evaluation with that metric as a finite number at a step > 0.
std::optional<hpo::IntermediateValue> ObjectiveReading(const SweepObjective& objective, const nlohmann::json& progress);

// The name of trial `index` of the sweep named `sweep_name` (a DNS-1123 label):
// "<sweep>-<index>" when that fits in 63 characters, else "<sweep cut>-<hash>-<index>"
// with an 8-hex-digit hash of the whole name and index, so sweeps that share their first
// characters still name their trials apart. For a name that begins with a letter this is
// kube::ChildName(<sweep>, "<index>"), the name the sweep controller gives its trials.
std::string TrialName(const std::string& sweep_name, std::int64_t index);

}  // namespace mlscale::api
