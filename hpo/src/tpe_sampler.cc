// Multivariate tree-structured Parzen estimator (TPE): the completed trials are split into
// a good and a bad group by value; candidates are drawn from the good group's density l(x)
// and the one maximizing l(x) / g(x) is suggested. Busy points (pending, stopped, earlier
// in the batch) join the bad group (constant liar), which pushes suggestions away from them.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

#include "random.h"
#include "sampler_internal.h"

namespace mlscale::hpo {
namespace {

constexpr double kCategoricalKeep = 0.5;  // a categorical kernel's mass on its own choice

// A mixture of one product kernel per point plus a uniform prior component, over the unit
// cube. Continuous and ordinal coordinates use Gaussians truncated to [0, 1]; categorical
// coordinates keep the point's choice with probability kCategoricalKeep.
class ParzenEstimator {
 public:
  ParzenEstimator(const SearchSpace& space, std::vector<Eigen::VectorXd> points)
      : space_(space), points_(std::move(points)) {
    // Each point's bandwidth in a coordinate is the larger gap to its neighbours there
    // (as in Bergstra et al.'s TPE), clipped to [1 / min(100, n + 1), 1]: dense regions
    // get narrow kernels, lone points broad ones. Discrete parameters get at least half
    // a bin.
    auto n = points_.size();
    sigmas_.assign(n, Eigen::VectorXd(static_cast<Eigen::Index>(space.parameters.size())));
    double floor = 1.0 / std::min(100.0, static_cast<double>(n) + 1.0);
    for (std::size_t d = 0; d < space.parameters.size(); ++d) {
      auto coordinate = static_cast<Eigen::Index>(d);
      std::vector<std::size_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](auto a, auto b) { return points_[a][coordinate] < points_[b][coordinate]; });
      std::optional<std::int64_t> size = DiscreteSize(space.parameters[d]);
      double lowest = size ? std::max(floor, 0.5 / static_cast<double>(*size)) : floor;
      for (std::size_t rank = 0; rank < n; ++rank) {
        double x = points_[order[rank]][coordinate];
        double left = rank > 0 ? x - points_[order[rank - 1]][coordinate] : 0.0;
        double right = rank + 1 < n ? points_[order[rank + 1]][coordinate] - x : 0.0;
        sigmas_[order[rank]][coordinate] = std::clamp(std::max(left, right), lowest, 1.0);
      }
    }
  }

  Eigen::VectorXd Sample(Random& random) const {
    auto dims = static_cast<Eigen::Index>(space_.parameters.size());
    Eigen::VectorXd x(dims);
    std::size_t component = random.Below(points_.size() + 1);
    if (component == points_.size()) {  // the prior
      for (Eigen::Index d = 0; d < dims; ++d) x[d] = random.Uniform();
      return x;
    }
    const Eigen::VectorXd& centre = points_[component];
    for (Eigen::Index d = 0; d < dims; ++d) {
      const Parameter& p = space_.parameters[static_cast<std::size_t>(d)];
      if (p.type == ParameterType::kCategorical) {
        auto k = static_cast<double>(p.choices.size());
        double own = std::floor(centre[d] * k);
        double choice = random.Uniform() < kCategoricalKeep ? own : static_cast<double>(random.Below(p.choices.size()));
        x[d] = (choice + 0.5) / k;
        continue;
      }
      double value = -1.0;
      for (int attempt = 0; attempt < 32 && (value < 0.0 || value > 1.0); ++attempt) {
        value = centre[d] + sigmas_[component][d] * random.Normal();
      }
      x[d] = std::clamp(value, 0.0, 1.0);
    }
    return x;
  }

  double LogDensity(const Eigen::VectorXd& x) const {
    auto dims = static_cast<Eigen::Index>(space_.parameters.size());
    double prior = 0.0;
    for (Eigen::Index d = 0; d < dims; ++d) {
      const Parameter& p = space_.parameters[static_cast<std::size_t>(d)];
      if (p.type == ParameterType::kCategorical) prior -= std::log(static_cast<double>(p.choices.size()));
    }
    std::vector<double> terms{prior};
    for (std::size_t j = 0; j < points_.size(); ++j) {
      const Eigen::VectorXd& centre = points_[j];
      double log_kernel = 0.0;
      for (Eigen::Index d = 0; d < dims; ++d) {
        const Parameter& p = space_.parameters[static_cast<std::size_t>(d)];
        if (p.type == ParameterType::kCategorical) {
          double k = static_cast<double>(p.choices.size());
          bool same = std::floor(x[d] * k) == std::floor(centre[d] * k);
          log_kernel += std::log((same ? kCategoricalKeep : 0.0) + (1.0 - kCategoricalKeep) / k);
          continue;
        }
        double sigma = sigmas_[j][d];
        double z = (x[d] - centre[d]) / sigma;
        double mass = 0.5 * (std::erfc(-(1.0 - centre[d]) / sigma / std::numbers::sqrt2) -
                             std::erfc(centre[d] / sigma / std::numbers::sqrt2));
        log_kernel += -0.5 * z * z - std::log(sigma * std::sqrt(2.0 * std::numbers::pi) * std::max(mass, 1e-300));
      }
      terms.push_back(log_kernel);
    }
    double top = *std::max_element(terms.begin(), terms.end());
    double sum = 0.0;
    for (double t : terms) sum += std::exp(t - top);
    return top + std::log(sum) - std::log(static_cast<double>(terms.size()));
  }

 private:
  const SearchSpace& space_;
  std::vector<Eigen::VectorXd> points_;
  std::vector<Eigen::VectorXd> sigmas_;  // per point and coordinate
};

}  // namespace

StatusOr<Proposer> MakeTpeProposer(const SamplerConfig& config, const SearchSpace& space, const SamplerState&) {
  return Proposer([&config, &space](const SamplerState& state, int slot) -> std::optional<Assignment> {
    std::size_t completed = state.completed_values.size();
    if (completed < static_cast<std::size_t>(config.tpe.startup_trials)) {
      return UnusedSpaceFillingPoint(space, state, config.seed, state.history_size + static_cast<std::uint64_t>(slot));
    }
    std::vector<std::size_t> order(completed);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](auto a, auto b) { return state.completed_values[a] < state.completed_values[b]; });
    auto good_count = std::min<std::size_t>(
        25, std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(config.tpe.gamma * static_cast<double>(completed)))));
    std::vector<Eigen::VectorXd> good, bad(state.busy_points);
    for (std::size_t rank = 0; rank < completed; ++rank) {
      (rank < good_count ? good : bad).push_back(state.completed_points[order[rank]]);
    }
    ParzenEstimator good_density(space, std::move(good)), bad_density(space, std::move(bad));

    Random random({config.seed, state.history_size, static_cast<std::uint64_t>(slot), 0x7e});
    std::optional<Assignment> best;
    double best_score = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < config.tpe.candidates; ++i) {
      Eigen::VectorXd x = good_density.Sample(random);
      double score = good_density.LogDensity(x) - bad_density.LogDensity(x);
      if (score <= best_score) continue;
      Assignment assignment = Decode(space, x);
      if (state.used_keys.contains(AssignmentKey(assignment))) continue;
      best = std::move(assignment);
      best_score = score;
    }
    return best;
  });
}

}  // namespace mlscale::hpo
