// Bayesian optimization: a Gaussian process on warped inputs, log expected improvement
// maximized over many candidates and refined locally, kriging believer for busy points.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numbers>
#include <numeric>

#include <nlopt.hpp>

#include "mlscale/hpo/gaussian_process.h"
#include "random.h"
#include "sampler_internal.h"
#include "sobol.h"

namespace mlscale::hpo {
namespace {

// Maps unit points to the GP's inputs: continuous floats keep their (log-)warped
// coordinate; ints and stepped floats are snapped to the value they decode to, so points
// decoding to the same value look the same to the GP; categoricals become one-hot columns.
class FeatureMap {
 public:
  explicit FeatureMap(const SearchSpace& space) : space_(space) {
    for (const Parameter& p : space.parameters) {
      first_column_.push_back(size_);
      size_ += p.type == ParameterType::kCategorical ? static_cast<int>(p.choices.size()) : 1;
    }
  }
  int size() const { return size_; }
  // The feature column of a continuous or ordinal parameter (the first one of a categorical).
  int column(int parameter) const { return first_column_[static_cast<std::size_t>(parameter)]; }

  void Map(const Eigen::VectorXd& unit, Eigen::Ref<Eigen::VectorXd> features) const {
    features.setZero();
    for (std::size_t i = 0; i < space_.parameters.size(); ++i) {
      const Parameter& p = space_.parameters[i];
      double u = unit[static_cast<Eigen::Index>(i)];
      if (p.type == ParameterType::kCategorical) {
        auto k = static_cast<int>(p.choices.size());
        int index = std::min(static_cast<int>(u * k), k - 1);
        features[first_column_[i] + index] = 1.0;
      } else if (DiscreteSize(p)) {
        features[first_column_[i]] = EncodeValue(p, DecodeValue(p, u));
      } else {
        features[first_column_[i]] = std::clamp(u, 0.0, 1.0);
      }
    }
  }
  Eigen::VectorXd Map(const Eigen::VectorXd& unit) const {
    Eigen::VectorXd features(size_);
    Map(unit, features);
    return features;
  }
  Eigen::MatrixXd MapRows(const std::vector<Eigen::VectorXd>& units) const {
    Eigen::MatrixXd features(static_cast<Eigen::Index>(units.size()), size_);
    for (std::size_t r = 0; r < units.size(); ++r) features.row(static_cast<Eigen::Index>(r)) = Map(units[r]).transpose();
    return features;
  }

