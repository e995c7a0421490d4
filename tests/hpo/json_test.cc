#include "mlscale/hpo/json.h"

#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mlscale::hpo {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

const char* kSpace = R"({"parameters": [
  {"name": "lr", "type": "float", "low": 1e-5, "high": 1, "log": true},
  {"name": "dropout", "type": "float", "low": 0, "high": 0.5, "step": 0.1},
  {"name": "layers", "type": "int", "low": 1, "high": 8},
  {"name": "opt", "type": "categorical", "choices": ["adam", "sgd"]}]})";

const char* kTrials = R"([
  {"id": "t0", "assignment": {"lr": 0.01, "dropout": 0.2, "layers": 3, "opt": "adam"},
   "state": "completed", "value": 0.25, "intermediate": [{"step": 1, "value": 0.5}, {"step": 2, "value": 0.3}]},
  {"id": "t1", "assignment": {"lr": 0.001, "dropout": 0.0, "layers": 4.0, "opt": "sgd"}, "state": "pending"}])";

SearchSpace Space() { return *SpaceFromJson(json::parse(kSpace)); }

TEST(Json, SpaceTrialsAndConfigsRoundTrip) {
  StatusOr<SearchSpace> space = SpaceFromJson(json::parse(kSpace));
  ASSERT_TRUE(space.ok()) << space.status().ToString();
  EXPECT_EQ(SpaceToJson(*space), SpaceToJson(*SpaceFromJson(SpaceToJson(*space))));
  EXPECT_TRUE(space->parameters[0].log_scale);
  EXPECT_EQ(space->parameters[1].step, 0.1);

  StatusOr<std::vector<Trial>> trials = TrialsFromJson(*space, json::parse(kTrials));
  ASSERT_TRUE(trials.ok()) << trials.status().ToString();
  ASSERT_EQ(trials->size(), 2u);
  EXPECT_EQ((*trials)[1].assignment.at("layers"), ParameterValue(std::int64_t{4}));  // 4.0 accepted as int
  EXPECT_EQ((*trials)[0].intermediate_values[1].value, 0.3);
  StatusOr<std::vector<Trial>> again = TrialsFromJson(*space, TrialsToJson(*trials));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(TrialsToJson(*again), TrialsToJson(*trials));

  // Suggestions made from a history persisted as JSON equal those from the original.
  SamplerConfig config;
  config.algorithm = Algorithm::kTpe;
  config.seed = 3;
  StatusOr<SamplerConfig> parsed_config = SamplerConfigFromJson(SamplerConfigToJson(config));
  ASSERT_TRUE(parsed_config.ok());
  EXPECT_EQ(SamplerConfigToJson(*parsed_config), SamplerConfigToJson(config));
  auto a = Suggest(config, *space, *trials, 2), b = Suggest(*parsed_config, *space, *again, 2);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < 2; ++i) EXPECT_EQ(AssignmentToJson((*a)[i]), AssignmentToJson((*b)[i]));
  StatusOr<Assignment> assignment = AssignmentFromJson(*space, AssignmentToJson((*a)[0]));
  ASSERT_TRUE(assignment.ok());
  EXPECT_EQ(AssignmentKey(*assignment), AssignmentKey((*a)[0]));

  EarlyStoppingConfig stopping;
  stopping.rule = EarlyStoppingRule::kAsha;
  stopping.min_resource = 2;
  stopping.reduction_factor = 4;
  StatusOr<EarlyStoppingConfig> parsed_stopping = EarlyStoppingConfigFromJson(EarlyStoppingConfigToJson(stopping));
  ASSERT_TRUE(parsed_stopping.ok());
  EXPECT_EQ(parsed_stopping->min_resource, 2);
  EXPECT_EQ(parsed_stopping->reduction_factor, 4);
}

