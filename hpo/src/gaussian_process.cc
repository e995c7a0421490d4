#include "mlscale/hpo/gaussian_process.h"

#include <cmath>
#include <numbers>
#include <optional>
#include <vector>

#include <Eigen/Dense>
#include <nlopt.hpp>

namespace mlscale::hpo {
namespace {

const double kSqrt5 = std::sqrt(5.0);

double Matern52OfDistance(double signal_variance, double r) {
  double s = kSqrt5 * r;
  return signal_variance * (1.0 + s + s * s / 3.0) * std::exp(-s);
}

// Distances |(a_i - b_j) / length_scales| between the rows of a and b.
Eigen::MatrixXd ScaledDistances(const Eigen::VectorXd& length_scales, const Eigen::MatrixXd& a,
                                const Eigen::MatrixXd& b) {
  Eigen::MatrixXd as = a * length_scales.cwiseInverse().asDiagonal();
  Eigen::MatrixXd bs = b * length_scales.cwiseInverse().asDiagonal();
  Eigen::MatrixXd squared = (-2.0 * as * bs.transpose()).eval();
  squared.colwise() += as.rowwise().squaredNorm();
  squared.rowwise() += bs.rowwise().squaredNorm().transpose();
  return squared.cwiseMax(0.0).cwiseSqrt();
}

Eigen::MatrixXd KernelOfDistances(double signal_variance, const Eigen::MatrixXd& distances) {
  return distances.unaryExpr([&](double r) { return Matern52OfDistance(signal_variance, r); });
}

// The lower Cholesky factor of `matrix` (symmetric), adding growing jitter to the diagonal
// until it is numerically positive definite. nullopt if even a large jitter fails.
std::optional<Eigen::MatrixXd> RobustCholesky(const Eigen::MatrixXd& matrix) {
  double scale = std::max(matrix.diagonal().mean(), 1e-300);
  double jitter = 0.0;
  for (int attempt = 0; attempt < 8; ++attempt) {  // jitter 0, then 1e-10 .. 1e-4 of the diagonal
    Eigen::MatrixXd jittered = matrix;
    jittered.diagonal().array() += jitter;
    Eigen::LLT<Eigen::MatrixXd> llt(jittered);
    if (llt.info() == Eigen::Success) {
      Eigen::MatrixXd lower = llt.matrixL();
      if (lower.diagonal().allFinite() && (lower.diagonal().array() > 0).all()) return lower;
    }
    jitter = jitter == 0.0 ? 1e-10 * scale : jitter * 10.0;
  }
  return std::nullopt;
}

// Hyperparameters as one vector: log length scales, log signal variance, log noise.
struct Prior {
  double mean;
  double sd;
  double Log(double x) const { return -0.5 * (x - mean) * (x - mean) / (sd * sd); }
  double Gradient(double x) const { return -(x - mean) / (sd * sd); }
};

struct FitProblem {
  const Eigen::MatrixXd& inputs;
  const Eigen::VectorXd& targets;
  Prior length_scale;
  Prior signal;
  Prior noise;
  std::vector<double> best;
  double best_value = -std::numeric_limits<double>::infinity();

