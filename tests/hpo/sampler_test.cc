#include "mlscale/hpo/sampler.h"

#include <cmath>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "parameters.h"

namespace mlscale::hpo {
namespace {

using ::testing::HasSubstr;

using testing::Categorical;
using testing::Float;
using testing::Int;

Trial MakeTrial(std::string id, Assignment assignment, TrialState state, std::optional<double> value = std::nullopt) {
  Trial trial;
  trial.id = std::move(id);
  trial.assignment = std::move(assignment);
  trial.state = state;
  trial.value = value;
  return trial;
}

// x in [-2, 2], lr in [1e-4, 1] (log), layers in {1..5}, opt in {adam, sgd, lamb}.
SearchSpace MixedSpace() {
  return SearchSpace{{Float("x", -2, 2), Float("lr", 1e-4, 1, true),
                      Int("layers", 1, 5), Categorical("opt", {"adam", "sgd", "lamb"})}};
}

double MixedObjective(const Assignment& a) {
  double x = std::get<double>(a.at("x"));
  double lr = std::log10(std::get<double>(a.at("lr")));
  double layers = static_cast<double>(std::get<std::int64_t>(a.at("layers")));
  double opt = std::get<std::string>(a.at("opt")) == "sgd" ? 0.0 : 0.5;
  return (x - 0.5) * (x - 0.5) + (lr + 2) * (lr + 2) + 0.1 * (layers - 3) * (layers - 3) + opt;
}

SamplerConfig Config(Algorithm algorithm, std::uint64_t seed = 7) {
  SamplerConfig config;
  config.algorithm = algorithm;
  config.seed = seed;
  config.bayesian.candidates = 256;  // keep the tests fast
  return config;
}

// Runs `trials` sequential suggestions, completing each with the objective.
std::vector<Trial> RunSequentially(const SamplerConfig& config, const SearchSpace& space, int trials) {
  std::vector<Trial> history;
  for (int i = 0; i < trials; ++i) {
    StatusOr<std::vector<Assignment>> next = Suggest(config, space, history, 1);
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    if (!next.ok() || next->empty()) break;
    history.push_back(MakeTrial("t" + std::to_string(i), next->front(), TrialState::kCompleted,
                                MixedObjective(next->front())));
  }
  return history;
}

std::vector<std::string> Keys(const std::vector<Assignment>& assignments) {
  std::vector<std::string> keys;
  for (const Assignment& a : assignments) keys.push_back(AssignmentKey(a));
  return keys;
}

std::string AlgorithmName(const ::testing::TestParamInfo<Algorithm>& param) {
  static const char* const kNames[] = {"Random", "Grid", "Bayesian", "Tpe"};
  return kNames[static_cast<int>(param.param)];
}

class EveryAlgorithm : public ::testing::TestWithParam<Algorithm> {};

INSTANTIATE_TEST_SUITE_P(Samplers, EveryAlgorithm,
                         ::testing::Values(Algorithm::kRandom, Algorithm::kGrid, Algorithm::kTpe, Algorithm::kBayesian),
                         AlgorithmName);

TEST_P(EveryAlgorithm, SameSeedAndHistoryGiveTheSameSuggestions) {
  SearchSpace space = MixedSpace();
  SamplerConfig config = Config(GetParam());
  std::vector<Trial> history = RunSequentially(config, space, 14);
  ASSERT_EQ(history.size(), 14u);
  StatusOr<std::vector<Assignment>> first = Suggest(config, space, history, 3);
  StatusOr<std::vector<Assignment>> second = Suggest(config, space, history, 3);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(Keys(*first), Keys(*second));
  // A replayed run (a restarted controller) reaches the same history.
  std::vector<Trial> replay = RunSequentially(config, space, 14);
  for (std::size_t i = 0; i < history.size(); ++i) {
    EXPECT_EQ(AssignmentKey(replay[i].assignment), AssignmentKey(history[i].assignment));
  }
  if (GetParam() != Algorithm::kGrid) {
    StatusOr<std::vector<Assignment>> other = Suggest(Config(GetParam(), 8), space, history, 3);
    ASSERT_TRUE(other.ok());
    EXPECT_NE(Keys(*first), Keys(*other));
  }
}

TEST_P(EveryAlgorithm, PendingTrialsNeverProduceDuplicates) {
  SearchSpace space = MixedSpace();
  SamplerConfig config = Config(GetParam());
  std::vector<Trial> history = RunSequentially(config, space, 12);
  // Four running trials: suggestions made for them earlier, not finished yet.
  StatusOr<std::vector<Assignment>> running = Suggest(config, space, history, 4);
  ASSERT_TRUE(running.ok());
  for (std::size_t i = 0; i < running->size(); ++i) {
    history.push_back(MakeTrial("p" + std::to_string(i), (*running)[i], TrialState::kPending));
  }
  StatusOr<std::vector<Assignment>> batch = Suggest(config, space, history, 8);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->size(), 8u);
  std::set<std::string> seen;
  for (const Trial& t : history) seen.insert(AssignmentKey(t.assignment));
  for (const Assignment& a : *batch) {
    EXPECT_TRUE(ValidateAssignment(space, a).ok());
    EXPECT_TRUE(seen.insert(AssignmentKey(a)).second) << "duplicate " << AssignmentKey(a);
  }
}

TEST_P(EveryAlgorithm, SmallFiniteSpaceIsExhaustedWithoutRepeats) {
  SearchSpace space;
  space.parameters = {Int("n", 1, 3), Categorical("c", {"a", "b"})};
  SamplerConfig config = Config(GetParam());
  config.bayesian.startup_trials = 2;
  config.tpe.startup_trials = 2;
  std::vector<Trial> history;
  std::set<std::string> seen;
  for (int round = 0; round < 4; ++round) {
    StatusOr<std::vector<Assignment>> batch = Suggest(config, space, history, 2);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    for (const Assignment& a : *batch) {
      EXPECT_TRUE(seen.insert(AssignmentKey(a)).second);
      history.push_back(MakeTrial(std::to_string(history.size()), a, TrialState::kCompleted,
                                  static_cast<double>(std::get<std::int64_t>(a.at("n")))));
    }
  }
  EXPECT_EQ(seen.size(), 6u);  // all of them, then nothing more
  StatusOr<std::vector<Assignment>> none = Suggest(config, space, history, 3);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(ModelBasedSamplers, FollowTheDirection) {
  SearchSpace space;
  space.parameters = {Float("x", 0, 1)};
  std::vector<Trial> history;
  for (int i = 0; i < 16; ++i) {
    double x = (i + 0.5) / 16;
    history.push_back(MakeTrial(std::to_string(i), {{"x", x}}, TrialState::kCompleted, x));  // value = x
  }
  for (auto [algorithm, direction] : {std::pair{Algorithm::kTpe, Direction::kMinimize}, std::pair{Algorithm::kTpe, Direction::kMaximize},
                                      std::pair{Algorithm::kBayesian, Direction::kMinimize},
                                      std::pair{Algorithm::kBayesian, Direction::kMaximize}}) {
    SamplerConfig config = Config(algorithm);
    config.direction = direction;
    StatusOr<std::vector<Assignment>> next = Suggest(config, space, history, 1);
    ASSERT_TRUE(next.ok() && next->size() == 1);
    double x = std::get<double>(next->front().at("x"));
    if (direction == Direction::kMinimize) {
      EXPECT_LT(x, 0.25);
    } else {
      EXPECT_GT(x, 0.75);
    }
  }
}

TEST(GridSampler, EnumeratesInOrderAndIsExhausted) {
  SearchSpace space;
  space.parameters = {Float("x", 0, 1), Categorical("c", {"a", "b"})};
  SamplerConfig config = Config(Algorithm::kGrid);
  config.grid.points_per_float = 3;
  std::vector<Trial> history;
  StatusOr<std::vector<Assignment>> first = Suggest(config, space, history, 4);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Keys(*first), (std::vector<std::string>{"c=\"a\",x=0.0", "c=\"b\",x=0.0", "c=\"a\",x=0.5",
                                                    "c=\"b\",x=0.5"}));
  for (const Assignment& a : *first) {
    history.push_back(MakeTrial(std::to_string(history.size()), a, TrialState::kPending));
  }
  StatusOr<std::vector<Assignment>> rest = Suggest(config, space, history, 4);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(Keys(*rest), (std::vector<std::string>{"c=\"a\",x=1.0", "c=\"b\",x=1.0"}));
  for (const Assignment& a : *rest) {
    history.push_back(MakeTrial(std::to_string(history.size()), a, TrialState::kFailed));
  }
  StatusOr<std::vector<Assignment>> none = Suggest(config, space, history, 1);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(RandomSampler, QuasiRandomPointsFillEveryCell) {
  // The first 16 Sobol points in 2-D put exactly one point in each cell of a 4x4 grid
  // (a (0,4,2)-net); the seed's digital shift keeps that property.
  SearchSpace space;
  space.parameters = {Float("a", 0, 1), Float("b", 0, 1)};
  for (std::uint64_t seed : {0u, 1u, 99u}) {
    SamplerConfig config = Config(Algorithm::kRandom, seed);
    config.random.quasi_random = true;
    StatusOr<std::vector<Assignment>> points = Suggest(config, space, {}, 16);
    ASSERT_TRUE(points.ok());
    std::set<int> cells;
    for (const Assignment& p : *points) {
      int i = static_cast<int>(std::get<double>(p.at("a")) * 4);
      int j = static_cast<int>(std::get<double>(p.at("b")) * 4);
      cells.insert(i * 4 + j);
    }
    EXPECT_EQ(cells.size(), 16u) << "seed " << seed;
  }
}

TEST(BayesianSampler, BatchWithPendingTrialsIsSpreadOut) {
  SearchSpace space;
  space.parameters = {Float("a", 0, 1), Float("b", 0, 1)};
  SamplerConfig config = Config(Algorithm::kBayesian);
  std::vector<Trial> history;
  for (int i = 0; i < 12; ++i) {
    double a = (i % 4 + 0.5) / 4, b = (i / 4 + 0.5) / 3;
    history.push_back(MakeTrial(std::to_string(i), {{"a", a}, {"b", b}}, TrialState::kCompleted,
                                (a - 0.3) * (a - 0.3) + (b - 0.6) * (b - 0.6)));
  }
  StatusOr<std::vector<Assignment>> batch = Suggest(config, space, history, 4);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->size(), 4u);
  for (std::size_t i = 0; i < batch->size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      double da = std::get<double>((*batch)[i].at("a")) - std::get<double>((*batch)[j].at("a"));
      double db = std::get<double>((*batch)[i].at("b")) - std::get<double>((*batch)[j].at("b"));
      EXPECT_GT(std::hypot(da, db), 1e-3) << "suggestions " << i << " and " << j << " coincide";
    }
  }
}

