// The CPU backend: Eigen matrix products (threaded with OpenMP when OMP_NUM_THREADS or
// the default allows), per-element kernels from kernel_math.h, the bucketed AllReduce.
#include <Eigen/Dense>

#include <cmath>

#include "bucketed_allreduce.h"
#include "compute_backend.h"
#include "kernel_math.h"

namespace mlscale::worker {
namespace {


using Matrix = Eigen::MatrixXf;
using MatrixMap = Eigen::Map<Matrix>;
using ConstMatrixMap = Eigen::Map<const Matrix>;
using VectorMap = Eigen::Map<Eigen::VectorXf>;

class CpuBackend final : public ComputeBackend {
 public:
  explicit CpuBackend(const BackendOptions& options)
      : options_(options), layout_(options.layout),
        sync_(*options.communicator, size_t(std::max<int64_t>(1, options.config.bucket_bytes / 4))) {
    const int64_t p = layout_.parameter_count;
    parameters_.assign(size_t(p), 0.0f);
    state_.assign(size_t(p * OptimizerStateSlots(options.config.optimizer.name)), 0.0f);
    gradients_.assign(size_t(p + kExtraSlots), 0.0f);
    const int layers = int(layout_.layers.size());
    pre_activations_.resize(size_t(layers));
    activations_.resize(size_t(layers));
    dropout_.resize(size_t(layers));
  }

  std::string Describe() const override {
    return "cpu (eigen, " + std::to_string(Eigen::nbThreads()) + " thread" + (Eigen::nbThreads() == 1 ? "" : "s") + ")";
  }

  Status LoadState(const TrainingState& state) override {
    if (state.parameters.size() != parameters_.size() || state.optimizer_state.size() != state_.size()) {
      return Internal("training state does not match the model");
    }
    parameters_ = state.parameters;
    state_ = state.optimizer_state;
    step_ = state.step;
    return Status::Ok();
  }

  Status StoreState(TrainingState& state) override {
    state.parameters = parameters_;
    state.optimizer_state = state_;
    state.step = step_;
    return Status::Ok();
  }

  StatusOr<StepResult> TrainStep(const Batch& batch, double learning_rate, bool stop_requested) override {
    const int64_t p = layout_.parameter_count;
    const int64_t n = batch.size();
    const float scale = 1.0f / float(batch.global_size);
    sync_.Start(gradients_.data(), gradients_.size());
    std::fill(gradients_.begin(), gradients_.end(), 0.0f);
    if (n > 0) {
      Forward(ConstMatrixMap(batch.x.data(), layout_.layers[0].in, n), &batch);
      // Softmax cross-entropy; its gradient goes back through the layers.
      Matrix& logits = pre_activations_.back();
      double loss_sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        auto column = logits.col(j);
        const float max = column.maxCoeff();
        column.array() = (column.array() - max).exp();
        const float sum = column.sum();
        loss_sum -= std::log(double(column(batch.y[size_t(j)])) / double(sum));
        column /= sum;
        column(batch.y[size_t(j)]) -= 1.0f;
      }
      logits *= scale;
      gradients_[size_t(p + kLossSlot)] = float(loss_sum) * scale;
    }
    gradients_[size_t(p + kStopSlot)] = stop_requested ? 1.0f : 0.0f;
    if (n > 0) Backward(ConstMatrixMap(batch.x.data(), layout_.layers[0].in, n));
    MLSCALE_RETURN_IF_ERROR(sync_.Finish());
    ++step_;
    Update(learning_rate);
    return StepResult{gradients_[size_t(p + kLossSlot)], gradients_[size_t(p + kStopSlot)] > 0.5f};
  }

  StatusOr<EvaluationTotals> Evaluate(const float* x, const int32_t* y, int64_t count) override {
    EvaluationTotals totals;
    const int64_t chunk = 1024;
    for (int64_t first = 0; first < count; first += chunk) {
      const int64_t n = std::min(chunk, count - first);
      Forward(ConstMatrixMap(x + first * layout_.layers[0].in, layout_.layers[0].in, n), nullptr);
      const Matrix& logits = pre_activations_.back();
      for (int64_t j = 0; j < n; ++j) {
        Eigen::Index predicted;
        const float max = logits.col(j).maxCoeff(&predicted);
        const double log_sum = std::log(double((logits.col(j).array() - max).exp().sum())) + double(max);
        const int32_t label = y[first + j];
        totals.loss_sum += log_sum - double(logits(label, j));
        totals.correct += predicted == label ? 1 : 0;
      }
    }
    return totals;
  }

