// The synthetic traces (traces/*.csv: step, spike, ramp, sawtooth, steady with noise, idle then
// burst) through our autoscaler: the rules every decision must obey, and what each trace is for.
// The same traces go through Knative's decider in knative_comparison_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "trace.h"

namespace mlscale::inference::testing {
namespace {

struct Replayed {
  Trace trace;
  std::vector<AutoscalerDecision> decisions;

  int Desired(size_t t) const { return decisions.at(t).desired_replicas; }
  // The first second at or after `from` where pred(desired) holds, or -1.
  template <typename Pred>
  int FirstFrom(size_t from, Pred pred) const {
    for (size_t t = from; t < decisions.size(); ++t) {
      if (pred(Desired(t))) return static_cast<int>(t);
    }
    return -1;
  }
  int Changes(size_t from, size_t to) const {
    int changes = 0;
    for (size_t t = from + 1; t <= to && t < decisions.size(); ++t) changes += Desired(t) != Desired(t - 1);
    return changes;
  }
};

Replayed Load(const std::string& name) {
  StatusOr<Trace> trace = ReadTrace(name);
  EXPECT_TRUE(trace.ok()) << trace.status().ToString();
  if (!trace.ok()) return {};
  Replayed replayed{*trace, {}};
  replayed.decisions = Replay(replayed.trace);
  return replayed;
}

TEST(AutoscalerTracesTest, AllSixTracesArePresent) {
  EXPECT_EQ(TraceNames(), (std::vector<std::string>{"idle-burst", "ramp", "sawtooth", "spike", "steady-noise", "step"}));
}

// Rules that hold at every tick of every trace.
TEST(AutoscalerTracesTest, EveryDecisionObeysBoundsRatesAndPanic) {
  for (const std::string& name : TraceNames()) {
    const Replayed r = Load(name);
    ASSERT_FALSE(r.decisions.empty()) << name;
    const AutoscalerSettings& s = r.trace.settings;
    for (size_t t = 0; t < r.decisions.size(); ++t) {
      SCOPED_TRACE(name + " t=" + std::to_string(t));
      const AutoscalerDecision& d = r.decisions[t];
      ASSERT_GE(d.desired_replicas, s.min_replicas);
      if (s.max_replicas > 0) {
        ASSERT_LE(d.desired_replicas, s.max_replicas);
      }
      const double ready = std::max(1, r.trace.ticks[t].ready_pods);
      ASSERT_LE(d.decider_replicas, std::max(std::ceil(ready * s.max_scale_up_rate), 1.0 * s.activation_scale));
      if (s.scale_down_delay.count() == 0 && !(t == 0 || r.decisions[t - 1].panicking)) {
        ASSERT_GE(d.decider_replicas, std::floor(ready / s.max_scale_down_rate));
      }
      // No scale-down while panicking.
      if (t > 0 && d.panicking && r.decisions[t - 1].panicking) {
        ASSERT_GE(d.decider_replicas, r.decisions[t - 1].decider_replicas);
      }
      // Never more than the panic demand asks for (plus what the rates and panic hold allow).
      ASSERT_LE(d.decider_replicas,
                std::max({std::ceil(d.panic_demand / s.target), std::ceil(d.stable_demand / s.target),
                          t > 0 ? 1.0 * r.decisions[t - 1].decider_replicas : 0.0,
                          1.0 * r.trace.ticks[t].ready_pods, 1.0 * s.activation_scale}));
    }
  }
}

TEST(AutoscalerTracesTest, StepScalesUpWithinThePanicWindowAndDownAfterTheStableWindow) {
  const Replayed r = Load("step");
  for (int t = 0; t < 60; ++t) ASSERT_EQ(r.Desired(t), 1) << t;
  EXPECT_TRUE(r.decisions[60].panicking);
  EXPECT_EQ(r.FirstFrom(60, [](int d) { return d >= 10; }), 65);  // 60 + panic window - 1
  for (int t = 65; t < 240; ++t) ASSERT_EQ(r.Desired(t), 10) << "no overshoot, no dip, t=" << t;
  // Down from 240: gradually, as the stable window forgets the step; never back up.
  const int first_down = r.FirstFrom(240, [](int d) { return d < 10; });
  EXPECT_GT(first_down, 240);
  EXPECT_LT(first_down, 300);
  for (size_t t = 241; t < r.decisions.size(); ++t) ASSERT_LE(r.Desired(t), r.Desired(t - 1)) << t;
  EXPECT_EQ(r.Desired(r.decisions.size() - 1), 1);
}

TEST(AutoscalerTracesTest, SpikePanicsOnceHoldsAStableWindowThenSettles) {
  const Replayed r = Load("spike");
  for (int t = 0; t < 100; ++t) ASSERT_EQ(r.Desired(t), 2) << t;
  // (The first seconds panic too: one replica is ready while the base load needs two.)
  EXPECT_FALSE(r.decisions[99].panicking);
  int entered = 0, left = 0;
  for (size_t t = 100; t < r.decisions.size(); ++t) {
    entered += r.decisions[t].panicking && !r.decisions[t - 1].panicking;
    left += !r.decisions[t].panicking && r.decisions[t - 1].panicking;
  }
  EXPECT_EQ(entered, 1);
  EXPECT_EQ(left, 1);
  EXPECT_TRUE(r.decisions[100].panicking);
  // Up during the spike only, held while panicking, then down in at most two decisions.
  const int peak = r.Desired(104);
  EXPECT_GE(peak, 17);
  for (int t = 104; t <= 164; ++t) ASSERT_EQ(r.Desired(t), peak) << t;
  EXPECT_LE(r.Changes(165, 299), 2);
  EXPECT_EQ(r.Desired(299), 2);
}

TEST(AutoscalerTracesTest, RampFollowsWithinTheRateLimitsAndMaxReplicas) {
  const Replayed r = Load("ramp");
  int most = 0;
  for (size_t t = 0; t < r.decisions.size(); ++t) most = std::max(most, r.Desired(t));
  EXPECT_EQ(most, 15);  // max_replicas, reached while the ramp asks for 20
  // The ramp up and down each moves in steps: far fewer changes than seconds.
  EXPECT_LE(r.Changes(0, 299), 20);
  EXPECT_LE(r.Changes(300, 599), 20);
  EXPECT_LE(r.Desired(599), 3);
}

TEST(AutoscalerTracesTest, SawtoothScaleDownDelayAvoidsFollowingEachDrop) {
  const Replayed r = Load("sawtooth");
  // Each period drops from 200 to 20 rps; with the 30 s delay the replicas do not drop with it.
  for (int period = 1; period < 6; ++period) {
    const int drop = period * 60;
    for (int t = drop; t < drop + 30; ++t) ASSERT_GE(r.Desired(t), r.Desired(drop - 1)) << t;
  }
  EXPECT_LE(r.Changes(120, 359), 2);  // settled while the sawtooth repeats
  EXPECT_EQ(r.Desired(r.decisions.size() - 1), 1);
}

TEST(AutoscalerTracesTest, SteadyNoisyLoadNeverOscillates) {
  const Replayed r = Load("steady-noise");
  for (size_t t = 0; t < r.decisions.size(); ++t) ASSERT_EQ(r.Desired(t), 5) << t;
}

TEST(AutoscalerTracesTest, IdleBurstActivatesOnTheFirstRequestAndScalesToZeroAfterGrace) {
  const Replayed r = Load("idle-burst");
  for (int t = 0; t < 120; ++t) ASSERT_EQ(r.Desired(t), 0) << t;
  EXPECT_EQ(r.Desired(120), 3);  // 30 in flight, target 10: the first request's second
  // The burst ends at 180; the stable window is empty of demand from 239, but the decider may
  // halve at most (floor(3 / 2) = 1) until the trace's replicas go at 245; then 30 s of grace.
  EXPECT_EQ(r.decisions[239].decider_replicas, 1);
  EXPECT_EQ(r.decisions[245].decider_replicas, 0);
  const int zero = r.FirstFrom(181, [](int d) { return d == 0; });
  EXPECT_EQ(zero, 245 + 30);
  for (int t = 239; t < 275; ++t) ASSERT_EQ(r.Desired(t), 1) << "t=" << t;
  for (size_t t = 275; t < r.decisions.size(); ++t) ASSERT_EQ(r.Desired(t), 0) << t;
}

}  // namespace
}  // namespace mlscale::inference::testing