TEST(BayesianSampler, FindsTheMinimumOfASmoothFunctionBetterThanRandom) {
  SearchSpace space = MixedSpace();
  auto best = [&](Algorithm algorithm) {
    double value = INFINITY;
    for (const Trial& t : RunSequentially(Config(algorithm), space, 30)) value = std::min(value, *t.value);
    return value;
  };
  double gp = best(Algorithm::kBayesian), random = best(Algorithm::kRandom);
  EXPECT_LT(gp, 0.05);
  EXPECT_LT(gp, random);
}

TEST(Suggest, RejectsBadInput) {
  SearchSpace space = MixedSpace();
  SamplerConfig config = Config(Algorithm::kRandom);
  EXPECT_THAT(Suggest(config, space, {}, -1).status().message(), HasSubstr("count must be >= 0"));
  EXPECT_THAT(Suggest(config, SearchSpace{}, {}, 1).status().message(), HasSubstr("search space: search space has no parameters"));
  Trial bad = MakeTrial("t1", {{"x", 9.0}}, TrialState::kCompleted, 1.0);
  EXPECT_THAT(Suggest(config, space, {bad}, 1).status().message(), HasSubstr("history: trial 't1'"));
  Trial no_value = MakeTrial("t2", RunSequentially(config, space, 1)[0].assignment, TrialState::kCompleted);
  EXPECT_THAT(Suggest(config, space, {no_value}, 1).status().message(), HasSubstr("needs a finite value"));
  config.tpe.gamma = 1.5;
  EXPECT_THAT(Suggest(config, space, {}, 1).status().message(), HasSubstr("tpe.gamma"));
}

}  // namespace
}  // namespace mlscale::hpo
