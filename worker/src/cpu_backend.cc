// The CPU backend: Eigen matrix products, per-element kernels from kernel_math.h, the
// bucketed AllReduce. With T threads a rank splits its batch into T slices that the
// threads of a ThreadTeam push through forward and backward independently, then sums
// their gradients: one join per step, and idle threads sleep. (Eigen's own threaded
// products spin-wait between every product, which collapses on a shared machine.)
#include <Eigen/Dense>

#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <atomic>
#include <thread>

#include "bucketed_allreduce.h"
#include "compute_backend.h"
#include "kernel_math.h"

namespace mlscale::worker {
namespace {

using Matrix = Eigen::MatrixXf;
using MatrixMap = Eigen::Map<Matrix>;
using ConstMatrixMap = Eigen::Map<const Matrix>;
using VectorMap = Eigen::Map<Eigen::VectorXf>;

// `size` - 1 threads that, with the caller, run task(0..size-1) and wait for all of them.
class ThreadTeam {
 public:
  explicit ThreadTeam(int size) {
    for (int t = 1; t < size; ++t) threads_.emplace_back([this, t] { Work(t); });
  }
  ~ThreadTeam() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& thread : threads_) thread.join();
  }
  ThreadTeam(const ThreadTeam&) = delete;
  ThreadTeam& operator=(const ThreadTeam&) = delete;

  int size() const { return int(threads_.size()) + 1; }

  void Run(const std::function<void(int)>& task) {
    {
      std::lock_guard lock(mutex_);
      task_ = &task;
      pending_ = int(threads_.size());
      ++generation_;
    }
    wake_.notify_all();
    task(0);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    task_ = nullptr;
  }

 private:
  void Work(int index) {
    uint64_t seen = 0;
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      const std::function<void(int)>* task = task_;
      lock.unlock();
      (*task)(index);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* task_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
};

// What one thread needs for forward and backward over its slice of a batch.
struct Workspace {
  std::vector<Matrix> pre_activations, activations, dropout;
  std::vector<float> gradients;  // threads other than the first; the first writes the step's vector
};

class CpuBackend final : public ComputeBackend {
 public:
  explicit CpuBackend(const BackendOptions& options)
      : options_(options), layout_(options.layout),
        sync_(*options.communicator, size_t(std::max<int64_t>(1, options.config.bucket_bytes / 4))),
        team_(std::max(1, options.threads)) {
    const int64_t p = layout_.parameter_count;
    parameters_.assign(size_t(p), 0.0f);
    state_.assign(size_t(p * OptimizerStateSlots(options.config.optimizer.name)), 0.0f);
    gradients_.assign(size_t(p + kExtraSlots), 0.0f);
    workspaces_.resize(size_t(team_.size()));
    for (size_t t = 0; t < workspaces_.size(); ++t) {
      Workspace& w = workspaces_[t];
      w.pre_activations.resize(layout_.layers.size());
      w.activations.resize(layout_.layers.size());
      w.dropout.resize(layout_.layers.size());
      if (t > 0) w.gradients.assign(gradients_.size(), 0.0f);
    }
  }

