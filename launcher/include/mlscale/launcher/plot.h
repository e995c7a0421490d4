// The plot of a sweep: objective value per trial with the best-so-far curve, written as a
// PNG (an RGB raster encoded with zlib; no other dependency) that any image viewer opens.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::launcher {

// One trial on the plot, in trial order.
struct PlotPoint {
  enum class Kind { kCompleted, kStopped, kFailed };
  Kind kind = Kind::kCompleted;
  // kCompleted: the objective. Early-stopped and failed trials have none (their
  // intermediate values are training losses, not the objective).
  std::optional<double> value;
};

// Draws trials left to right (x: trial index from 0, y: value; axes labelled with the
// value range and the trial numbers): completed trials as blue dots, early-stopped ones as
// grey crosses and failed ones as red crosses along the bottom, and the best completed value so
// far (by `maximize`) as an orange step line. Writes `path` (width x height pixels)
// atomically. An error when the file cannot be written.
Status WriteSweepPlot(const std::string& path, const std::vector<PlotPoint>& points, bool maximize, int width = 800,
                      int height = 480);

// An RGB image and its PNG encoding (8-bit truecolour, one IDAT, zlib level 9).
struct Image {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;  // width * height * 3, row by row from the top
};
std::string EncodePng(const Image& image);

}  // namespace mlscale::launcher
