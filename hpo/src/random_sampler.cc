// Random search (i.i.d. uniform points of the warped unit cube, or a shifted Sobol
// sequence) and grid search (the first unused grid point in a fixed order).
#include <memory>

#include "random.h"
#include "sampler_internal.h"

namespace mlscale::hpo {

StatusOr<Proposer> MakeRandomProposer(const SamplerConfig& config, const SearchSpace& space) {
  if (config.random.quasi_random) {
    return Proposer([&config, &space](const SamplerState& state, int slot) {
      return UnusedSpaceFillingPoint(space, state, config.seed, state.history_size + static_cast<std::uint64_t>(slot));
    });
  }
  return Proposer([&config, &space](const SamplerState& state, int slot) -> std::optional<Assignment> {
    // One stream per (seed, history size, slot): the answer does not depend on batch size.
    Random random({config.seed, state.history_size, static_cast<std::uint64_t>(slot), 0x7a});
    Eigen::VectorXd unit(static_cast<Eigen::Index>(space.parameters.size()));
    for (int attempt = 0; attempt < 64; ++attempt) {
      for (Eigen::Index i = 0; i < unit.size(); ++i) unit[i] = random.Uniform();
      Assignment assignment = Decode(space, unit);
      if (!state.used_keys.contains(AssignmentKey(assignment))) return assignment;
    }
    return std::nullopt;
  });
}

StatusOr<Proposer> MakeGridProposer(const SamplerConfig& config, const SearchSpace& space) {
  auto values = std::make_shared<std::vector<std::vector<ParameterValue>>>(
      GridValues(space, config.grid.points_per_float));
  return Proposer([&space, values](const SamplerState& state, int) -> std::optional<Assignment> {
    return FirstUnusedOnGrid(space, *values, state.used_keys, 0);
  });
}

}  // namespace mlscale::hpo
