#include "mlscale/hpo/early_stopping.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mlscale::hpo {
namespace {

using ::testing::HasSubstr;

// A trial with values at steps 1..n.
Trial Curve(std::string id, TrialState state, std::vector<double> values) {
  Trial trial;
  trial.id = std::move(id);
  trial.state = state;
  for (std::size_t i = 0; i < values.size(); ++i) {
    trial.intermediate_values.push_back({static_cast<std::int64_t>(i + 1), values[i]});
  }
  if (state == TrialState::kCompleted) trial.value = values.back();
  return trial;
}

EarlyStoppingConfig Median(int min_trials) {
  EarlyStoppingConfig config;
  config.rule = EarlyStoppingRule::kMedian;
  config.min_trials = min_trials;
  return config;
}

EarlyStoppingConfig Asha(std::int64_t min_resource, int reduction_factor) {
  EarlyStoppingConfig config;
  config.rule = EarlyStoppingRule::kAsha;
  config.min_resource = min_resource;
  config.reduction_factor = reduction_factor;
  return config;
}

StopDecision Decide(const EarlyStoppingConfig& config, const std::vector<Trial>& history, Direction direction = Direction::kMinimize) {
  StatusOr<StopDecision> decision = DecideEarlyStop(config, direction, history, "running");
  EXPECT_TRUE(decision.ok()) << decision.status().ToString();
  return decision.ok() ? *decision : StopDecision::kContinue;
}

TEST(MedianStoppingRule, StopsTrialsWorseThanTheMedianAtTheSameStep) {
  EarlyStoppingConfig config = Median(3);
  std::vector<Trial> history = {
      Curve("a", TrialState::kCompleted, {1.0, 0.8, 0.6, 0.5}),
      Curve("b", TrialState::kCompleted, {1.0, 0.9, 0.7, 0.6}),
      Curve("c", TrialState::kCompleted, {1.2, 1.0, 0.9, 0.8}),
      Curve("d", TrialState::kStopped, {1.5, 1.4}),  // never reached step 3: not compared there
  };
  // Best-so-far at step 3: a 0.6, b 0.7, c 0.9 -> median 0.7.
  history.push_back(Curve("running", TrialState::kPending, {1.1, 0.9, 0.75}));
  EXPECT_EQ(Decide(config, history), StopDecision::kStop);
  history.back() = Curve("running", TrialState::kPending, {1.1, 0.9, 0.65});
  EXPECT_EQ(Decide(config, history), StopDecision::kContinue);
  // Its best-so-far counts, not just its latest value.
  history.back() = Curve("running", TrialState::kPending, {1.1, 0.5, 0.95});
  EXPECT_EQ(Decide(config, history), StopDecision::kContinue);
  // Warm-up and too few competitors: no decision yet.
  history.back() = Curve("running", TrialState::kPending, {2.0, 2.0, 2.0});
  EXPECT_EQ(Decide(config, history), StopDecision::kStop);
  config.warmup_steps = 4;
  EXPECT_EQ(Decide(config, history), StopDecision::kContinue);
  config.warmup_steps = 0;
  config.min_trials = 4;
  EXPECT_EQ(Decide(config, history), StopDecision::kContinue);
}

TEST(MedianStoppingRule, RespectsMaximization) {
  EarlyStoppingConfig config = Median(3);
  std::vector<Trial> history = {Curve("a", TrialState::kCompleted, {0.5, 0.6}),
                                Curve("b", TrialState::kCompleted, {0.6, 0.7}),
                                Curve("c", TrialState::kCompleted, {0.7, 0.8}),
                                Curve("running", TrialState::kPending, {0.4, 0.65})};
  EXPECT_EQ(Decide(config, history, Direction::kMaximize), StopDecision::kStop);  // median 0.7
  history.back() = Curve("running", TrialState::kPending, {0.4, 0.75});
  EXPECT_EQ(Decide(config, history, Direction::kMaximize), StopDecision::kContinue);
}

TEST(Asha, PromotesTheTopThirdAtEachRung) {
  EarlyStoppingConfig config = Asha(1, 3);
  std::vector<Trial> history;
  for (int i = 1; i <= 8; ++i) history.push_back(Curve("t" + std::to_string(i), TrialState::kStopped, {static_cast<double>(i)}));
  // Rung 1 holds 1..8 and the running trial: 9 values, the best 3 continue.
  history.push_back(Curve("running", TrialState::kPending, {2.5}));
  EXPECT_EQ(Decide(config, history), StopDecision::kContinue);
  history.back() = Curve("running", TrialState::kPending, {3.5});
  EXPECT_EQ(Decide(config, history), StopDecision::kStop);
  // Between rungs (step 2) it is still judged at rung 1.
  history.back() = Curve("running", TrialState::kPending, {3.5, 0.1});
  EXPECT_EQ(Decide(config, history), StopDecision::kStop);
  // At step 3 it reaches rung 3, where only t1 and t2 (with 0.9 and 0.8) have been.
  history[0] = Curve("t1", TrialState::kCompleted, {1, 0.95, 0.9});
  history[1] = Curve("t2", TrialState::kCompleted, {2, 0.9, 0.8});
  history.back() = Curve("running", TrialState::kPending, {2.5, 0.9, 0.7});
  EXPECT_EQ(Decide(config, history), StopDecision::kContinue);  // the best of 3
  history.back() = Curve("running", TrialState::kPending, {2.5, 0.9, 0.85});
  EXPECT_EQ(Decide(config, history), StopDecision::kStop);
}

TEST(Asha, BeforeTheFirstRungAndAloneTrialsContinue) {
  EarlyStoppingConfig config = Asha(4, 2);
  std::vector<Trial> history = {Curve("a", TrialState::kCompleted, {1, 1, 1, 0.1}),
                                Curve("running", TrialState::kPending, {5, 5, 5})};
  EXPECT_EQ(Decide(config, history), StopDecision::kContinue);  // step 3 < min resource 4
  history.back() = Curve("running", TrialState::kPending, {5, 5, 5, 5});
  EXPECT_EQ(Decide(config, history), StopDecision::kStop);  // 2 values at rung 4: only the best goes on
  EXPECT_EQ(Decide(config, {Curve("running", TrialState::kPending, {5, 5, 5, 5})}), StopDecision::kContinue);
}

TEST(EarlyStopping, ReportsBadRequests) {
  EarlyStoppingConfig config = Asha(1, 3);
  std::vector<Trial> history = {Curve("done", TrialState::kCompleted, {1.0})};
  EXPECT_EQ(DecideEarlyStop(config, Direction::kMinimize, history, "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(DecideEarlyStop(config, Direction::kMinimize, history, "done").status().code(),
            StatusCode::kFailedPrecondition);
  config.reduction_factor = 1;
  EXPECT_THAT(DecideEarlyStop(config, Direction::kMinimize, history, "done").status().message(),
              HasSubstr("reductionFactor must be >= 2"));
  EXPECT_EQ(*DecideEarlyStop(EarlyStoppingConfig{}, Direction::kMinimize,
                             {Curve("running", TrialState::kPending, {9.0})}, "running"),
            StopDecision::kContinue);
}

}  // namespace
}  // namespace mlscale::hpo
