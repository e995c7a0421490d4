// The trainer's live progress (rank 0 rewrites MLSCALE_PROGRESS_FILE about once a second)
// and how the local CLI shows it: a bar on a terminal, plain lines otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"

namespace mlscale::launcher {

struct Progress {
  std::int64_t step = 0;
  std::int64_t total_steps = 0;
  std::int64_t epoch = 0;
  std::int64_t epochs = 0;
  double loss = 0;
  double samples_per_second = 0;
  double eta_seconds = 0;
  double elapsed_seconds = 0;
  std::string phase;  // e.g. "loading", "training", "evaluating"
};

// Reads {"step","totalSteps","epoch","epochs","loss","samplesPerSecond","etaSeconds",
// "elapsedSeconds","phase"}; missing numbers are 0, a wrong type is an error.
StatusOr<Progress> ParseProgress(const nlohmann::json& progress);

// "1:05" or "1:02:03" for a number of seconds (negative or not finite: "--:--").
std::string FormatDuration(double seconds);
// One line for a terminal, `width` columns at most:
//   "[#########.........]  45% epoch 3/20 step 450/1000 loss 0.2345 1234 samples/s ETA 0:32"
std::string FormatProgressBar(const Progress& progress, int width);
// The same facts as a plain log line (no bar), for output that is not a terminal.
std::string FormatProgressLine(const Progress& progress);

}  // namespace mlscale::launcher
