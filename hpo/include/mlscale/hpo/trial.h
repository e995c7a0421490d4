// Trials: what the history of a sweep is made of. The caller (the sweep controller)
// owns the history and passes it in full to every call; the library keeps no state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mlscale/hpo/space.h"

namespace mlscale::hpo {

enum class Direction { kMinimize, kMaximize };

enum class TrialState {
  kPending,    // suggested and running (or about to run): no final value yet
  kCompleted,  // finished with a final objective value
  kFailed,     // finished without a usable value
  kStopped,    // stopped early by an early-stopping rule; has intermediate values only
};

// An objective value reported during training, e.g. validation loss after epoch `step`.
struct IntermediateValue {
  std::int64_t step = 0;
  double value = 0.0;
};

struct Trial {
  std::string id;  // unique within the sweep
  Assignment assignment;
  TrialState state = TrialState::kPending;
  std::optional<double> value;  // kCompleted: the final objective value (finite)
  std::vector<IntermediateValue> intermediate_values;  // in increasing step order
};

// OK when ids are unique, each assignment is valid for the space, completed trials carry
// a finite value and intermediate values have strictly increasing steps and finite values.
// InvalidArgument naming the trial otherwise.
Status ValidateHistory(const SearchSpace& space, const std::vector<Trial>& history);

}  // namespace mlscale::hpo
