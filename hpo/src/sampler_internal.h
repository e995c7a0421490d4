// Pieces shared by the samplers (not part of the public interface).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "mlscale/hpo/sampler.h"

namespace mlscale::hpo {

// What a sampler sees of the history, in the unit cube, updated as a batch is built.
struct SamplerState {
  std::vector<Eigen::VectorXd> completed_points;
  std::vector<double> completed_values;  // oriented so that lower is better
  // Points whose value is not known: pending and early-stopped trials, and the suggestions
  // made earlier in the same batch. Samplers must steer away from them.
  std::vector<Eigen::VectorXd> busy_points;
  std::set<std::string> used_keys;  // AssignmentKey of every trial and earlier suggestion
  std::uint64_t history_size = 0;
};

// Proposes suggestion number `slot` of the batch: an assignment whose key is not in
// state.used_keys, or nullopt when it found none (Suggest then looks for any unused
// assignment of a finite space, or stops).
using Proposer = std::function<std::optional<Assignment>(const SamplerState& state, int slot)>;

// A proposer for each algorithm, built once per Suggest call from the initial state
// (space and config are validated and outlive the proposer).
StatusOr<Proposer> MakeRandomProposer(const SamplerConfig& config, const SearchSpace& space);
StatusOr<Proposer> MakeGridProposer(const SamplerConfig& config, const SearchSpace& space);
StatusOr<Proposer> MakeTpeProposer(const SamplerConfig& config, const SearchSpace& space,
                                   const SamplerState& initial);
StatusOr<Proposer> MakeBayesianProposer(const SamplerConfig& config, const SearchSpace& space,
                                        const SamplerState& initial);

// A space-filling point of the unit cube: Sobol point `index` (shifted by the seed) when
// the space is small enough for the Sobol table, an i.i.d. uniform point otherwise.
Eigen::VectorXd SpaceFillingPoint(std::uint64_t seed, int dimensions, std::uint64_t index);

// The first of `attempts` space-filling points from `first_index` on (spread far apart
// in the sequence) whose assignment is unused.
std::optional<Assignment> UnusedSpaceFillingPoint(const SearchSpace& space, const SamplerState& state,
                                                  std::uint64_t seed, std::uint64_t first_index,
                                                  int attempts = 64);

// Every value of each parameter on the grid (a float without step gets `points_per_float`
// evenly spaced values, on a log scale for log floats).
std::vector<std::vector<ParameterValue>> GridValues(const SearchSpace& space, int points_per_float);

// The first assignment on the grid, enumerated in mixed radix (last parameter fastest)
// from position `offset`, whose key is unused; nullopt when every one is used. Costs at
// most (used keys + 1) steps.
std::optional<Assignment> FirstUnusedOnGrid(const SearchSpace& space,
                                            const std::vector<std::vector<ParameterValue>>& values,
                                            const std::set<std::string>& used_keys,
                                            std::uint64_t offset);

}  // namespace mlscale::hpo
