#include "mlscale/hpo/early_stopping.h"

#include <algorithm>
#include <limits>
#include <optional>

namespace mlscale::hpo {
namespace {

// Values oriented so that lower is better.
double Oriented(Direction direction, double value) { return direction == Direction::kMinimize ? value : -value; }

// The best value reported at steps <= step, if the trial reached `step` at all.
std::optional<double> BestUpTo(const Trial& trial, Direction direction, std::int64_t step) {
  if (trial.intermediate_values.empty() || trial.intermediate_values.back().step < step) return std::nullopt;
  std::optional<double> best;
  for (const IntermediateValue& iv : trial.intermediate_values) {
    if (iv.step > step) break;
    double v = Oriented(direction, iv.value);
    if (!best || v < *best) best = v;
  }
  return best;
}

// The value reported at the first step >= rung_step (the value with which it entered the rung).
std::optional<double> RungValue(const Trial& trial, Direction direction, std::int64_t rung_step) {
  for (const IntermediateValue& iv : trial.intermediate_values) {
    if (iv.step >= rung_step) return Oriented(direction, iv.value);
  }
  return std::nullopt;
}

StopDecision MedianDecision(const EarlyStoppingConfig& config, Direction direction,
                            const std::vector<Trial>& history, const Trial& trial) {
  std::int64_t step = trial.intermediate_values.back().step;
  if (step < config.warmup_steps) return StopDecision::kContinue;
  std::vector<double> others;
  for (const Trial& other : history) {
    if (&other == &trial || other.state == TrialState::kFailed) continue;
    if (std::optional<double> best = BestUpTo(other, direction, step)) others.push_back(*best);
  }
  if (others.empty() || static_cast<int>(others.size()) < config.min_trials) return StopDecision::kContinue;
  std::sort(others.begin(), others.end());
  std::size_t middle = others.size() / 2;
  double median = others.size() % 2 == 1 ? others[middle] : 0.5 * (others[middle - 1] + others[middle]);
  return *BestUpTo(trial, direction, step) > median ? StopDecision::kStop : StopDecision::kContinue;
}

StopDecision AshaDecision(const EarlyStoppingConfig& config, Direction direction,
                          const std::vector<Trial>& history, const Trial& trial) {
  std::int64_t step = trial.intermediate_values.back().step;
  if (step < config.min_resource) return StopDecision::kContinue;
  std::int64_t rung_step = config.min_resource;
  while (rung_step <= std::numeric_limits<std::int64_t>::max() / config.reduction_factor &&
         rung_step * config.reduction_factor <= step) {
    rung_step *= config.reduction_factor;
  }
  double value = *RungValue(trial, direction, rung_step);
  std::vector<double> rung;  // every trial's value at this rung, this one's included
  for (const Trial& other : history) {
    if (other.state == TrialState::kFailed && &other != &trial) continue;
    if (std::optional<double> v = RungValue(other, direction, rung_step)) rung.push_back(*v);
  }
  std::sort(rung.begin(), rung.end());
  // The best 1/eta continue. With fewer than eta values only the best does: trials are
  // never paused, so early arrivals cannot wait for their competitors.
  std::size_t last_promoted = std::max<std::size_t>(rung.size() / static_cast<std::size_t>(config.reduction_factor), 1) - 1;
  return value <= rung[last_promoted] ? StopDecision::kContinue : StopDecision::kStop;
}

}  // namespace

Status ValidateEarlyStoppingConfig(const EarlyStoppingConfig& config) {
  if (config.min_trials < 1) return InvalidArgument("early stopping: minTrials must be >= 1");
  if (config.warmup_steps < 0) return InvalidArgument("early stopping: warmupSteps must be >= 0");
  if (config.min_resource < 1) return InvalidArgument("early stopping: minResource must be >= 1");
  if (config.reduction_factor < 2) return InvalidArgument("early stopping: reductionFactor must be >= 2");
  return Status::Ok();
}

StatusOr<StopDecision> DecideEarlyStop(const EarlyStoppingConfig& config, Direction direction,
                                       const std::vector<Trial>& history, const std::string& trial_id) {
  MLSCALE_RETURN_IF_ERROR(ValidateEarlyStoppingConfig(config));
  auto it = std::find_if(history.begin(), history.end(), [&](const Trial& t) { return t.id == trial_id; });
  if (it == history.end()) return NotFound("early stopping: no trial '" + trial_id + "' in the history");
  if (it->state != TrialState::kPending) {
    return FailedPrecondition("early stopping: trial '" + trial_id + "' is not running");
  }
  for (const Trial& trial : history) {
    for (std::size_t i = 1; i < trial.intermediate_values.size(); ++i) {
      if (trial.intermediate_values[i].step <= trial.intermediate_values[i - 1].step) {
        return InvalidArgument("early stopping: trial '" + trial.id + "': intermediate steps must increase");
      }
    }
  }
  if (config.rule == EarlyStoppingRule::kNone || it->intermediate_values.empty()) return StopDecision::kContinue;
  if (config.rule == EarlyStoppingRule::kMedian) return MedianDecision(config, direction, history, *it);
  return AshaDecision(config, direction, history, *it);
}

}  // namespace mlscale::hpo
