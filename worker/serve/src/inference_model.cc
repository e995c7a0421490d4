// The forward pass of mlscale-serve. It mirrors the trainer's CPU evaluation
// (worker/src/cpu_backend.cc: Forward and Evaluate) expression for expression, with the
// same Eigen products and kernels::Activate, compiled with the same flags, so a served
// prediction equals the trainer's evaluation of the same input (checked to 1e-6 by
// tests/worker/serve/inference_model_test.cc against the trainer's own backend).
#include "mlscale/serve/inference_model.h"

#include <Eigen/Dense>

#include <cmath>

#include "kernel_math.h"

namespace mlscale::serve {
namespace {
using Matrix = Eigen::MatrixXf;
using ConstMatrixMap = Eigen::Map<const Matrix>;
}  // namespace

StatusOr<std::shared_ptr<const InferenceModel>> InferenceModel::Load(const std::string& dir) {
  auto artifact = worker::ReadModelArtifact(dir);
  if (!artifact.ok()) return artifact.status();
  return std::shared_ptr<const InferenceModel>(std::make_shared<InferenceModel>(std::move(artifact).value()));
}

InferenceModel::InferenceModel(worker::ModelArtifact artifact)
    : artifact_(std::move(artifact)), layout_(worker::ParameterLayout::For(artifact_.spec)) {}

void InferenceModel::Predict(const float* features, int64_t count, std::vector<float>& probabilities,
                             std::vector<int64_t>& predicted) const {
  const int64_t in = inputs(), out = classes();
  // Normalized input, a features x count column-major matrix (one sample per column), as
  // the trainer standardizes its data set: (v - mean) / stddev.
  Matrix x(in, count);
  for (int64_t j = 0; j < count; ++j) {
    for (int64_t i = 0; i < in; ++i) {
      x(i, j) = (features[j * in + i] - artifact_.standardization.mean[size_t(i)]) / artifact_.standardization.stddev[size_t(i)];
    }
  }
  const int layers = int(layout_.layers.size());
  const int activation = int(artifact_.spec.activation);
  Matrix z, a = std::move(x);
  for (int l = 0; l < layers; ++l) {
    const worker::LayerLayout& layer = layout_.layers[size_t(l)];
    ConstMatrixMap weight(artifact_.parameters.data() + layer.weight_offset, layer.out, layer.in);
    Eigen::Map<const Eigen::VectorXf> bias(artifact_.parameters.data() + layer.bias_offset, layer.out);
    z.noalias() = weight * a;
    z.colwise() += bias;
    if (l == layers - 1) break;
    a.resize(z.rows(), z.cols());
    for (Eigen::Index j = 0; j < z.cols(); ++j) {
      for (Eigen::Index i = 0; i < z.rows(); ++i) a(i, j) = worker::kernels::Activate(activation, z(i, j));
    }
  }
  // Softmax in double, as the trainer's evaluation computes its log-sum-exp.
  probabilities.resize(size_t(count * out));
  predicted.resize(size_t(count));
  for (int64_t j = 0; j < count; ++j) {
    Eigen::Index best;
    const float max = z.col(j).maxCoeff(&best);
    const double sum = double((z.col(j).array() - max).exp().sum());
    const double log_sum = std::log(sum) + double(max);
    for (int64_t c = 0; c < out; ++c) probabilities[size_t(j * out + c)] = float(std::exp(double(z(c, j)) - log_sum));
    predicted[size_t(j)] = int64_t(best);
  }
}

}  // namespace mlscale::serve
