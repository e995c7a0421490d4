#include "mlscale/hpo/gaussian_process.h"

#include <cmath>

#include <gtest/gtest.h>

namespace mlscale::hpo {
namespace {

KernelParameters Kernel(Eigen::VectorXd length_scales, double signal = 1.0, double noise = 1e-8) {
  return KernelParameters{std::move(length_scales), signal, noise};
}

TEST(Matern52, MatchesTheClosedForm) {
  KernelParameters kernel = Kernel(Eigen::Vector2d(0.5, 2.0), 2.0);
  Eigen::Vector2d x(0.1, 0.2);
  EXPECT_DOUBLE_EQ(Matern52(kernel, x, x), 2.0);
  // r = |(0.5 / 0.5, 0 / 2)| = 1.
  double expected = 2.0 * (1 + std::sqrt(5.0) + 5.0 / 3.0) * std::exp(-std::sqrt(5.0));
  EXPECT_NEAR(Matern52(kernel, x, Eigen::Vector2d(0.6, 0.2)), expected, 1e-14);
  // The long length scale makes the second coordinate matter less.
  EXPECT_GT(Matern52(kernel, x, Eigen::Vector2d(0.1, 0.7)), Matern52(kernel, x, Eigen::Vector2d(0.6, 0.2)));
}

TEST(GaussianProcess, InterpolatesTrainingPointsWithNearZeroVariance) {
  Eigen::MatrixXd inputs(6, 1);
  inputs << 0.0, 0.2, 0.4, 0.6, 0.8, 1.0;
  Eigen::VectorXd targets = (inputs.col(0).array() * 6.0).sin();
  StatusOr<GaussianProcess> gp = GaussianProcess::Create(Kernel(Eigen::VectorXd::Constant(1, 0.3), 1.5), inputs, targets);
  ASSERT_TRUE(gp.ok()) << gp.status().ToString();
  for (Eigen::Index i = 0; i < inputs.rows(); ++i) {
    GaussianProcess::Prediction p = gp->Predict(inputs.row(i).transpose());
    EXPECT_NEAR(p.mean, targets[i], 1e-5);
    EXPECT_LT(p.variance, 1e-6);
  }
  // Between points the variance grows but stays below the prior's; far away it returns
  // to the prior (mean 0, variance = signal variance).
  GaussianProcess::Prediction between = gp->Predict(Eigen::VectorXd::Constant(1, 0.5));
  EXPECT_GT(between.variance, 1e-4);
  EXPECT_LT(between.variance, 1.5);
  GaussianProcess::Prediction far = gp->Predict(Eigen::VectorXd::Constant(1, 10.0));
  EXPECT_NEAR(far.mean, 0.0, 1e-6);
  EXPECT_NEAR(far.variance, 1.5, 1e-6);
  // PredictMany agrees with Predict.
  Eigen::MatrixXd points(2, 1);
  points << 0.5, 10.0;
  Eigen::VectorXd means, variances;
  gp->PredictMany(points, means, variances);
  EXPECT_NEAR(means[0], between.mean, 1e-12);
  EXPECT_NEAR(variances[0], between.variance, 1e-12);
  EXPECT_NEAR(variances[1], far.variance, 1e-9);
}

TEST(GaussianProcess, FittedModelPredictsAKnownFunction) {
  // f(a, b) = sin(6a) depends on a only: the fit should give b the longer length scale
  // and predict f between the training points.
  const int n = 30;
  Eigen::MatrixXd inputs(n, 2);
  Eigen::VectorXd targets(n);
  for (int i = 0; i < n; ++i) {
    inputs(i, 0) = std::fmod(0.618034 * i, 1.0);
    inputs(i, 1) = std::fmod(0.754878 * i + 0.3, 1.0);
    targets[i] = std::sin(6 * inputs(i, 0));
  }
  StatusOr<KernelParameters> kernel = FitKernel(inputs, targets);
  ASSERT_TRUE(kernel.ok()) << kernel.status().ToString();
  EXPECT_GT(kernel->length_scales[1], 2 * kernel->length_scales[0]);
  StatusOr<GaussianProcess> gp = GaussianProcess::Create(*kernel, inputs, targets);
  ASSERT_TRUE(gp.ok());
  for (double a : {0.15, 0.45, 0.75}) {
    GaussianProcess::Prediction p = gp->Predict(Eigen::Vector2d(a, 0.5));
    EXPECT_NEAR(p.mean, std::sin(6 * a), 0.05) << "a = " << a;
    EXPECT_LT(std::sqrt(p.variance), 0.1);
  }
}

TEST(GaussianProcess, DuplicateInputsWithoutNoiseAreHandledByJitter) {
  Eigen::MatrixXd inputs(4, 2);
  inputs << 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9;  // three identical rows: K is singular
  Eigen::VectorXd targets(4);
  targets << 1.0, 1.0, 1.0, -1.0;
  StatusOr<GaussianProcess> gp = GaussianProcess::Create(Kernel(Eigen::Vector2d(0.3, 0.3), 1.0, 0.0), inputs, targets);
  ASSERT_TRUE(gp.ok()) << gp.status().ToString();
  GaussianProcess::Prediction p = gp->Predict(Eigen::Vector2d(0.1, 0.1));
  EXPECT_NEAR(p.mean, 1.0, 1e-3);
  EXPECT_TRUE(std::isfinite(p.variance));
}

TEST(GaussianProcess, RejectsMismatchedInputs) {
  Eigen::MatrixXd inputs(3, 2);
  inputs.setZero();
  EXPECT_EQ(GaussianProcess::Create(Kernel(Eigen::Vector2d(1, 1)), inputs, Eigen::VectorXd(2)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(FitKernel(Eigen::MatrixXd(0, 2), Eigen::VectorXd(0)).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mlscale::hpo
