// What kubectl-mlscale prints, as pure functions of the objects read from the API server
// (JSON as served), so that every layout is table-tested without a cluster.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mlscale::plugin {

using Clock = std::chrono::system_clock;

// "[#######.............] 35%": `width` cells, filled by percent (clamped to 0..100).
std::string ProgressBar(double percent, int width = 30);

// Seconds as "45s", "3m05s", "2h07m", "3d04h"; "-" for a negative or non-finite value.
std::string FormatDuration(double seconds);

// A number in at most `significant` digits ("0.0123", "1.23e+04"); "-" when absent.
std::string FormatNumber(const nlohmann::json& value, int significant = 4);

// `kubectl mlscale status <job>`: state, progress bar (step/total, epoch), loss,
// samples/s, ETA, elapsed, workers, restarts, result metrics and every condition.
// `now` dates conditions ("5m ago").
std::string RenderStatus(const nlohmann::json& job, Clock::time_point now);

// One trial of a sweep: a TrainingJob labelled mlscale.io/sweep-name.
struct TrialRow {
  std::string name;
  std::string index;       // label mlscale.io/trial-index
  std::string state;       // status.state
  std::optional<double> objective;  // status.result.metrics[<objective metric>]
  std::string assignment;  // annotation mlscale.io/assignment, compact
};

// Rows of the sweep's trials sorted by objective, best first (by the sweep's direction),
// trials without a value last (by index).
std::vector<TrialRow> TrialRows(const nlohmann::json& sweep, const std::vector<nlohmann::json>& trials);

// `kubectl mlscale trials <sweep>`: a header (objective, direction, counts, best) and the
// table of TrialRows.
std::string RenderTrials(const nlohmann::json& sweep, const std::vector<nlohmann::json>& trials);

// `kubectl mlscale top`: running and recent TrainingJobs, sweeps and InferenceServices.
// `services` is nullopt when the InferenceService CRD is not installed (said so).
std::string RenderTop(const std::vector<nlohmann::json>& jobs, const std::vector<nlohmann::json>& sweeps,
                      const std::optional<std::vector<nlohmann::json>>& services);

// Columns padded to their widest cell, two spaces apart; the first row is the header.
std::string Table(const std::vector<std::vector<std::string>>& rows);

}  // namespace mlscale::plugin