  std::string Describe() const override {
    return "cpu (eigen, " + std::to_string(team_.size()) + " thread" + (team_.size() == 1 ? "" : "s") + ")";
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
    const int64_t p = layout_.parameter_count, n = batch.size();
    const int64_t features = layout_.layers[0].in;
    const float scale = 1.0f / float(batch.global_size);
    sync_.Start(gradients_.data(), gradients_.size());
    const int threads = int(std::min<int64_t>(team_.size(), std::max<int64_t>(1, n / 16)));
    // Slice t of the batch: columns [n t / threads, n (t + 1) / threads).
    auto slice = [&](int t, float* gradients, bool announce) {
      const int64_t first = n * t / threads, count = n * (t + 1) / threads - first;
      std::fill(gradients, gradients + p + kExtraSlots, 0.0f);
      if (t == 0) gradients[p + kStopSlot] = stop_requested ? 1.0f : 0.0f;  // before the tail is sent
      if (count == 0) return;
      Workspace& w = workspaces_[size_t(t)];
      ConstMatrixMap input(batch.x.data() + first * features, features, count);
      Forward(w, input, &batch, first);
      gradients[p + kLossSlot] = float(SoftmaxCrossEntropy(w, batch.y.data() + first, scale));
      Backward(w, input, gradients, announce);
    };
    // Each layer is announced once every thread has its gradient: AllReduce overlaps backward.
    active_threads_ = threads;
    for (auto& done : layer_threads_done_) done.store(0);
    if (threads == 1) {
      slice(0, gradients_.data(), true);
    } else {
      team_.Run([&](int t) {
        if (t < threads) slice(t, t == 0 ? gradients_.data() : workspaces_[size_t(t)].gradients.data(), true);
      });
    }
    MLSCALE_RETURN_IF_ERROR(sync_.Finish());
    ++step_;
    const kernels::UpdateParameters u =
        MakeUpdateParameters(options_.config.optimizer, learning_rate, step_, layout_.parameter_count);
    float* state = state_.data();
    for (int64_t i = 0; i < p; ++i) kernels::UpdateParameter(u, parameters_[size_t(i)], gradients_[size_t(i)], state, i);
    return StepResult{gradients_[size_t(p + kLossSlot)], gradients_[size_t(p + kStopSlot)] > 0.5f};
  }