 private:
  ConstMatrixMap Weight(const LayerLayout& l) const {
    return ConstMatrixMap(parameters_.data() + l.weight_offset, l.out, l.in);
  }
  Eigen::Map<const Eigen::VectorXf> Bias(const LayerLayout& l) const {
    return Eigen::Map<const Eigen::VectorXf>(parameters_.data() + l.bias_offset, l.out);
  }

  // Fills pre_activations_ (and activations_, dropout_ for hidden layers). With a batch
  // the step's dropout masks apply; without (evaluation) none do.
  void Forward(const ConstMatrixMap& input, const Batch* batch) {
    const int layers = int(layout_.layers.size());
    const int activation = int(options_.spec.activation);
    const float p = float(options_.spec.dropout);
    for (int l = 0; l < layers; ++l) {
      const LayerLayout& layer = layout_.layers[size_t(l)];
      Matrix& z = pre_activations_[size_t(l)];
      if (l == 0) {
        z.noalias() = Weight(layer) * input;
      } else {
        z.noalias() = Weight(layer) * activations_[size_t(l - 1)];
      }
      z.colwise() += Bias(layer);
      if (l == layers - 1) break;
      Matrix& a = activations_[size_t(l)];
      a.resize(z.rows(), z.cols());
      const bool drop = batch != nullptr && p > 0.0f;
      if (drop) dropout_[size_t(l)].resize(z.rows(), z.cols());
      for (Eigen::Index j = 0; j < z.cols(); ++j) {
        for (Eigen::Index i = 0; i < z.rows(); ++i) {
          float value = kernels::Activate(activation, z(i, j));
          if (drop) {
            const float keep = kernels::DropoutScale(options_.config.seed, batch->step, l,
                                                     batch->positions[size_t(j)], i, p);
            dropout_[size_t(l)](i, j) = keep;
            value *= keep;
          }
          a(i, j) = value;
        }
      }
      if (!drop) dropout_[size_t(l)].resize(0, 0);
    }
  }

  // Back-propagates the logits' gradient (in pre_activations_.back()), writing each
  // layer's gradients and telling the AllReduce as soon as a layer is done.
  void Backward(const ConstMatrixMap& input) {
    const int activation = int(options_.spec.activation);
    Matrix delta = std::move(pre_activations_.back());
    for (int l = int(layout_.layers.size()) - 1; l >= 0; --l) {
      const LayerLayout& layer = layout_.layers[size_t(l)];
      MatrixMap weight_gradient(gradients_.data() + layer.weight_offset, layer.out, layer.in);
      if (l == 0) {
        weight_gradient.noalias() = delta * input.transpose();
      } else {
        weight_gradient.noalias() = delta * activations_[size_t(l - 1)].transpose();
      }
      VectorMap(gradients_.data() + layer.bias_offset, layer.out) = delta.rowwise().sum();
      if (l > 0) {
        Matrix previous = Weight(layer).transpose() * delta;
        const Matrix& z = pre_activations_[size_t(l - 1)];
        const Matrix& keep = dropout_[size_t(l - 1)];
        for (Eigen::Index j = 0; j < previous.cols(); ++j) {
          for (Eigen::Index i = 0; i < previous.rows(); ++i) {
            float slope = kernels::ActivationSlope(activation, z(i, j));
            if (keep.size() > 0) slope *= keep(i, j);
            previous(i, j) *= slope;
          }
        }
        delta = std::move(previous);
      }
      sync_.ReadyFrom(size_t(layer.weight_offset));
    }
  }

  void Update(double learning_rate) {
    const kernels::UpdateParameters u =
        MakeUpdateParameters(options_.config.optimizer, learning_rate, step_, layout_.parameter_count);
    float* state = state_.data();
    for (int64_t i = 0; i < layout_.parameter_count; ++i) {
      kernels::UpdateParameter(u, parameters_[size_t(i)], gradients_[size_t(i)], state, i);
    }
  }

  BackendOptions options_;
  ParameterLayout layout_;
  BucketedAllReduce sync_;
  int64_t step_ = 0;
  std::vector<float> parameters_, state_, gradients_;
  std::vector<Matrix> pre_activations_, activations_, dropout_;
};

}  // namespace

void SetCpuThreads(int threads) {
  Eigen::setNbThreads(threads);
}

std::unique_ptr<ComputeBackend> CreateCpuBackend(const BackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace mlscale::worker
