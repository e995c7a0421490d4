// The autoscaler's rules one at a time, on small hand-computed scenarios, and closed-loop runs
// (ready replicas follow the decisions after a pod start time) that must not oscillate.
#include "mlscale/controllers/inference/autoscaler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

namespace mlscale::inference {
namespace {

using std::chrono::seconds;

AutoscalerSettings Target10() {
  AutoscalerSettings settings;
  settings.target = 10;
  return settings;
}

// Runs `autoscaler` open loop from second `from` to `to` (inclusive): load(t) and ready(t) given.
std::vector<AutoscalerDecision> Drive(Autoscaler& autoscaler, int from, int to,
                                      const std::function<double(int)>& load,
                                      const std::function<int(int)>& ready) {
  std::vector<AutoscalerDecision> decisions;
  for (int t = from; t <= to; ++t) {
    autoscaler.Record(seconds(t), load(t), ready(t));
    decisions.push_back(autoscaler.Decide(seconds(t), ready(t)));
  }
  return decisions;
}

// Runs closed loop for `duration` seconds: a replica asked for is ready `pod_start` seconds
// later, a replica removed is gone at once. Returns the desired replicas per second.
std::vector<int> ClosedLoop(const AutoscalerSettings& settings, int duration, int pod_start,
                            const std::function<double(int)>& load, int initial_ready = 1) {
  Autoscaler autoscaler(settings, initial_ready, seconds(0));
  std::vector<int> desired;
  int ready = initial_ready;
  for (int t = 0; t < duration; ++t) {
    if (t >= pod_start) {
      const int asked = desired[t - pod_start];
      const int current = desired.empty() ? ready : desired.back();
      ready = std::min(asked, current);  // started pods are ready; removals are immediate
    }
    autoscaler.Record(seconds(t), load(t), ready);
    desired.push_back(autoscaler.Decide(seconds(t), ready).desired_replicas);
  }
  return desired;
}

int Changes(const std::vector<int>& values, size_t from = 0) {
  int changes = 0;
  for (size_t i = from + 1; i < values.size(); ++i) changes += values[i] != values[i - 1];
  return changes;
}

TEST(AutoscalerSettingsTest, DefaultsAreKnatives) {
  const AutoscalerSettings settings;
  EXPECT_EQ(settings.metric, ScalingMetric::kConcurrency);
  EXPECT_EQ(settings.target, 70);  // container-concurrency-target-default 100 x 70 % utilization
  EXPECT_EQ(settings.min_replicas, 0);
  EXPECT_EQ(settings.max_replicas, 0);
  EXPECT_EQ(settings.stable_window, seconds(60));
  EXPECT_EQ(settings.panic_window, seconds(6));
  EXPECT_EQ(settings.panic_threshold, 2.0);
  EXPECT_EQ(settings.max_scale_up_rate, 1000);
  EXPECT_EQ(settings.max_scale_down_rate, 2);
  EXPECT_EQ(settings.scale_down_delay, seconds(0));
  EXPECT_EQ(settings.scale_to_zero_grace_period, seconds(30));
  EXPECT_EQ(settings.activation_scale, 1);
  EXPECT_TRUE(settings.Validate().ok());
}

TEST(AutoscalerSettingsTest, ValidateNamesTheBadField) {
  struct Case {
    std::function<void(AutoscalerSettings&)> change;
    std::string message;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<Case> cases = {
      {[](auto& s) { s.target = 0; }, "target: must be > 0, got 0"},
      {[&](auto& s) { s.target = nan; }, "target: must be > 0"},
      {[](auto& s) { s.target = std::numeric_limits<double>::infinity(); }, "target: must be > 0"},
      {[](auto& s) { s.min_replicas = -1; }, "minReplicas: must be >= 0, got -1"},
      {[](auto& s) { s.max_replicas = -2; }, "maxReplicas: must be >= 0 (0: no limit), got -2"},
      {[](auto& s) { s.min_replicas = 3, s.max_replicas = 2; }, "maxReplicas: must be >= minReplicas (3), got 2"},
      {[](auto& s) { s.stable_window = seconds(4); }, "stableWindow: must be between 5s and 1h, got 4s"},
      {[](auto& s) { s.stable_window = seconds(3601); }, "stableWindow: must be between 5s and 1h"},
      {[](auto& s) { s.panic_window = seconds(0); }, "panicWindow: must be between 1s and the stable window (60s), got 0s"},
      {[](auto& s) { s.panic_window = seconds(61); }, "panicWindow: must be between 1s and the stable window"},
      {[](auto& s) { s.panic_threshold = 1.0; }, "panicThreshold: must be between 1.1 and 10, got 1"},
      {[&](auto& s) { s.panic_threshold = nan; }, "panicThreshold: must be between 1.1 and 10"},
      {[](auto& s) { s.max_scale_up_rate = 1; }, "maxScaleUpRate: must be > 1, got 1"},
      {[](auto& s) { s.max_scale_down_rate = 0.5; }, "maxScaleDownRate: must be > 1, got 0.5"},
      {[](auto& s) { s.scale_down_delay = seconds(-1); }, "scaleDownDelay: must be between 0s and 1h, got -1s"},
      {[](auto& s) { s.scale_to_zero_grace_period = seconds(-5); }, "scaleToZeroGracePeriod: must be between 0s and 1h"},
      {[](auto& s) { s.activation_scale = 0; }, "activationScale: must be >= 1, got 0"},
  };
  for (const Case& c : cases) {
    AutoscalerSettings settings;
    c.change(settings);
    const Status status = settings.Validate();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(status.message().rfind(c.message, 0), 0u) << status.message() << " does not start with " << c.message;
  }
}

TEST(AutoscalerTest, SteadyLoadAtTargetKeepsTheSizeFromTheFirstTick) {
  AutoscalerSettings settings;  // target 70
  Autoscaler autoscaler(settings, 2, seconds(0));
  const auto decisions = Drive(autoscaler, 0, 300, [](int) { return 140.0; }, [](int) { return 2; });
  for (const auto& decision : decisions) ASSERT_EQ(decision.desired_replicas, 2);
}

TEST(AutoscalerTest, NoDataKeepsTheCurrentSizeWithinBounds) {
  AutoscalerSettings settings = Target10();
  Autoscaler autoscaler(settings, 1, seconds(0));
  EXPECT_EQ(autoscaler.Decide(seconds(0), 3).desired_replicas, 3);
  settings.min_replicas = 5;
  autoscaler.UpdateSettings(settings);
  EXPECT_EQ(autoscaler.Decide(seconds(1), 3).desired_replicas, 5);
  // Data older than a stable window is no data either.
  autoscaler.Record(seconds(2), 50, 3);
  EXPECT_EQ(autoscaler.Decide(seconds(62), 3).desired_replicas, 5);   // average 50 -> 5
  EXPECT_EQ(autoscaler.Decide(seconds(63), 7).desired_replicas, 7);   // nothing since 2 s
}

TEST(AutoscalerTest, ObservationsInTheSameSecondAddUp) {
  Autoscaler autoscaler(Target10(), 1, seconds(0));
  autoscaler.Record(seconds(0), 30, 1);
  autoscaler.Record(seconds(0), 40, 1);  // a second router's share
  const auto decision = autoscaler.Decide(seconds(0), 7);
  EXPECT_EQ(decision.stable_demand, 70);
  EXPECT_EQ(decision.desired_replicas, 7);
}

TEST(AutoscalerTest, BadOrLateObservationsDoNotCorruptTheAverage) {
  Autoscaler autoscaler(Target10(), 1, seconds(0));
  autoscaler.Record(seconds(0), std::numeric_limits<double>::quiet_NaN(), 2);
  autoscaler.Record(seconds(1), -5, 2);
  autoscaler.Record(seconds(2), 60, 2);
  autoscaler.Record(seconds(1), 1000, 2);  // older than the newest second: dropped
  const auto decision = autoscaler.Decide(seconds(2), 2);
  EXPECT_EQ(decision.stable_demand, 20);  // (0 + 0 + 60) / 3
  EXPECT_EQ(decision.desired_replicas, 2);
}

TEST(AutoscalerTest, ActivatesOnTheFirstRequestWithoutDilutingItByTheIdleTime) {
  Autoscaler autoscaler(Target10(), 0, seconds(0));
  // Idle at zero replicas: no data, nothing to do.
  for (const auto& d : Drive(autoscaler, 0, 99, [](int) { return 0.0; }, [](int) { return 0; })) {
    ASSERT_EQ(d.desired_replicas, 0);
  }
  autoscaler.Record(seconds(100), 20, 0);
  const auto decision = autoscaler.Decide(seconds(100), 0);
  EXPECT_EQ(decision.stable_demand, 20);  // not 20 / 60: idle zeros at zero replicas are not data
  EXPECT_EQ(decision.desired_replicas, 2);
  EXPECT_TRUE(decision.panicking);  // 2 replicas needed, 0 (counted as 1) ready
}

TEST(AutoscalerTest, ActivationScaleIsTheSmallestStartFromZero) {
  AutoscalerSettings settings = Target10();
  settings.activation_scale = 3;
  Autoscaler autoscaler(settings, 0, seconds(0));
  autoscaler.Record(seconds(0), 1, 0);
  EXPECT_EQ(autoscaler.Decide(seconds(0), 0).desired_replicas, 3);
}

TEST(AutoscalerTest, ScalesToZeroOnlyAfterTheGracePeriod) {
  Autoscaler autoscaler(Target10(), 1, seconds(0));
  const auto decisions = Drive(autoscaler, 0, 120, [](int t) { return t < 10 ? 5.0 : 0.0; }, [](int) { return 1; });
  // The last non-zero second (9) leaves the stable window at 69: the decider wants 0 from then.
  for (int t = 0; t < 69; ++t) ASSERT_EQ(decisions[t].desired_replicas, 1) << t;
  EXPECT_EQ(decisions[69].decider_replicas, 0);
  for (int t = 69; t < 99; ++t) ASSERT_EQ(decisions[t].desired_replicas, 1) << "grace period, t=" << t;
  for (int t = 99; t <= 120; ++t) ASSERT_EQ(decisions[t].desired_replicas, 0) << t;
}

TEST(AutoscalerTest, ARequestDuringTheGracePeriodRestartsIt) {
  Autoscaler autoscaler(Target10(), 1, seconds(0));
  auto load = [](int t) { return t < 10 || t == 80 ? 5.0 : 0.0; };
  const auto decisions = Drive(autoscaler, 0, 200, load, [](int) { return 1; });
  EXPECT_EQ(decisions[99].desired_replicas, 1);   // would have been 0 without the request at 80
  EXPECT_EQ(decisions[139].decider_replicas, 1);  // 80 is still in (79, 139]
  EXPECT_EQ(decisions[140].decider_replicas, 0);
  EXPECT_EQ(decisions[169].desired_replicas, 1);
  EXPECT_EQ(decisions[170].desired_replicas, 0);
}

TEST(AutoscalerTest, MinReplicasAboveZeroNeverScalesToZero) {
  AutoscalerSettings settings = Target10();
  settings.min_replicas = 1;
  Autoscaler autoscaler(settings, 1, seconds(0));
  for (const auto& d : Drive(autoscaler, 0, 300, [](int t) { return t < 10 ? 5.0 : 0.0; }, [](int) { return 1; })) {
    ASSERT_EQ(d.desired_replicas, 1);
  }
}

TEST(AutoscalerTest, MaxReplicasCapsTheDecision) {
  AutoscalerSettings settings = Target10();
  settings.max_replicas = 4;
  Autoscaler autoscaler(settings, 1, seconds(0));
  autoscaler.Record(seconds(0), 500, 1);
  const auto decision = autoscaler.Decide(seconds(0), 1);
  EXPECT_EQ(decision.decider_replicas, 50);
  EXPECT_EQ(decision.desired_replicas, 4);
}

TEST(AutoscalerTest, PanicStartsAtTheThresholdOfReadyCapacity) {
  {
    Autoscaler autoscaler(Target10(), 1, seconds(0));
    autoscaler.Record(seconds(0), 19, 1);  // needs 2 = 2x the one ready replica
    EXPECT_TRUE(autoscaler.Decide(seconds(0), 1).panicking);
  }
  {
    Autoscaler autoscaler(Target10(), 1, seconds(0));
    autoscaler.Record(seconds(0), 30, 2);  // needs 3 = 1.5x two ready replicas
    const auto decision = autoscaler.Decide(seconds(0), 2);
    EXPECT_FALSE(decision.panicking);
    EXPECT_EQ(decision.desired_replicas, 3);
  }
}

TEST(AutoscalerTest, PanicNeverScalesDownAndEndsAStableWindowAfterTheLastSurge) {
  Autoscaler autoscaler(Target10(), 1, seconds(0));
  auto load = [](int t) { return t >= 60 && t < 100 ? 100.0 : 10.0; };
  const auto decisions = Drive(autoscaler, 0, 200, load, [](int) { return 1; });
  for (int t = 0; t < 60; ++t) ASSERT_FALSE(decisions[t].panicking) << t;
  // At 60 the panic window (55..60] averages (5 x 10 + 100) / 6 = 25: 3 replicas, 3x capacity.
  EXPECT_TRUE(decisions[60].panicking);
  EXPECT_EQ(decisions[60].desired_replicas, 3);
  EXPECT_EQ(decisions[65].desired_replicas, 10);
  // The load falls at 100; the panic window (98, 104] is over the threshold for the last time at
  // 104 ((100 + 5 x 10) / 6 = 25), and the panic ends once 104 + 60 < t.
  for (int t = 65; t <= 164; ++t) {
    ASSERT_TRUE(decisions[t].panicking) << t;
    ASSERT_EQ(decisions[t].desired_replicas, 10) << t;
  }
  EXPECT_FALSE(decisions[165].panicking);
  EXPECT_EQ(decisions[165].desired_replicas, 1);
}

TEST(AutoscalerTest, ARestartWithReadyReplicasStartsInPanicSoItDoesNotScaleDownBlind) {
  Autoscaler autoscaler(Target10(), 5, seconds(0));
  const auto decisions = Drive(autoscaler, 0, 70, [](int) { return 10.0; }, [](int) { return 5; });
  for (int t = 0; t <= 60; ++t) ASSERT_EQ(decisions[t].desired_replicas, 5) << t;
  EXPECT_FALSE(decisions[61].panicking);
  EXPECT_EQ(decisions[61].desired_replicas, 2);  // wants 1; at most halved per decision
}

TEST(AutoscalerTest, ScaleUpAndDownRatesBoundEachDecision) {
  AutoscalerSettings settings = Target10();
  settings.max_scale_up_rate = 2;
  Autoscaler autoscaler(settings, 1, seconds(0));
  autoscaler.Record(seconds(0), 1000, 2);
  EXPECT_EQ(autoscaler.Decide(seconds(0), 2).desired_replicas, 4);  // ceil(2 x 2)

  Autoscaler down(Target10(), 1, seconds(0));
  down.Record(seconds(0), 0, 10);
  EXPECT_EQ(down.Decide(seconds(0), 10).desired_replicas, 5);  // floor(10 / 2)
  down.Record(seconds(1), 0, 3);
  EXPECT_EQ(down.Decide(seconds(1), 3).desired_replicas, 1);   // floor(3 / 2)
}

TEST(AutoscalerTest, ScaleDownDelayIsTheMaximumOverTheDelay) {
  AutoscalerSettings settings = Target10();
  settings.stable_window = seconds(10);
  auto load = [](int t) { return t < 20 ? 40.0 : 10.0; };
  Autoscaler undelayed(settings, 1, seconds(0));
  const auto plain = Drive(undelayed, 0, 120, load, [](int) { return 4; });
  settings.scale_down_delay = seconds(30);
  Autoscaler delayed_autoscaler(settings, 1, seconds(0));
  const auto delayed = Drive(delayed_autoscaler, 0, 120, load, [](int) { return 4; });
  int first_drop = -1;
  for (int t = 0; t <= 120; ++t) {
    int expected = 0;
    for (int s = std::max(0, t - 29); s <= t; ++s) expected = std::max(expected, plain[s].desired_replicas);
    ASSERT_EQ(delayed[t].desired_replicas, expected) << t;
    if (first_drop < 0 && plain[t].desired_replicas < 4) first_drop = t;
  }
  ASSERT_EQ(first_drop, 23);                   // (13, 23] averages (6 x 40 + 4 x 10) / 10 = 28
  EXPECT_EQ(delayed[51].desired_replicas, 4);  // 4 was decided at 22, 29 s ago
  EXPECT_EQ(delayed[52].desired_replicas, 3);
}

TEST(AutoscalerTest, ClosedLoopStepScalesUpWithinThePanicWindowAndSettles) {
  // 10x step at 60 s, pods ready 5 s after being asked for.
  auto load = [](int t) { return t >= 60 && t < 300 ? 100.0 : 10.0; };
  const std::vector<int> desired = ClosedLoop(Target10(), 600, 5, load);
  for (int t = 0; t < 60; ++t) ASSERT_EQ(desired[t], 1) << t;
  EXPECT_EQ(desired[60 + 6], 10);                  // within the panic window
  for (int t = 66; t < 300; ++t) ASSERT_EQ(desired[t], 10) << t;  // no over- or undershoot
  EXPECT_EQ(desired[599], 1);
  EXPECT_LE(Changes(desired, 0), 6 + 10);  // up within the panic window, then only down
  // Down one replica at a time as the stable window forgets the step, never back up.
  for (size_t t = 301; t < desired.size(); ++t) {
    ASSERT_LE(desired[t], desired[t - 1]) << t;
    ASSERT_GE(desired[t], desired[t - 1] - 1) << t;
  }
}

TEST(AutoscalerTest, ClosedLoopSteadyNoisyLoadNeverOscillates) {
  std::mt19937 random(7);
  std::uniform_real_distribution<double> noise(-0.2, 0.2);
  std::vector<double> load(1200);
  for (double& value : load) value = 45 * (1 + noise(random));
  const std::vector<int> desired = ClosedLoop(Target10(), 1200, 5, [&](int t) { return load[t]; }, 5);
  // The first tick may round one sample up to 6 (held by the start-up panic for a stable window);
  // after that, 5 at every tick.
  EXPECT_LE(Changes(desired), 1);
  for (size_t t = 61; t < desired.size(); ++t) ASSERT_EQ(desired[t], 5) << t;
}

TEST(AutoscalerTest, PanicDoesNotFlapWhileTheLoadHoversAroundTheThreshold) {
  // 4 s at 130 and 4 s at 70 on 5 ready replicas: the panic window swings between 2.2x and 1.8x
  // of capacity. Panic is entered once and held (each crossing extends it), and the decision only
  // goes up while it lasts; it ends once, a stable window after the last crossing.
  Autoscaler autoscaler(Target10(), 1, seconds(0));
  auto load = [](int t) { return t < 20 || t >= 200 ? 50.0 : (t % 8 < 4 ? 130.0 : 70.0); };
  const auto decisions = Drive(autoscaler, 0, 400, load, [](int) { return 5; });
  int entered = 0, left = 0, last_over = -1;
  for (int t = 1; t <= 400; ++t) {
    entered += decisions[t].panicking && !decisions[t - 1].panicking;
    left += !decisions[t].panicking && decisions[t - 1].panicking;
    if (decisions[t].panicking) {
      ASSERT_GE(decisions[t].desired_replicas, decisions[t - 1].desired_replicas) << t;
    }
    if (std::ceil(decisions[t].panic_demand / 10) / 5 >= 2) last_over = t;
  }
  EXPECT_EQ(entered, 1);
  EXPECT_EQ(left, 1);
  ASSERT_GT(last_over, 0);
  EXPECT_TRUE(decisions[last_over + 60].panicking);
  EXPECT_FALSE(decisions[last_over + 61].panicking);
}

}  // namespace
}  // namespace mlscale::inference
