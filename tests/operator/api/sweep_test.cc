// HyperparameterSweep manifests: what is accepted, typed substitution of placeholders,
// and a table of malformed sweeps whose errors must name the field.
#include "mlscale/api/sweep.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "mlscale/api/manifest.h"
#include "mlscale/worker/config.h"

namespace mlscale::api {
namespace {

using nlohmann::json;

Status ValidateTrainer(const json& trainer) { return worker::ParseTrainerConfig(trainer).status(); }

const std::string kHeader = "apiVersion: mlscale.io/v1alpha1\nkind: HyperparameterSweep\nmetadata: {name: s}\n";

// A valid sweep; `replace` swaps one line-free fragment for another to make a case.
std::string Sweep(const std::string& spec_extra = "", const std::string& parameters = "",
                  const std::string& template_spec = "") {
  return kHeader + "spec:\n"
                   "  objective: {metric: testAccuracy, direction: maximize}\n"
                   "  algorithm: {name: bayesian, seed: 3}\n"
                   "  parameters:\n" +
         (parameters.empty() ? "    - {name: lr, type: float, min: 0.001, max: 0.1, scale: log}\n"
                               "    - {name: width, type: int, min: 16, max: 64, step: 16}\n"
                               "    - {name: opt, type: categorical, choices: [adam, sgd]}\n"
                             : parameters) +
         "  maxTrials: 4\n" + spec_extra + "  trialTemplate:\n    spec:\n" +
         (template_spec.empty() ? "      trainer:\n"
                                  "        model: {hiddenLayers: [\"${params.width}\", 8]}\n"
                                  "        optimizer: {name: \"${params.opt}\", learningRate: \"${params.lr}\"}\n"
                                  "        epochs: 2\n"
                                : template_spec);
}

TEST(ParseSweep, ReadsEveryField) {
  auto sweep = ParseSweep(Sweep("  parallelTrials: 2\n  maxFailedTrials: 1\n"
                                "  earlyStopping: {rule: asha, settings: {minResource: 10, reductionFactor: 2}}\n"),
                          ValidateTrainer);
  ASSERT_TRUE(sweep.ok()) << sweep.status().ToString();
  const SweepSpec& spec = sweep->spec;
  EXPECT_EQ(sweep->name, "s");
  EXPECT_EQ(spec.objective.metric, "testAccuracy");
  EXPECT_EQ(spec.objective.direction, hpo::Direction::kMaximize);
  EXPECT_EQ(spec.sampler.direction, hpo::Direction::kMaximize);
  EXPECT_EQ(spec.sampler.algorithm, hpo::Algorithm::kBayesian);
  EXPECT_EQ(spec.sampler.seed, 3u);
  ASSERT_EQ(spec.space.parameters.size(), 3u);
  EXPECT_TRUE(spec.space.parameters[0].log_scale);
  EXPECT_EQ(spec.space.parameters[1].type, hpo::ParameterType::kInt);
  EXPECT_EQ(spec.space.parameters[1].step, 16.0);
  EXPECT_EQ(spec.space.parameters[2].choices, (std::vector<std::string>{"adam", "sgd"}));
  EXPECT_EQ(spec.max_trials, 4);
  EXPECT_EQ(spec.parallel_trials, 2);
  EXPECT_EQ(spec.max_failed_trials, 1);
  EXPECT_EQ(spec.early_stopping.rule, hpo::EarlyStoppingRule::kAsha);
  EXPECT_EQ(spec.early_stopping.min_resource, 10);
  EXPECT_EQ(spec.early_stopping.reduction_factor, 2);
}

TEST(ParseSweep, Defaults) {
  auto sweep = ParseSweep(Sweep(), ValidateTrainer);
  ASSERT_TRUE(sweep.ok()) << sweep.status().ToString();
  EXPECT_EQ(sweep->spec.parallel_trials, 1);
  EXPECT_EQ(sweep->spec.max_failed_trials, 3);
  EXPECT_EQ(sweep->spec.early_stopping.rule, hpo::EarlyStoppingRule::kNone);
  EXPECT_FALSE(sweep->spec.objective.goal);
}

TEST(TrialJob, SubstitutesTypedValues) {
  auto sweep = ParseSweep(Sweep("", "", "      container:\n        image: \"repo/x:${params.opt}\"\n"
                                        "        args: [\"--lr=${params.lr}\", \"w${params.width}\"]\n"
                                        "      replicas: \"${params.width}\"\n"),
                          ValidateTrainer);
  ASSERT_TRUE(sweep.ok()) << sweep.status().ToString();
  hpo::Assignment assignment{{"lr", 0.01}, {"width", std::int64_t(32)}, {"opt", std::string("sgd")}};
  auto job = TrialJob(*sweep, assignment, TrialName("s", 7), ValidateTrainer);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->name, "s-7");
  EXPECT_EQ(job->spec.replicas, 32);  // a number, not the string "32"
  ASSERT_TRUE(job->spec.container);
  EXPECT_EQ(job->spec.container->image, "repo/x:sgd");
  EXPECT_EQ(job->spec.container->args, (std::vector<std::string>{"--lr=0.01", "w32"}));

