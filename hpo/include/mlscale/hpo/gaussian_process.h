// Gaussian-process regression with a Matern-5/2 kernel and one length scale per input
// dimension (ARD). The Bayesian sampler's model; public so that it can be tested and
// reused on its own.
#pragma once

#include <Eigen/Core>
#include <Eigen/Cholesky>

#include "mlscale/common/status.h"

namespace mlscale::hpo {

struct KernelParameters {
  Eigen::VectorXd length_scales;  // one per input dimension, > 0
  double signal_variance = 1.0;   // k(x, x)
  double noise_variance = 1e-6;   // added to the diagonal for observations
};

// Matern-5/2: s2 (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r), r = |(x - y) / length_scales|.
double Matern52(const KernelParameters& kernel, const Eigen::Ref<const Eigen::VectorXd>& x,
                const Eigen::Ref<const Eigen::VectorXd>& y);

// Kernel hyperparameters maximizing the log marginal likelihood (plus weak log-normal
// priors that keep them away from degenerate values) of targets y (already standardized)
// at inputs X (one row per observation, each coordinate in [0, 1]), by L-BFGS (NLopt)
// from a fixed start: deterministic. InvalidArgument for empty or mismatched inputs.
StatusOr<KernelParameters> FitKernel(const Eigen::MatrixXd& inputs, const Eigen::VectorXd& targets);

class GaussianProcess {
 public:
  // Conditions the prior (zero mean) on the observations. The Cholesky factorization adds
  // growing jitter to the diagonal until the kernel matrix is numerically positive
  // definite; Internal if even a large jitter does not help.
  static StatusOr<GaussianProcess> Create(KernelParameters kernel, Eigen::MatrixXd inputs,
                                          Eigen::VectorXd targets);

  // Posterior mean and variance of the latent function (without observation noise) at x.
  struct Prediction {
    double mean = 0.0;
    double variance = 0.0;
  };
  Prediction Predict(const Eigen::Ref<const Eigen::VectorXd>& x) const;
  // The same with the gradients of mean and variance with respect to x.
  struct PredictionWithGradient {
    double mean = 0.0;
    double variance = 0.0;
    Eigen::VectorXd mean_gradient;
    Eigen::VectorXd variance_gradient;
  };
  PredictionWithGradient PredictWithGradient(const Eigen::Ref<const Eigen::VectorXd>& x) const;
  // The same for every row of `points` at once (faster for many points).
  void PredictMany(const Eigen::MatrixXd& points, Eigen::VectorXd& means,
                   Eigen::VectorXd& variances) const;

  const KernelParameters& kernel() const { return kernel_; }
  Eigen::Index size() const { return inputs_.rows(); }

 private:
  GaussianProcess() = default;

  KernelParameters kernel_;
  Eigen::MatrixXd inputs_;
  Eigen::MatrixXd cholesky_lower_;  // L with L L^T = K + (noise + jitter) I
  Eigen::VectorXd alpha_;           // (K + noise I)^-1 y
};

}  // namespace mlscale::hpo