 private:
  const SearchSpace& space_;
  std::vector<int> first_column_;
  int size_ = 0;
};

// log(z Phi(z) + phi(z)), accurate far into the lower tail.
double LogExpectedImprovementFactor(double z) {
  constexpr double kLogSqrt2Pi = 0.91893853320467274178;
  if (z > -6.0) {
    double value = z * 0.5 * std::erfc(-z / std::numbers::sqrt2) + std::exp(-0.5 * z * z - kLogSqrt2Pi);
    return std::log(std::max(value, 1e-300));
  }
  // phi(z) (1/z^2 - 3/z^4 + 15/z^6 - ...) for z << 0.
  double z2 = z * z;
  return -0.5 * z2 - kLogSqrt2Pi - std::log(z2) + std::log1p(-3.0 / z2 + 15.0 / (z2 * z2));
}

double LogExpectedImprovement(double mean, double variance, double best) {
  double sigma = std::sqrt(std::max(variance, 1e-18));
  return LogExpectedImprovementFactor((best - mean) / sigma) + std::log(sigma);
}

// Log expected improvement and its derivatives with respect to mean and variance:
// d/dmean = -Phi(z) / (sigma h(z)), d/dvariance = phi(z) / (2 variance h(z)), h(z) = z Phi + phi.
struct LogImprovement {
  double value;
  double d_mean;
  double d_variance;
};
LogImprovement LogExpectedImprovementWithGradient(double mean, double variance, double best) {
  constexpr double kLogSqrt2Pi = 0.91893853320467274178;
  double clamped = std::max(variance, 1e-18);
  double sigma = std::sqrt(clamped);
  double z = (best - mean) / sigma;
  double log_h = LogExpectedImprovementFactor(z);
  double pdf_over_h = std::exp(-0.5 * z * z - kLogSqrt2Pi - log_h);
  double cdf_over_h = z > -6.0 ? 0.5 * std::erfc(-z / std::numbers::sqrt2) * std::exp(-log_h)
                               // Phi(z) ~ phi(z) / |z| (1 - 1/z^2 + 3/z^4) in the lower tail
                               : pdf_over_h / -z * (1.0 - 1.0 / (z * z) + 3.0 / (z * z * z * z));
  return {log_h + std::log(sigma), -cdf_over_h / sigma,
          variance > 1e-18 ? pdf_over_h / (2.0 * clamped) : 0.0};
}

// Objective values made friendlier to a stationary GP: shifted to start at 0, compressed
// logarithmically beyond the 90th percentile (heavy upper tails of losses otherwise
// dominate the fit and hide small differences near the best), then standardized.
// Monotone, so the minimizer does not change.
Eigen::VectorXd TransformTargets(const std::vector<double>& values) {
  Eigen::VectorXd y = Eigen::Map<const Eigen::VectorXd>(values.data(), static_cast<Eigen::Index>(values.size()));
  y.array() -= y.minCoeff();
  std::vector<double> sorted(y.data(), y.data() + y.size());
  std::size_t quantile = sorted.size() * 9 / 10;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(quantile), sorted.end());
  double scale = sorted[quantile];
  if (!(scale > 0)) scale = y.maxCoeff() > 0 ? y.maxCoeff() : 1.0;
  y = (y / scale).array().log1p();
  double mean = y.mean();
  double sd = std::sqrt((y.array() - mean).square().mean());
  return (y.array() - mean) / (sd > 0 ? sd : 1.0);
}

// Observations the kernel is fitted on when there are many: the best half and an even
// spread of the rest (the posterior still uses all of them).
std::vector<Eigen::Index> FitSubset(const Eigen::VectorXd& targets, int max_size) {
  std::vector<Eigen::Index> order(static_cast<std::size_t>(targets.size()));
  std::iota(order.begin(), order.end(), 0);
  if (targets.size() <= max_size) return order;
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return targets[a] < targets[b]; });
  auto best = static_cast<std::size_t>(max_size / 2);
  std::vector<Eigen::Index> subset(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(best));
  std::size_t rest = order.size() - best, wanted = static_cast<std::size_t>(max_size) - best;
  for (std::size_t i = 0; i < wanted; ++i) subset.push_back(order[best + i * rest / wanted]);
  return subset;
}

// Floating-point work allowed for scoring candidates (see Candidates).
constexpr double kCandidateBudget = 6e7;

class BayesianProposer {
 public:
  BayesianProposer(const SamplerConfig& config, const SearchSpace& space, GaussianProcess model, double best)
      : config_(config), space_(space), features_(space), model_(std::move(model)), best_(best) {
    for (std::size_t i = 0; i < space.parameters.size(); ++i) {
      (DiscreteSize(space.parameters[i]) ? discrete_ : continuous_).push_back(static_cast<int>(i));
    }
  }

