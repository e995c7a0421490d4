// Suggesting new trials. One stateless, deterministic entry point for every algorithm:
//
//   space + history (completed, failed, stopped and pending trials) + count -> suggestions
//
// The same config, space and history always give the same suggestions, so a restarted
// controller that replays its persisted history gets the same answers. Suggestions never
// repeat an assignment already in the history (in any state) or earlier in the same batch;
// pending trials are accounted for, so parallel workers get distinct, spread-out points.
// Completed trials inform the model; pending and early-stopped trials (whose final value is
// unknown) repel suggestions (TPE: constant liar; GP: kriging believer); failed trials
// are only never suggested again.
#pragma once

#include <cstdint>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/hpo/space.h"
#include "mlscale/hpo/trial.h"

namespace mlscale::hpo {

enum class Algorithm {
  kRandom,    // independent uniform draws (in the warped unit cube), or Sobol points
  kGrid,      // the Cartesian product of every parameter's values, in a fixed order
  kBayesian,  // Gaussian process (Matern-5/2, ARD) with log expected improvement
  kTpe,       // multivariate tree-structured Parzen estimator
};

struct RandomOptions {
  bool quasi_random = false;  // Sobol sequence (randomly shifted by the seed) instead of i.i.d.
};

struct GridOptions {
  int points_per_float = 5;  // values of a float without step: evenly spaced (log-spaced)
};

struct BayesianOptions {
  int startup_trials = 10;  // suggestions from a Sobol sequence until this many trials exist
  // Acquisition evaluated on this many points (plus a quarter as many near the best
  // trials) before refinement; fewer, down to 256, with large histories (n^2 work each).
  int candidates = 2048;
  int local_searches = 5;   // best candidates refined by a local optimizer
  // Kernel hyperparameters are fitted on at most this many completed trials (the best
  // half and an even spread of the rest); the posterior always uses all of them.
  int max_fit_trials = 128;
};

struct TpeOptions {
  int startup_trials = 10;  // suggestions from a Sobol sequence until this many trials exist
  int candidates = 64;      // draws from the good-trial density per suggestion
  double gamma = 0.15;      // fraction of completed trials that count as good (at most 25)
};

struct SamplerConfig {
  Algorithm algorithm = Algorithm::kBayesian;
  Direction direction = Direction::kMinimize;
  std::uint64_t seed = 0;
  RandomOptions random;
  GridOptions grid;
  BayesianOptions bayesian;
  TpeOptions tpe;
};

// OK, or InvalidArgument naming the bad option.
Status ValidateSamplerConfig(const SamplerConfig& config);

// Returns up to `count` new assignments (count >= 0). Fewer than `count` only when the
// space has no unused assignment left (a finite space, e.g. grid exhaustion); an empty
// result then means the search is complete. InvalidArgument for a bad config, space,
// history or count.
StatusOr<std::vector<Assignment>> Suggest(const SamplerConfig& config, const SearchSpace& space,
                                          const std::vector<Trial>& history, int count);

}  // namespace mlscale::hpo