  auto trainer_sweep = ParseSweep(Sweep(), ValidateTrainer);
  ASSERT_TRUE(trainer_sweep.ok());
  auto trainer_job = TrialJob(*trainer_sweep, assignment, "t", ValidateTrainer);
  ASSERT_TRUE(trainer_job.ok()) << trainer_job.status().ToString();
  EXPECT_EQ(trainer_job->spec.trainer["optimizer"]["learningRate"], json(0.01));
  EXPECT_EQ(trainer_job->spec.trainer["model"]["hiddenLayers"], json::parse("[32, 8]"));
  EXPECT_EQ(trainer_job->spec.trainer["optimizer"]["name"], json("sgd"));
}

TEST(TrialName, ShortSweepsKeepTheirNames) {
  EXPECT_EQ(TrialName("sweep", 12), "sweep-12");
  EXPECT_EQ(TrialName("1sweep", 0), "1sweep-0");
  EXPECT_EQ(TrialName(std::string(61, 'a'), 1), std::string(61, 'a') + "-1");  // exactly 63
}

TEST(TrialName, LongSweepsStayDistinctLabels) {
  struct Case {
    std::string sweep;
    std::int64_t index;
  };
  const std::string shared(58, 'a');
  const std::vector<Case> cases = {
      {std::string(62, 'a'), 1234},        {std::string(63, 'a'), 0},
      {shared + "-bbbb", 1234},            {shared + "-cccc", 1234},  // were both "<58 a>-1234"
      {shared + "-bbbb", 12},              {std::string(61, 'a'), 10},
      {std::string(59, 'a') + "-b", 7},    {std::string(60, 'a') + "-c", 7},
      {std::string(63, 'z'), 99'999},      {"s" + std::string(62, '1'), 4'000'000'000},
  };
  std::set<std::string> names;
  for (const Case& c : cases) {
    const std::string name = TrialName(c.sweep, c.index);
    EXPECT_LE(name.size(), 63u) << name;
    EXPECT_TRUE(CheckDnsLabel(name, "name").ok()) << name;
    EXPECT_TRUE(name.ends_with("-" + std::to_string(c.index))) << name;
    EXPECT_EQ(name, TrialName(c.sweep, c.index)) << "deterministic";
    EXPECT_TRUE(names.insert(name).second) << "collision: " << name;
  }
  // Every trial of sweeps that share their first 58 characters gets its own name.
  names.clear();
  for (const std::string& sweep : {shared + "-bbbb", shared + "-cccc", shared + "-bbbc"}) {
    for (std::int64_t index = 0; index < 1000; ++index) names.insert(TrialName(sweep, index));
  }
  EXPECT_EQ(names.size(), 3000u);
}

TEST(ObjectiveReading, IsTheObjectiveOfTheLatestEvaluation) {
  const SweepObjective objective{"testAccuracy", hpo::Direction::kMaximize, std::nullopt};
  json progress = json::parse(R"({"step": 50, "loss": 0.3, "phase": "training",
                                  "evaluation": {"step": 46, "metrics": {"testAccuracy": 0.9, "loss": 0.35}}})");
  std::optional<hpo::IntermediateValue> reading = ObjectiveReading(objective, progress);
  ASSERT_TRUE(reading);
  EXPECT_EQ(reading->step, 46);
  EXPECT_DOUBLE_EQ(reading->value, 0.9);
  // Another metric of the same evaluation when the objective names it.
  EXPECT_DOUBLE_EQ(ObjectiveReading({"loss", hpo::Direction::kMinimize, std::nullopt}, progress)->value, 0.35);
  for (const char* none : {R"({"step": 50, "loss": 0.3})", R"({"evaluation": {"step": 46, "metrics": {"loss": 1}}})",
                           R"({"evaluation": {"step": 0, "metrics": {"testAccuracy": 0.1}}})",
                           R"({"evaluation": {"step": "46", "metrics": {"testAccuracy": 0.1}}})",
                           R"({"evaluation": {"step": 46, "metrics": {"testAccuracy": "0.9"}}})",
                           R"({"evaluation": {"step": 46, "metrics": [0.9]}})", R"({"evaluation": 1})", "null"}) {
    EXPECT_FALSE(ObjectiveReading(objective, json::parse(none))) << none;
  }
}