  std::optional<Assignment> Propose(const SamplerState& state, int slot) const {
    // Kriging believer: busy points join the model with its own prediction as value,
    // which removes the uncertainty around them. A prediction better than the best value
    // is replaced by the best value (a constant liar there): otherwise a point whose
    // predicted improvement is certain would keep its expected improvement and be
    // suggested again.
    std::optional<GaussianProcess> believer;
    if (!state.busy_points.empty()) {
      Eigen::MatrixXd busy = features_.MapRows(state.busy_points);
      Eigen::VectorXd means, variances;
      model_.PredictMany(busy, means, variances);
      means = means.cwiseMax(best_);
      Eigen::MatrixXd inputs(model_.size() + busy.rows(), features_.size());
      inputs << observed_inputs_, busy;
      Eigen::VectorXd targets(inputs.rows());
      targets << observed_targets_, means;
      StatusOr<GaussianProcess> gp = GaussianProcess::Create(model_.kernel(), std::move(inputs), std::move(targets));
      if (gp.ok()) believer = std::move(*gp);
    }
    const GaussianProcess& gp = believer ? *believer : model_;

    std::vector<Eigen::VectorXd> candidates = Candidates(state, slot);
    Eigen::MatrixXd candidate_features = features_.MapRows(candidates);
    Eigen::VectorXd means, variances;
    gp.PredictMany(candidate_features, means, variances);
    std::vector<double> scores(candidates.size());
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      scores[i] = LogExpectedImprovement(means[static_cast<Eigen::Index>(i)], variances[static_cast<Eigen::Index>(i)], best_);
    }
    std::vector<std::size_t> order(candidates.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return scores[a] > scores[b]; });

    // Refine the best distinct candidates; take the best unused result, else the best
    // unused candidate.
    std::optional<Assignment> chosen;
    double chosen_score = -std::numeric_limits<double>::infinity();
    std::set<std::string> refined_starts;
    for (std::size_t rank = 0; rank < order.size() && static_cast<int>(refined_starts.size()) < config_.bayesian.local_searches; ++rank) {
      Eigen::VectorXd start = candidates[order[rank]];
      if (!refined_starts.insert(AssignmentKey(Decode(space_, start))).second) continue;
      double score = scores[order[rank]];
      Eigen::VectorXd refined = Refine(gp, start, score);
      Assignment assignment = Decode(space_, refined);
      if (score > chosen_score && !state.used_keys.contains(AssignmentKey(assignment))) {
        chosen = std::move(assignment);
        chosen_score = score;
      }
    }
    if (chosen) return chosen;
    for (std::size_t index : order) {
      Assignment assignment = Decode(space_, candidates[index]);
      if (!state.used_keys.contains(AssignmentKey(assignment))) return assignment;
    }
    return std::nullopt;
  }

  void SetObservations(Eigen::MatrixXd inputs, Eigen::VectorXd targets) {
    observed_inputs_ = std::move(inputs);
    observed_targets_ = std::move(targets);
  }

 private:
  // Sobol points of the whole cube, and Gaussian perturbations of the best observations
  // (most improvement is found near them).
  std::vector<Eigen::VectorXd> Candidates(const SamplerState& state, int slot) const {
    auto dims = static_cast<int>(space_.parameters.size());
    Random random({config_.seed, state.history_size, static_cast<std::uint64_t>(slot), 0xca});
    std::vector<Eigen::VectorXd> candidates;
    // Scoring a candidate costs O(n^2) for n observations: large histories get fewer
    // candidates (not below 256) so that a suggestion stays fast.
    double observations = static_cast<double>(model_.size() + static_cast<Eigen::Index>(state.busy_points.size()));
    int global = std::clamp(static_cast<int>(kCandidateBudget / (observations * observations)), 256,
                            std::max(config_.bayesian.candidates, 256));
    global = std::min(global, config_.bayesian.candidates);
    std::uint64_t shift = random.Bits();
    if (dims <= SobolSequence::kMaxDimensions) {
      SobolSequence sobol(dims, shift);
      for (int i = 0; i < global; ++i) candidates.push_back(sobol.Point(static_cast<std::uint64_t>(i)));
    } else {
      for (int i = 0; i < global; ++i) candidates.push_back(SpaceFillingPoint(shift, dims, static_cast<std::uint64_t>(i)));
    }
    std::vector<std::size_t> order(state.completed_values.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](auto a, auto b) { return state.completed_values[a] < state.completed_values[b]; });
    std::size_t centres = std::min<std::size_t>(order.size(), 5);
    int local = std::max(1, global / 4);
    for (int i = 0; i < local && centres > 0; ++i) {
      const Eigen::VectorXd& centre = state.completed_points[order[static_cast<std::size_t>(i) % centres]];
      double sigma = (i % 2 == 0) ? 0.02 : 0.1;
      Eigen::VectorXd point = centre;
      for (Eigen::Index d = 0; d < point.size(); ++d) point[d] = std::clamp(point[d] + sigma * random.Normal(), 0.0, 1.0);
      candidates.push_back(point);
    }
    return candidates;
  }

  double Acquisition(const GaussianProcess& gp, const Eigen::VectorXd& unit) const {
    GaussianProcess::Prediction p = gp.Predict(features_.Map(unit));
    return LogExpectedImprovement(p.mean, p.variance, best_);
  }

  // Local search from `start`: L-BFGS on the continuous coordinates (with the analytic
  // gradient of log EI), then one pass over the neighbouring values of each discrete
  // parameter. Updates `score`.
  Eigen::VectorXd Refine(const GaussianProcess& gp, Eigen::VectorXd start, double& score) const {
    if (!continuous_.empty()) {
      struct Context {
        const BayesianProposer& self;
        const GaussianProcess& gp;
        Eigen::VectorXd point;
      } context{*this, gp, start};
      nlopt::opt optimizer(nlopt::LD_LBFGS, static_cast<unsigned>(continuous_.size()));
      optimizer.set_lower_bounds(0.0);
      optimizer.set_upper_bounds(1.0);
      optimizer.set_max_objective(
          [](const std::vector<double>& x, std::vector<double>& gradient, void* data) {
            auto* c = static_cast<Context*>(data);
            const std::vector<int>& coordinates = c->self.continuous_;
            for (std::size_t i = 0; i < x.size(); ++i) c->point[coordinates[i]] = x[i];
            GaussianProcess::PredictionWithGradient p = c->gp.PredictWithGradient(c->self.features_.Map(c->point));
            LogImprovement value = LogExpectedImprovementWithGradient(p.mean, p.variance, c->self.best_);
            for (std::size_t i = 0; i < gradient.size(); ++i) {
              int column = c->self.features_.column(coordinates[i]);
              gradient[i] = value.d_mean * p.mean_gradient[column] + value.d_variance * p.variance_gradient[column];
            }
            return value.value;
          },
          &context);
      optimizer.set_maxeval(30);
      optimizer.set_ftol_rel(1e-6);
      std::vector<double> x(continuous_.size());
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::clamp(start[continuous_[i]], 0.0, 1.0);
      double value = score;
      try {
        optimizer.optimize(x, value);
      } catch (const std::exception&) {
        value = -std::numeric_limits<double>::infinity();  // keep the start
      }
      if (value > score) {
        for (std::size_t i = 0; i < x.size(); ++i) start[continuous_[i]] = x[i];
        score = value;
      }
    }
    for (int i : discrete_) {
      const Parameter& p = space_.parameters[static_cast<std::size_t>(i)];
      auto size = static_cast<int>(*DiscreteSize(p));
      int current = std::min(static_cast<int>(start[i] * size), size - 1);
      std::vector<int> options;
      if (p.type == ParameterType::kCategorical) {
        for (int k = 0; k < size; ++k) options.push_back(k);
      } else {
        for (int offset : {-2, -1, 1, 2}) options.push_back(current + offset);
      }
      for (int k : options) {
        if (k < 0 || k >= size || k == current) continue;
        Eigen::VectorXd trial = start;
        trial[i] = (k + 0.5) / size;
        double value = Acquisition(gp, trial);
        if (value > score) {
          score = value;
          start = trial;
          current = k;
        }
      }
    }
    return start;
  }

  const SamplerConfig& config_;
  const SearchSpace& space_;
  FeatureMap features_;
  GaussianProcess model_;
  double best_;
  Eigen::MatrixXd observed_inputs_;
  Eigen::VectorXd observed_targets_;
  std::vector<int> continuous_;
  std::vector<int> discrete_;
};

}  // namespace

