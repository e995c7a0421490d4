// Our autoscaler held against Knative Serving's own KPA decider: every trace in traces/ goes
// through both (Knative's via knative/, a Go program pinned to knative.dev/serving, built once into
// the cache by tests/cluster/testcluster.py go-binary) and the decisions are compared at every
// tick. They must agree within one replica; the ticks where they differ are counted, located and
// written to a table (MLSCALE_COMPARISON_OUT; tests/bench/results/autoscaler.md holds the last one
// with the reasons).
//
// Two differences are by design and reported apart:
// - Grace period: after the demand goes to zero with min 0, we keep one replica for
//   scaleToZeroGracePeriod; Knative keeps it too, but in its KPA scaler (handleScaleToZero waits
//   on activator probes and PodAutoscaler status times), which the replay does not run, so the
//   replayed Knative value is already 0 there.
// - End of the scale-down delay: Knative keeps the delay's maxima in 2 s buckets (its decider
//   ticks every 2 s) aligned on even Unix seconds, so a delay of D s lasts D - 1 or D s depending
//   on the second's parity; ours lasts exactly D s. Where a scale-down delay expires, Knative may
//   therefore apply the lower value one tick before us: ours at t then equals Knative's at t - 1.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "command.h"
#include "trace.h"

namespace mlscale::inference::testing {
namespace {

using mlscale::testing::RunCommand;

struct KnativeTick {
  int decider = 0;  // -1: no data
  int desired = 0;
};

bool GoInstalled() { return RunCommand({"sh", "-c", "command -v go"}).exit_code == 0; }

std::string LastLine(const std::string& text) {
  std::istringstream lines(text);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

std::string Ranges(const std::vector<int>& seconds) {
  std::string out;
  for (size_t i = 0; i < seconds.size();) {
    size_t j = i;
    while (j + 1 < seconds.size() && seconds[j + 1] == seconds[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += std::to_string(seconds[i]);
    if (j > i) out += "-" + std::to_string(seconds[j]);
    i = j + 1;
  }
  return out.empty() ? "-" : out;
}

TEST(AutoscalerKnativeTest, DecisionsMatchKnativesDeciderWithinOneReplicaAtEveryTick) {
  if (!GoInstalled()) {
    std::cerr << "\n*** SKIPPED: Go is not installed, so Knative's decider cannot be built and our "
                 "autoscaler is NOT compared with it. Run scripts/deps.sh. ***\n\n";
    GTEST_SKIP() << "Go is not installed: the Knative comparison did not run (scripts/deps.sh installs Go)";
  }
  const auto build = RunCommand({MLSCALE_PYTHON, MLSCALE_TESTCLUSTER_TOOL, "go-binary", "--module-dir",
                                 MLSCALE_KNATIVE_REPLAY_MODULE, "--name", "knative-replay"});
  ASSERT_EQ(build.exit_code, 0) << build.output;
  const std::string replay = LastLine(build.output);

  std::ostringstream table;
  table << "| trace | ticks compared | identical | max difference (other ticks) | other ticks differing (s) | "
           "grace period: ours 1, replayed Knative 0 (s) | scale-down delay ends: Knative 1 tick earlier (s) |\n"
           "|---|---|---|---|---|---|---|\n";
  for (const std::string& name : TraceNames()) {
    SCOPED_TRACE(name);
    StatusOr<Trace> trace = ReadTrace(name);
    ASSERT_TRUE(trace.ok()) << trace.status().ToString();
    const std::vector<AutoscalerDecision> ours = Replay(*trace);

    const auto run = RunCommand({replay, std::string(MLSCALE_TRACES_DIR) + "/" + name + ".csv"});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    std::vector<KnativeTick> knative;
    std::istringstream lines(run.output);
    std::string line;
    std::getline(lines, line);
    ASSERT_EQ(line, "second,decider,desired");
    while (std::getline(lines, line)) {
      KnativeTick tick;
      int second = 0;
      char comma1 = 0, comma2 = 0;
      std::istringstream fields(line);
      ASSERT_TRUE(fields >> second >> comma1 >> tick.decider >> comma2 >> tick.desired) << line;
      ASSERT_EQ(second, trace->ticks.at(knative.size()).second) << line;
      knative.push_back(tick);
    }
    ASSERT_EQ(knative.size(), ours.size());

    int identical = 0, max_difference = 0;
    std::vector<int> differing, grace, delay_edge;
    for (size_t t = 0; t < ours.size(); ++t) {
      const int second = static_cast<int>(trace->ticks[t].second);
      const int difference = std::abs(ours[t].desired_replicas - knative[t].desired);
      const bool in_grace = ours[t].desired_replicas == 1 && ours[t].decider_replicas == 0 && knative[t].desired == 0;
      if (difference == 0) {
        ++identical;
      } else if (in_grace) {
        grace.push_back(second);
        EXPECT_EQ(difference, 1);
      } else if (trace->settings.scale_down_delay.count() > 0 && t > 0 &&
                 knative[t].desired < knative[t - 1].desired &&
                 ours[t].desired_replicas == knative[t - 1].desired && t + 1 < ours.size() &&
                 ours[t + 1].desired_replicas == knative[t + 1].desired) {
        delay_edge.push_back(second);  // Knative scaled down one tick earlier, and we follow
      } else {
        differing.push_back(second);
        max_difference = std::max(max_difference, difference);
        EXPECT_LE(difference, 1) << "t=" << second << ": ours " << ours[t].desired_replicas << ", Knative "
                                 << knative[t].desired << " (decider " << knative[t].decider << ")";
      }
    }
    table << "| " << name << " | " << ours.size() << " | " << identical << " | " << max_difference << " | "
          << Ranges(differing) << " | " << Ranges(grace) << " | " << Ranges(delay_edge) << " |\n";
  }
  std::ofstream(MLSCALE_COMPARISON_OUT) << table.str();
  std::cout << table.str();
}

}  // namespace
}  // namespace mlscale::inference::testing
