// Autoscaler traces (traces/*.csv, written by traces/generate.py; the format is described there),
// read by the unit tests and compared against Knative's decider by the replay test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/controllers/inference/autoscaler.h"

namespace mlscale::inference::testing {

struct TraceTick {
  std::int64_t second = 0;
  double observed = 0;
  std::int32_t ready_pods = 0;
};

struct Trace {
  std::string name;         // the file name without .csv
  std::string description;  // the first comment line
  AutoscalerSettings settings;
  std::vector<TraceTick> ticks;
};

// Reads traces/<name>.csv from the source tree. Errors name the file, line and field.
StatusOr<Trace> ReadTrace(const std::string& name);

// The names of every trace in traces/, sorted.
std::vector<std::string> TraceNames();

// Our autoscaler's decision at every tick of the trace (one Record then one Decide per tick,
// with the trace's ready pods), from a fresh autoscaler created with the first tick's ready pods.
std::vector<AutoscalerDecision> Replay(const Trace& trace);

}  // namespace mlscale::inference::testing