StatusOr<Proposer> MakeBayesianProposer(const SamplerConfig& config, const SearchSpace& space,
                                        const SamplerState& initial) {
  if (static_cast<int>(initial.completed_values.size()) < std::max(config.bayesian.startup_trials, 2)) {
    return Proposer([&config, &space](const SamplerState& state, int slot) {
      return UnusedSpaceFillingPoint(space, state, config.seed, state.history_size + static_cast<std::uint64_t>(slot));
    });
  }
  FeatureMap features(space);
  Eigen::MatrixXd inputs = features.MapRows(initial.completed_points);
  Eigen::VectorXd targets = TransformTargets(initial.completed_values);
  std::vector<Eigen::Index> subset = FitSubset(targets, config.bayesian.max_fit_trials);
  Eigen::MatrixXd fit_inputs(static_cast<Eigen::Index>(subset.size()), inputs.cols());
  Eigen::VectorXd fit_targets(static_cast<Eigen::Index>(subset.size()));
  for (std::size_t i = 0; i < subset.size(); ++i) {
    fit_inputs.row(static_cast<Eigen::Index>(i)) = inputs.row(subset[i]);
    fit_targets[static_cast<Eigen::Index>(i)] = targets[subset[i]];
  }
  StatusOr<KernelParameters> kernel = FitKernel(fit_inputs, fit_targets);
  if (!kernel.ok()) return kernel.status().WithContext("bayesian sampler");
  StatusOr<GaussianProcess> gp = GaussianProcess::Create(*kernel, inputs, targets);
  if (!gp.ok()) return gp.status().WithContext("bayesian sampler");
  auto proposer = std::make_shared<BayesianProposer>(config, space, std::move(*gp), targets.minCoeff());
  proposer->SetObservations(std::move(inputs), std::move(targets));
  return Proposer([proposer](const SamplerState& state, int slot) { return proposer->Propose(state, slot); });
}

}  // namespace mlscale::hpo
