#include "mlscale/hpo/trial.h"

#include <cmath>
#include <set>

namespace mlscale::hpo {

Status ValidateHistory(const SearchSpace& space, const std::vector<Trial>& history) {
  std::set<std::string> ids;
  for (const Trial& trial : history) {
    std::string context = "trial '" + trial.id + "'";
    if (trial.id.empty()) return InvalidArgument("a trial has an empty id");
    if (!ids.insert(trial.id).second) return InvalidArgument(context + ": duplicate id");
    MLSCALE_RETURN_IF_ERROR(ValidateAssignment(space, trial.assignment).WithContext(context));
    if (trial.state == TrialState::kCompleted && !(trial.value && std::isfinite(*trial.value))) {
      return InvalidArgument(context + ": a completed trial needs a finite value");
    }
    if (trial.value && !std::isfinite(*trial.value)) return InvalidArgument(context + ": value is not finite");
    for (std::size_t i = 0; i < trial.intermediate_values.size(); ++i) {
      const IntermediateValue& iv = trial.intermediate_values[i];
      if (!std::isfinite(iv.value)) {
        return InvalidArgument(context + ": intermediate value at step " + std::to_string(iv.step) +
                               " is not finite");
      }
      if (i > 0 && iv.step <= trial.intermediate_values[i - 1].step) {
        return InvalidArgument(context + ": intermediate steps must increase");
      }
    }
  }
  return Status::Ok();
}

}  // namespace mlscale::hpo