  StatusOr<EvaluationTotals> Evaluate(const float* x, const int32_t* y, int64_t count) override {
    EvaluationTotals totals;
    const int64_t chunk = 1024, features = layout_.layers[0].in;
    Workspace& w = workspaces_[0];
    for (int64_t first = 0; first < count; first += chunk) {
      const int64_t n = std::min(chunk, count - first);
      Forward(w, ConstMatrixMap(x + first * features, features, n), nullptr, 0);
      const Matrix& logits = w.pre_activations.back();
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

  // Fills the workspace's pre-activations (and activations and dropout multipliers of the
  // hidden layers). With a batch, its dropout masks apply to columns that start at
  // position `first` of the rank's batch; without (evaluation) none do.
  void Forward(Workspace& w, const ConstMatrixMap& input, const Batch* batch, int64_t first) {
    const int layers = int(layout_.layers.size());
    const int activation = int(options_.spec.activation);
    const float p = float(options_.spec.dropout);
    for (int l = 0; l < layers; ++l) {
      const LayerLayout& layer = layout_.layers[size_t(l)];
      Matrix& z = w.pre_activations[size_t(l)];
      if (l == 0) {
        z.noalias() = Weight(layer) * input;
      } else {
        z.noalias() = Weight(layer) * w.activations[size_t(l - 1)];
      }
      z.colwise() += Bias(layer);
      if (l == layers - 1) break;
      Matrix& a = w.activations[size_t(l)];
      a.resize(z.rows(), z.cols());
      const bool drop = batch != nullptr && p > 0.0f;
      Matrix& keep = w.dropout[size_t(l)];
      keep.resize(drop ? z.rows() : 0, drop ? z.cols() : 0);
      // Flat loops over contiguous columns, so the compiler vectorizes them.
      const int64_t rows = z.rows(), size = z.size();
      const float* zs = z.data();
      float* as = a.data();
      for (int64_t k = 0; k < size; ++k) as[k] = kernels::Activate(activation, zs[k]);
      if (!drop) continue;
      const float kept = 1.0f / (1.0f - p);
      for (Eigen::Index j = 0; j < z.cols(); ++j) {
        const uint64_t key =
            kernels::DropoutColumnKey(options_.config.seed, batch->step, l, batch->positions[size_t(first + j)]);
        float* keep_column = keep.data() + j * rows;
        float* a_column = as + j * rows;
        for (int64_t i = 0; i < rows; ++i) {
          keep_column[i] = kernels::DropoutUnitScale(key, i, p, kept);
          a_column[i] *= keep_column[i];
        }
      }
    }
  }

  // Turns the logits into the loss gradient times `scale`; returns the scaled loss sum.
  double SoftmaxCrossEntropy(Workspace& w, const int32_t* labels, float scale) {
    Matrix& logits = w.pre_activations.back();
    double loss_sum = 0;
    for (Eigen::Index j = 0; j < logits.cols(); ++j) {
      auto column = logits.col(j);
      const float max = column.maxCoeff();
      column.array() = (column.array() - max).exp();
      const float sum = column.sum();
      loss_sum -= std::log(double(column(labels[j])) / double(sum));
      column /= sum;
      column(labels[j]) -= 1.0f;
    }
    logits *= scale;
    return loss_sum * double(scale);
  }

  // Back-propagates the logits' gradient into `gradients`; with `announce` each finished
  // layer is reported to LayerFinished at once.
  void Backward(Workspace& w, const ConstMatrixMap& input, float* gradients, bool announce) {
    const int activation = int(options_.spec.activation);
    Matrix delta = std::move(w.pre_activations.back());
    for (int l = int(layout_.layers.size()) - 1; l >= 0; --l) {
      const LayerLayout& layer = layout_.layers[size_t(l)];
      MatrixMap weight_gradient(gradients + layer.weight_offset, layer.out, layer.in);
      if (l == 0) {
        weight_gradient.noalias() = delta * input.transpose();
      } else {
        weight_gradient.noalias() = delta * w.activations[size_t(l - 1)].transpose();
      }
      VectorMap(gradients + layer.bias_offset, layer.out) = delta.rowwise().sum();
      if (l > 0) {
        Matrix previous = Weight(layer).transpose() * delta;
        const Matrix& z = w.pre_activations[size_t(l - 1)];
        const Matrix& keep = w.dropout[size_t(l - 1)];
        float* d = previous.data();
        const float* zs = z.data();
        const int64_t size = previous.size();
        if (keep.size() > 0) {  // slope times mask first, as the GPU kernel does: the same roundings
          const float* ks = keep.data();
          for (int64_t k = 0; k < size; ++k) d[k] *= kernels::ActivationSlope(activation, zs[k]) * ks[k];
        } else {
          for (int64_t k = 0; k < size; ++k) d[k] *= kernels::ActivationSlope(activation, zs[k]);
        }
        delta = std::move(previous);
      }
      if (announce) LayerFinished(l);
    }
  }

  // Called by each active thread when its slice's gradient of layer `l` is complete. The
  // last of them adds the other threads' gradients of the layer into the step's vector
  // (in thread order: the sum does not depend on timing) and hands it to the AllReduce.
  // Every thread reaches layer l only after layer l + 1, so layers are announced in order.
  void LayerFinished(int l) {
    if (active_threads_ > 1 && layer_threads_done_[size_t(l)].fetch_add(1) + 1 < active_threads_) return;
    const LayerLayout& layer = layout_.layers[size_t(l)];
    const int64_t last = int64_t(layout_.layers.size()) - 1;
    const int64_t end = l == last ? layout_.parameter_count + kExtraSlots : layer.bias_offset + layer.out;
    VectorMap sum(gradients_.data() + layer.weight_offset, end - layer.weight_offset);
    for (int t = 1; t < active_threads_; ++t) {
      sum += VectorMap(workspaces_[size_t(t)].gradients.data() + layer.weight_offset, end - layer.weight_offset);
    }
    sync_.ReadyFrom(size_t(layer.weight_offset));
  }

  BackendOptions options_;
  ParameterLayout layout_;
  BucketedAllReduce sync_;
  ThreadTeam team_;
  int64_t step_ = 0;
  std::vector<float> parameters_, state_, gradients_;
  std::vector<Workspace> workspaces_;
  int active_threads_ = 1;  // of this step
  // Per layer: how many active threads have its gradient (LayerFinished).
  std::vector<std::atomic<int>> layer_threads_done_ = std::vector<std::atomic<int>>(layout_.layers.size());
};

}  // namespace

std::unique_ptr<ComputeBackend> CreateCpuBackend(const BackendOptions& options) {
  Eigen::setNbThreads(1);  // parallelism comes from the team's slices
  return std::make_unique<CpuBackend>(options);
}

}  // namespace mlscale::worker
