#include "mlscale/hpo/sampler.h"

#include <cmath>
#include <limits>

#include "random.h"
#include "sampler_internal.h"
#include "sobol.h"

namespace mlscale::hpo {

Status ValidateSamplerConfig(const SamplerConfig& config) {
  if (config.grid.points_per_float < 2) return InvalidArgument("grid.pointsPerFloat must be >= 2");
  const BayesianOptions& bo = config.bayesian;
  if (bo.startup_trials < 1) return InvalidArgument("bayesian.startupTrials must be >= 1");
  if (bo.candidates < 1) return InvalidArgument("bayesian.candidates must be >= 1");
  if (bo.local_searches < 0) return InvalidArgument("bayesian.localSearches must be >= 0");
  if (bo.max_fit_trials < 2) return InvalidArgument("bayesian.maxFitTrials must be >= 2");
  const TpeOptions& tpe = config.tpe;
  if (tpe.startup_trials < 1) return InvalidArgument("tpe.startupTrials must be >= 1");
  if (tpe.candidates < 1) return InvalidArgument("tpe.candidates must be >= 1");
  if (!(tpe.gamma > 0 && tpe.gamma < 1)) return InvalidArgument("tpe.gamma must be in (0, 1)");
  return Status::Ok();
}

Eigen::VectorXd SpaceFillingPoint(std::uint64_t seed, int dimensions, std::uint64_t index) {
  if (dimensions <= SobolSequence::kMaxDimensions) return SobolSequence(dimensions, seed).Point(index);
  Random random({seed, index, 0x11d});
  Eigen::VectorXd point(dimensions);
  for (int i = 0; i < dimensions; ++i) point[i] = random.Uniform();
  return point;
}

std::optional<Assignment> UnusedSpaceFillingPoint(const SearchSpace& space, const SamplerState& state,
                                                  std::uint64_t seed, std::uint64_t first_index,
                                                  int attempts) {
  int dimensions = static_cast<int>(space.parameters.size());
  for (int attempt = 0; attempt < attempts; ++attempt) {
    // Later attempts jump far ahead so that they do not collide with later batch slots.
    std::uint64_t index = first_index + static_cast<std::uint64_t>(attempt) * 65536;
    Assignment assignment = Decode(space, SpaceFillingPoint(seed, dimensions, index));
    if (!state.used_keys.contains(AssignmentKey(assignment))) return assignment;
  }
  return std::nullopt;
}

std::vector<std::vector<ParameterValue>> GridValues(const SearchSpace& space, int points_per_float) {
  std::vector<std::vector<ParameterValue>> values;
  for (const Parameter& p : space.parameters) {
    std::vector<ParameterValue>& list = values.emplace_back();
    if (std::optional<std::int64_t> size = DiscreteSize(p)) {
      if (p.type == ParameterType::kInt && p.log_scale) {
        for (auto v = static_cast<std::int64_t>(p.low); v <= static_cast<std::int64_t>(p.high); ++v) {
          list.emplace_back(v);
        }
        continue;
      }
      for (std::int64_t i = 0; i < *size; ++i) {
        list.push_back(DecodeValue(p, (static_cast<double>(i) + 0.5) / static_cast<double>(*size)));
      }
    } else {
      for (int i = 0; i < points_per_float; ++i) {
        list.push_back(DecodeValue(p, static_cast<double>(i) / (points_per_float - 1)));
      }
    }
  }
  return values;
}

std::optional<Assignment> FirstUnusedOnGrid(const SearchSpace& space,
                                            const std::vector<std::vector<ParameterValue>>& values,
                                            const std::set<std::string>& used_keys,
                                            std::uint64_t offset) {
  // The grid's size, saturating: a grid too large to count is never exhausted in practice.
  std::uint64_t total = 1;
  for (const auto& list : values) {
    if (total > std::numeric_limits<std::uint64_t>::max() / list.size()) {
      total = std::numeric_limits<std::uint64_t>::max();
      break;
    }
    total *= list.size();
  }
  std::uint64_t limit = std::min<std::uint64_t>(total, used_keys.size() + 1);
  for (std::uint64_t step = 0; step < limit; ++step) {
    std::uint64_t position = (offset % total + step) % total;
    Assignment assignment;
    for (std::size_t i = values.size(); i-- > 0;) {
      const auto& list = values[i];
      assignment.emplace(space.parameters[i].name, list[position % list.size()]);
      position /= list.size();
    }
    if (!used_keys.contains(AssignmentKey(assignment))) return assignment;
  }
  return std::nullopt;
}

StatusOr<std::vector<Assignment>> Suggest(const SamplerConfig& config, const SearchSpace& space,
                                          const std::vector<Trial>& history, int count) {
  if (count < 0) return InvalidArgument("suggestion count must be >= 0, got " + std::to_string(count));
  MLSCALE_RETURN_IF_ERROR(ValidateSamplerConfig(config).WithContext("sampler config"));
  MLSCALE_RETURN_IF_ERROR(ValidateSpace(space).WithContext("search space"));
  MLSCALE_RETURN_IF_ERROR(ValidateHistory(space, history).WithContext("history"));
  if (config.algorithm == Algorithm::kRandom && config.random.quasi_random &&
      space.parameters.size() > SobolSequence::kMaxDimensions) {
    return InvalidArgument("quasi-random search supports at most " +
                           std::to_string(SobolSequence::kMaxDimensions) + " parameters");
  }

  if (count == 0) return std::vector<Assignment>{};

  SamplerState state;
  state.history_size = history.size();
  for (const Trial& trial : history) {
    state.used_keys.insert(AssignmentKey(trial.assignment));
    switch (trial.state) {
      case TrialState::kCompleted:
        state.completed_points.push_back(Encode(space, trial.assignment));
        state.completed_values.push_back(config.direction == Direction::kMinimize ? *trial.value
                                                                                  : -*trial.value);
        break;
      case TrialState::kPending:
      case TrialState::kStopped: state.busy_points.push_back(Encode(space, trial.assignment)); break;
      case TrialState::kFailed: break;
    }
  }

  StatusOr<Proposer> proposer = Internal("unknown algorithm");
  switch (config.algorithm) {
    case Algorithm::kRandom: proposer = MakeRandomProposer(config, space); break;
    case Algorithm::kGrid: proposer = MakeGridProposer(config, space); break;
    case Algorithm::kTpe: proposer = MakeTpeProposer(config, space, state); break;
    case Algorithm::kBayesian: proposer = MakeBayesianProposer(config, space, state); break;
  }
  if (!proposer.ok()) return proposer.status();

  // Finite spaces: when the algorithm finds nothing new, any unused assignment will do.
  bool finite = true;
  for (const Parameter& p : space.parameters) finite = finite && DiscreteSize(p).has_value();
  std::vector<std::vector<ParameterValue>> all_values;
  if (finite) all_values = GridValues(space, 2);

  std::vector<Assignment> suggestions;
  for (int slot = 0; slot < count; ++slot) {
    std::optional<Assignment> assignment = (*proposer)(state, slot);
    if (!assignment && finite) {
      Random random({config.seed, state.history_size, static_cast<std::uint64_t>(slot), 0xf1});
      assignment = FirstUnusedOnGrid(space, all_values, state.used_keys, random.Bits());
    }
    if (!assignment) break;
    state.used_keys.insert(AssignmentKey(*assignment));
    state.busy_points.push_back(Encode(space, *assignment));
    suggestions.push_back(std::move(*assignment));
  }
  return suggestions;
}

}  // namespace mlscale::hpo