TEST(Json, MalformedSpacesAreRejectedWithThePath) {
  struct Case {
    const char* text;
    const char* message;
  };
  std::vector<Case> cases = {
      {R"([])", "space: expected an object"},
      {R"({})", "parameters: expected an array"},
      {R"({"parameters": [3]})", "parameters[0]: expected an object"},
      {R"({"parameters": [{"type": "float", "low": 0, "high": 1}]})", "parameters[0].name: missing"},
      {R"({"parameters": [{"name": "x", "low": 0, "high": 1}]})", "parameters[0].type: missing"},
      {R"({"parameters": [{"name": "x", "type": "double", "low": 0, "high": 1}]})",
       "'double' is not one of: float, int, categorical"},
      {R"({"parameters": [{"name": "x", "type": "float", "low": "0", "high": 1}]})", "parameters[0].low: expected a number"},
      {R"({"parameters": [{"name": "x", "type": "float", "high": 1}]})", "parameters[0].low: missing"},
      {R"({"parameters": [{"name": "x", "type": "float", "low": 0, "high": 1, "log": "yes"}]})", "expected true or false"},
      {R"({"parameters": [{"name": "x", "type": "categorical", "choices": "a"}]})", "choices: expected an array"},
      {R"({"parameters": [{"name": "x", "type": "categorical", "choices": ["a", 1]}]})", "choices[1]: expected a string"},
      {R"({"parameters": [{"name": "x", "type": "float", "low": 1, "high": 0}]})", "must be less than high"},
      {R"({"parameters": [{"name": 5, "type": "float", "low": 0, "high": 1}]})", "name: expected a string"},
  };
  for (const Case& c : cases) {
    StatusOr<SearchSpace> space = SpaceFromJson(json::parse(c.text));
    ASSERT_FALSE(space.ok()) << c.text;
    EXPECT_EQ(space.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(space.status().message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(Json, MalformedTrialsAndConfigsAreRejectedWithThePath) {
  SearchSpace space = Space();
  const char* assignment = R"("assignment": {"lr": 0.01, "dropout": 0.2, "layers": 3, "opt": "adam"})";
  auto trial = [&](const std::string& rest) { return "[{\"id\": \"t\", " + std::string(assignment) + ", " + rest + "}]"; };
  struct Case {
    std::string text;
    const char* message;
  };
  std::vector<Case> cases = {
      {R"({"id": "t"})", "trials: expected an array"},
      {trial(R"("state": "done")"), "trials[0].state: 'done' is not one of"},
      {trial(R"("state": "completed")"), "a completed trial needs a finite value"},
      {trial(R"("state": "completed", "value": "0.5")"), "trials[0].value: expected a number"},
      {trial(R"("state": "pending", "intermediate": {})"), "intermediate: expected an array"},
      {trial(R"("state": "pending", "intermediate": [{"step": 1.5, "value": 1}])"), "intermediate[0].step: expected an integer"},
      {trial(R"("state": "pending", "intermediate": [{"step": 1}])"), "needs step and value"},
      {trial(R"("state": "pending", "intermediate": [{"step": 2, "value": 1}, {"step": 1, "value": 1}])"), "steps must increase"},
      {R"([{"id": "t", "state": "pending", "assignment": {"lr": 0.01}}])", "'dropout': missing"},
      {R"([{"id": "t", "state": "pending", "assignment": {"lr": 0.01, "dropout": 0.2, "layers": 3.5, "opt": "adam"}}])",
       "assignment.layers: expected an integer"},
      {R"([{"id": "t", "state": "pending", "assignment": {"lr": 0.01, "dropout": 0.2, "layers": 3, "opt": "adam", "x": 1}}])",
       "assignment.x: not a parameter of the space"},
      {R"([{"state": "pending"}])", "trials[0].id: missing"},
  };
  for (const Case& c : cases) {
    StatusOr<std::vector<Trial>> trials = TrialsFromJson(space, json::parse(c.text));
    ASSERT_FALSE(trials.ok()) << c.text;
    EXPECT_THAT(trials.status().message(), HasSubstr(c.message)) << c.text;
  }
  EXPECT_THAT(SamplerConfigFromJson(json::parse(R"({"algorithm": "hyperband"})")).status().message(),
              HasSubstr("sampler.algorithm: 'hyperband' is not one of: random, grid, bayesian, tpe"));
  EXPECT_THAT(SamplerConfigFromJson(json::parse(R"({"seed": -1})")).status().message(), HasSubstr("sampler.seed: out of range"));
  EXPECT_THAT(SamplerConfigFromJson(json::parse(R"({"bayesian": {"candidates": 0}})")).status().message(),
              HasSubstr("bayesian.candidates must be >= 1"));
  EXPECT_THAT(SamplerConfigFromJson(json::parse(R"({"tpe": []})")).status().message(), HasSubstr("sampler.tpe: expected an object"));
  EXPECT_THAT(EarlyStoppingConfigFromJson(json::parse(R"({"rule": "hyperband"})")).status().message(),
              HasSubstr("earlyStopping.rule"));
  EXPECT_THAT(EarlyStoppingConfigFromJson(json::parse(R"({"minResource": 1e3})")).status().message(),
              HasSubstr("minResource: expected an integer"));
  EXPECT_EQ(ParseJson("{\"parameters\": [").status().code(), StatusCode::kDataLoss);
}

TEST(Json, RandomlyCorruptedDocumentsNeverCrash) {
  // Fuzz loop: truncate and flip characters of valid documents; every result must be a
  // value or an error, and accepted histories must be valid.
  std::mt19937 random(5);
  std::string documents[] = {kSpace, kTrials};
  SearchSpace space = Space();
  const std::string alphabet = "{}[]\",:0123456789.-eE truefalsnul";
  for (int i = 0; i < 3000; ++i) {
    std::string text = documents[i % 2];
    int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; ++e) {
      std::size_t at = random() % text.size();
      switch (random() % 3) {
        case 0: text[at] = alphabet[random() % alphabet.size()]; break;
        case 1: text.erase(at, 1 + random() % 5); break;
        default: text.insert(at, 1, alphabet[random() % alphabet.size()]); break;
      }
      if (text.empty()) text = "x";
    }
    StatusOr<json> parsed = ParseJson(text);
    if (!parsed.ok()) continue;
    if (i % 2 == 0) {
      StatusOr<SearchSpace> s = SpaceFromJson(*parsed);
      if (s.ok()) {
        EXPECT_TRUE(ValidateSpace(*s).ok());
      }
    } else {
      StatusOr<std::vector<Trial>> trials = TrialsFromJson(space, *parsed);
      if (trials.ok()) {
        EXPECT_TRUE(ValidateHistory(space, *trials).ok());
      }
    }
  }
}

}  // namespace
}  // namespace mlscale::hpo