TEST(SweepObjective, GoalFollowsTheDirection) {
  SweepObjective objective{"m", hpo::Direction::kMaximize, 0.9};
  EXPECT_TRUE(objective.GoalReached(0.95));
  EXPECT_FALSE(objective.GoalReached(0.85));
  objective.direction = hpo::Direction::kMinimize;
  EXPECT_TRUE(objective.GoalReached(0.85));
  objective.goal.reset();
  EXPECT_FALSE(objective.GoalReached(0.0));
}

struct Malformed {
  std::string name;
  std::string manifest;
  std::string field;  // the error must name it
};

std::vector<Malformed> MalformedSweeps() {
  const std::string params = "    - {name: lr, type: float, min: 0.001, max: 0.1}\n";
  auto with_parameters = [&](const std::string& p) { return Sweep("", p, "      trainer: {epochs: 1}\n"); };
  return {
      {"no objective", kHeader + "spec: {algorithm: {name: random}}\n", "spec.objective"},
      {"objective direction", Sweep("  earlyStopping: {rule: none}\n").replace(
                                  Sweep().find("maximize"), 8, "upward"),
       "spec.objective.direction"},
      {"objective goal text", [&] {
         std::string s = Sweep();
         return s.replace(s.find("direction: maximize"), 19, "direction: maximize, goal: high");
       }(), "spec.objective.goal"},
      {"algorithm unknown", [&] {
         std::string s = Sweep();
         return s.replace(s.find("bayesian"), 8, "hyperband");
       }(), "spec.algorithm.name"},
      {"algorithm setting of another algorithm", [&] {
         std::string s = Sweep();
         return s.replace(s.find("seed: 3"), 7, "settings: {gamma: 0.2}");
       }(), "spec.algorithm.settings.gamma"},
      {"tpe gamma out of range", [&] {
         std::string s = Sweep();
         return s.replace(s.find("name: bayesian, seed: 3"), 23, "name: tpe, settings: {gamma: 1.5}");
       }(), "spec.algorithm.settings.gamma"},
      {"negative seed", [&] {
         std::string s = Sweep();
         return s.replace(s.find("seed: 3"), 7, "seed: -1");
       }(), "spec.algorithm.seed"},
      {"no parameters", with_parameters("    []\n").replace(0, 0, ""), "spec.parameters"},
      {"min not below max", with_parameters("    - {name: lr, type: float, min: 0.1, max: 0.1}\n"),
       "spec.parameters[0].min"},
      {"log scale from zero", with_parameters("    - {name: lr, type: float, min: 0, max: 1, scale: log}\n"),
       "spec.parameters[0].min"},
      {"int bound not whole", with_parameters("    - {name: k, type: int, min: 1.5, max: 4}\n"),
       "spec.parameters[0].min"},
      {"int step not whole", with_parameters("    - {name: k, type: int, min: 1, max: 4, step: 0.5}\n"),
       "spec.parameters[0].step"},
      {"step too large", with_parameters("    - {name: k, type: int, min: 1, max: 4, step: 5}\n"),
       "spec.parameters[0].step"},
      {"log float with step", with_parameters("    - {name: lr, type: float, min: 0.1, max: 1, scale: log, step: 0.1}\n"),
       "spec.parameters[0].step"},
      {"unknown scale", with_parameters("    - {name: lr, type: float, min: 0.1, max: 1, scale: exp}\n"),
       "spec.parameters[0].scale"},
      {"empty choices", with_parameters("    - {name: o, type: categorical, choices: []}\n"),
       "spec.parameters[0].choices"},
      {"duplicate choice", with_parameters("    - {name: o, type: categorical, choices: [a, a]}\n"),
       "spec.parameters[0].choices[1]"},
      {"numeric choice", with_parameters("    - {name: o, type: categorical, choices: [1, 2]}\n"),
       "spec.parameters[0].choices"},
      {"min on a categorical", with_parameters("    - {name: o, type: categorical, choices: [a], min: 1}\n"),
       "spec.parameters[0].min"},
      {"missing max", with_parameters("    - {name: lr, type: float, min: 0.1}\n"), "spec.parameters[0].max"},
      {"bad parameter name", with_parameters("    - {name: learning-rate, type: float, min: 0.1, max: 1}\n"),
       "spec.parameters[0].name"},
      {"duplicate parameter", with_parameters(params + params), "spec.parameters[1].name"},
      {"unknown type", with_parameters("    - {name: lr, type: double, min: 0.1, max: 1}\n"),
       "spec.parameters[0].type"},
      {"no maxTrials", [&] {
         std::string s = Sweep();
         return s.replace(s.find("  maxTrials: 4\n"), 15, "");
       }(), "spec.maxTrials"},
      {"zero maxTrials", [&] {
         std::string s = Sweep();
         return s.replace(s.find("maxTrials: 4"), 12, "maxTrials: 0");
       }(), "spec.maxTrials"},
      {"more parallel than trials", Sweep("  parallelTrials: 5\n"), "spec.parallelTrials"},
      {"negative maxFailedTrials", Sweep("  maxFailedTrials: -1\n"), "spec.maxFailedTrials"},
      {"unknown spec field", Sweep("  maxTrial: 3\n"), "spec.maxTrial"},
      {"unknown early stopping rule", Sweep("  earlyStopping: {rule: hyperband}\n"), "spec.earlyStopping.rule"},
      {"asha reduction factor 1", Sweep("  earlyStopping: {rule: asha, settings: {reductionFactor: 1}}\n"),
       "spec.earlyStopping.settings.reductionFactor"},
      {"median setting under asha", Sweep("  earlyStopping: {rule: asha, settings: {minTrials: 3}}\n"),
       "spec.earlyStopping.settings.minTrials"},
      {"no trial template", [&] {
         std::string s = Sweep();
         return s.substr(0, s.find("  trialTemplate:"));
       }(), "spec.trialTemplate"},
      {"trial template without spec", [&] {
         std::string s = Sweep();
         return s.substr(0, s.find("  trialTemplate:")) + "  trialTemplate: {metadata: {}}\n";
       }(), "spec.trialTemplate.spec"},
      {"placeholder of an unknown parameter", Sweep("", "", "      trainer: {epochs: \"${params.epochs}\"}\n"),
       "spec.trialTemplate.spec.trainer.epochs"},
      {"unterminated placeholder", Sweep("", "", "      image: \"x:${params.opt\"\n"), "spec.trialTemplate.spec.image"},
      {"string value for a number field", Sweep("", "", "      trainer: {epochs: \"${params.opt}\"}\n"),
       "spec.trialTemplate.spec.trainer.epochs"},
      {"a float where an integer goes", Sweep("", "", "      replicas: \"${params.lr}\"\n"),
       "spec.trialTemplate.spec.replicas"},
      {"a range the trainer refuses", with_parameters("    - {name: lr, type: float, min: -1, max: 1}\n").replace(
           with_parameters("    - {name: lr, type: float, min: -1, max: 1}\n").find("trainer: {epochs: 1}"), 20,
           "trainer: {optimizer: {learningRate: \"${params.lr}\"}}"),
       "spec.trialTemplate.spec.trainer.optimizer.learningRate"},
      {"a choice the template refuses", Sweep("", "    - {name: b, type: categorical, choices: [cpu, tpu]}\n",
                                              "      backend: \"${params.b}\"\n"),
       "spec.trialTemplate.spec.backend"},
      {"template the TrainingJob parser refuses", Sweep("", "", "      replica: 2\n"),
       "spec.trialTemplate.spec.replica"},
      {"wrong kind", [&] {
         std::string s = Sweep();
         return s.replace(s.find("HyperparameterSweep"), 19, "Experiment");
       }(), "kind"},
      {"bad name", [&] {
         std::string s = Sweep();
         return s.replace(s.find("name: s}"), 8, "name: S_1}");
       }(), "metadata.name"},
  };
}

TEST(ParseSweep, RefusesMalformedSweepsNamingTheField) {
  for (const auto& c : MalformedSweeps()) {
    SCOPED_TRACE(c.name + "\n" + c.manifest);
    auto sweep = ParseSweep(c.manifest, ValidateTrainer);
    ASSERT_FALSE(sweep.ok());
    EXPECT_EQ(sweep.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(sweep.status().message().find(c.field), std::string::npos) << sweep.status().message();
  }
}

TEST(ParseSweep, AcceptsTheExample) {
  auto sweep = LoadSweepFile(MLSCALE_EXAMPLES_DIR "/sweep-digits-bayesian.yaml", ValidateTrainer);
  ASSERT_TRUE(sweep.ok()) << sweep.status().ToString();
  EXPECT_EQ(sweep->spec.parallel_trials, 2);
  EXPECT_EQ(sweep->spec.space.parameters.size(), 3u);
}

}  // namespace
}  // namespace mlscale::api
