// Early stopping on intermediate values: for a running trial and the values it reported
// so far, decide from the whole history whether it should continue or stop. Stateless,
// like the samplers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/hpo/trial.h"

namespace mlscale::hpo {

enum class EarlyStoppingRule {
  kNone,
  // Median stopping rule: stop when the trial's best value so far is worse than the median
  // of the other trials' best values up to the same step.
  kMedian,
  // Asynchronous successive halving (ASHA): rungs at min_resource * reduction_factor^k
  // steps; a trial reaching a rung continues only if its value there is among the best
  // 1/reduction_factor of all values recorded at that rung.
  kAsha,
};

struct EarlyStoppingConfig {
  EarlyStoppingRule rule = EarlyStoppingRule::kNone;
  // kMedian: no decision before this many other trials reported at the step, or before
  // the trial reached warmup_steps.
  int min_trials = 5;
  std::int64_t warmup_steps = 0;
  // kAsha: the first rung's step (>= 1) and the ratio between rungs (>= 2).
  std::int64_t min_resource = 1;
  int reduction_factor = 3;
};

enum class StopDecision { kContinue, kStop };

// OK, or InvalidArgument naming the bad option.
Status ValidateEarlyStoppingConfig(const EarlyStoppingConfig& config);

// The decision for the pending trial `trial_id`, whose intermediate values are in
// `history` (the other trials' intermediate values are its competitors). ASHA judges the
// trial at the highest rung it has reached. NotFound if the id is absent,
// FailedPrecondition if that trial is not pending, InvalidArgument for a bad config.
StatusOr<StopDecision> DecideEarlyStop(const EarlyStoppingConfig& config, Direction direction,
                                       const std::vector<Trial>& history,
                                       const std::string& trial_id);

}  // namespace mlscale::hpo