  // Log marginal likelihood + log prior, and its gradient.
  double Evaluate(const std::vector<double>& theta, std::vector<double>& gradient) {
    auto dims = inputs.cols();
    auto n = inputs.rows();
    Eigen::VectorXd length_scales(dims);
    for (Eigen::Index d = 0; d < dims; ++d) length_scales[d] = std::exp(theta[static_cast<std::size_t>(d)]);
    double signal_variance = std::exp(theta[static_cast<std::size_t>(dims)]);
    double noise_variance = std::exp(theta[static_cast<std::size_t>(dims) + 1]);

    Eigen::MatrixXd distances = ScaledDistances(length_scales, inputs, inputs);
    Eigen::MatrixXd kernel = KernelOfDistances(signal_variance, distances);
    Eigen::MatrixXd covariance = kernel;
    covariance.diagonal().array() += noise_variance;
    std::optional<Eigen::MatrixXd> lower = RobustCholesky(covariance);
    if (!lower) {
      std::fill(gradient.begin(), gradient.end(), 0.0);
      return -1e10;
    }
    auto triangular = lower->triangularView<Eigen::Lower>();
    Eigen::VectorXd alpha = triangular.transpose().solve(triangular.solve(targets));
    Eigen::MatrixXd inverse = triangular.transpose().solve(triangular.solve(Eigen::MatrixXd::Identity(n, n)));
    double value = -0.5 * targets.dot(alpha) - lower->diagonal().array().log().sum() -
                   0.5 * static_cast<double>(n) * std::log(2.0 * std::numbers::pi);
    for (Eigen::Index d = 0; d < dims; ++d) value += length_scale.Log(theta[static_cast<std::size_t>(d)]);
    value += signal.Log(theta[static_cast<std::size_t>(dims)]) + noise.Log(theta[static_cast<std::size_t>(dims) + 1]);

    if (!gradient.empty()) {
      // d lml / d theta_j = 0.5 tr(W dK/dtheta_j), W = alpha alpha^T - K^-1.
      Eigen::MatrixXd w = alpha * alpha.transpose() - inverse;
      // dk/dlog(l_d) = 5/3 s2 (1 + sqrt5 r) exp(-sqrt5 r) (delta_d / l_d)^2.
      Eigen::MatrixXd e = w.cwiseProduct(distances.unaryExpr([&](double r) {
        return 5.0 / 3.0 * signal_variance * (1.0 + kSqrt5 * r) * std::exp(-kSqrt5 * r);
      }));
      Eigen::VectorXd row_sums = e.rowwise().sum();
      Eigen::MatrixXd ex = e * inputs;
      for (Eigen::Index d = 0; d < dims; ++d) {
        auto x = inputs.col(d);
        double sum = 2.0 * (x.cwiseProduct(x).dot(row_sums) - x.dot(ex.col(d)));
        gradient[static_cast<std::size_t>(d)] = 0.5 * sum / (length_scales[d] * length_scales[d]) +
                                                length_scale.Gradient(theta[static_cast<std::size_t>(d)]);
      }
      gradient[static_cast<std::size_t>(dims)] =
          0.5 * w.cwiseProduct(kernel).sum() + signal.Gradient(theta[static_cast<std::size_t>(dims)]);
      gradient[static_cast<std::size_t>(dims) + 1] =
          0.5 * noise_variance * w.trace() + noise.Gradient(theta[static_cast<std::size_t>(dims) + 1]);
    }
    if (value > best_value) {
      best_value = value;
      best = theta;
    }
    return value;
  }
};

}  // namespace

double Matern52(const KernelParameters& kernel, const Eigen::Ref<const Eigen::VectorXd>& x,
                const Eigen::Ref<const Eigen::VectorXd>& y) {
  double r = (x - y).cwiseQuotient(kernel.length_scales).norm();
  return Matern52OfDistance(kernel.signal_variance, r);
}

StatusOr<KernelParameters> FitKernel(const Eigen::MatrixXd& inputs, const Eigen::VectorXd& targets) {
  if (inputs.rows() == 0 || inputs.cols() == 0) return InvalidArgument("FitKernel: no observations");
  if (inputs.rows() != targets.size()) return InvalidArgument("FitKernel: inputs and targets differ in length");
  if (!inputs.allFinite() || !targets.allFinite()) return InvalidArgument("FitKernel: non-finite input");
  auto dims = static_cast<std::size_t>(inputs.cols());
  // Weak priors (in log space): length scales around half the unit cube, growing slowly
  // with the dimension; unit signal variance (targets are standardized); small noise.
  FitProblem problem{inputs, targets,
                     Prior{std::log(0.5) + 0.25 * std::log(static_cast<double>(dims)), 1.0},
                     Prior{0.0, 1.0}, Prior{std::log(1e-3), 2.0}, {}, -std::numeric_limits<double>::infinity()};
  std::vector<double> theta(dims + 2), lower(dims + 2), upper(dims + 2);
  for (std::size_t d = 0; d < dims; ++d) {
    theta[d] = problem.length_scale.mean;
    lower[d] = std::log(5e-3);
    upper[d] = std::log(50.0);
  }
  theta[dims] = 0.0;
  lower[dims] = std::log(0.05);
  upper[dims] = std::log(20.0);
  theta[dims + 1] = std::log(1e-3);
  lower[dims + 1] = std::log(1e-6);
  upper[dims + 1] = std::log(1.0);

  nlopt::opt optimizer(nlopt::LD_LBFGS, static_cast<unsigned>(dims + 2));
  optimizer.set_lower_bounds(lower);
  optimizer.set_upper_bounds(upper);
  optimizer.set_max_objective(
      [](const std::vector<double>& x, std::vector<double>& grad, void* data) {
        return static_cast<FitProblem*>(data)->Evaluate(x, grad);
      },
      &problem);
  optimizer.set_maxeval(100);
  optimizer.set_ftol_rel(1e-6);
  double value = 0;
  try {
    optimizer.optimize(theta, value);
  } catch (const std::exception&) {
    // Round-off or a failed line search: keep the best point evaluated so far.
  }
  if (problem.best.empty()) return Internal("FitKernel: the kernel matrix is not positive definite");
  KernelParameters kernel;
  kernel.length_scales.resize(static_cast<Eigen::Index>(dims));
  for (std::size_t d = 0; d < dims; ++d) kernel.length_scales[static_cast<Eigen::Index>(d)] = std::exp(problem.best[d]);
  kernel.signal_variance = std::exp(problem.best[dims]);
  kernel.noise_variance = std::exp(problem.best[dims + 1]);
  return kernel;
}

StatusOr<GaussianProcess> GaussianProcess::Create(KernelParameters kernel, Eigen::MatrixXd inputs,
                                                  Eigen::VectorXd targets) {
  if (inputs.rows() != targets.size()) return InvalidArgument("GaussianProcess: inputs and targets differ in length");
  if (inputs.cols() != kernel.length_scales.size()) {
    return InvalidArgument("GaussianProcess: inputs and length scales differ in dimension");
  }
  GaussianProcess gp;
  Eigen::MatrixXd covariance =
      KernelOfDistances(kernel.signal_variance, ScaledDistances(kernel.length_scales, inputs, inputs));
  covariance.diagonal().array() += kernel.noise_variance;
  std::optional<Eigen::MatrixXd> lower = RobustCholesky(covariance);
  if (!lower) return Internal("GaussianProcess: the kernel matrix is not positive definite even with jitter");
  gp.cholesky_lower_ = std::move(*lower);
  auto triangular = gp.cholesky_lower_.triangularView<Eigen::Lower>();
  gp.alpha_ = triangular.transpose().solve(triangular.solve(targets));
  gp.kernel_ = std::move(kernel);
  gp.inputs_ = std::move(inputs);
  return gp;
}

GaussianProcess::Prediction GaussianProcess::Predict(const Eigen::Ref<const Eigen::VectorXd>& x) const {
  Eigen::VectorXd k(inputs_.rows());
  for (Eigen::Index i = 0; i < inputs_.rows(); ++i) k[i] = Matern52(kernel_, inputs_.row(i).transpose(), x);
  Eigen::VectorXd v = cholesky_lower_.triangularView<Eigen::Lower>().solve(k);
  return {k.dot(alpha_), std::max(kernel_.signal_variance - v.squaredNorm(), 0.0)};
}

GaussianProcess::PredictionWithGradient GaussianProcess::PredictWithGradient(
    const Eigen::Ref<const Eigen::VectorXd>& x) const {
  // dk_i/dx = -5/3 s2 (1 + sqrt5 r_i) exp(-sqrt5 r_i) (x - x_i) / l^2.
  Eigen::Index n = inputs_.rows();
  Eigen::VectorXd k(n);
  Eigen::MatrixXd k_gradient(n, x.size());
  Eigen::VectorXd inverse_squared = kernel_.length_scales.array().square().inverse();
  for (Eigen::Index i = 0; i < n; ++i) {
    Eigen::VectorXd delta = x - inputs_.row(i).transpose();
    double r = std::sqrt(delta.cwiseProduct(delta).dot(inverse_squared));
    k[i] = Matern52OfDistance(kernel_.signal_variance, r);
    double factor = -5.0 / 3.0 * kernel_.signal_variance * (1.0 + kSqrt5 * r) * std::exp(-kSqrt5 * r);
    k_gradient.row(i) = (factor * delta.cwiseProduct(inverse_squared)).transpose();
  }
  Eigen::VectorXd v = cholesky_lower_.triangularView<Eigen::Lower>().solve(k);
  Eigen::VectorXd w = cholesky_lower_.transpose().triangularView<Eigen::Upper>().solve(v);  // K^-1 k
  PredictionWithGradient p;
  p.mean = k.dot(alpha_);
  p.variance = std::max(kernel_.signal_variance - v.squaredNorm(), 0.0);
  p.mean_gradient = k_gradient.transpose() * alpha_;
  p.variance_gradient = -2.0 * (k_gradient.transpose() * w);
  return p;
}

void GaussianProcess::PredictMany(const Eigen::MatrixXd& points, Eigen::VectorXd& means,
                                  Eigen::VectorXd& variances) const {
  Eigen::MatrixXd k =
      KernelOfDistances(kernel_.signal_variance, ScaledDistances(kernel_.length_scales, inputs_, points));
  means = k.transpose() * alpha_;
  cholesky_lower_.triangularView<Eigen::Lower>().solveInPlace(k);
  variances = (kernel_.signal_variance - k.colwise().squaredNorm().array()).cwiseMax(0.0).transpose();
}

}  // namespace mlscale::hpo
