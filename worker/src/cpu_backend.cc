// The CPU backend: oneDNN matrix products (dense_products.h), per-element kernels from
// kernel_math.h, Eigen for the small column reductions, the bucketed AllReduce. With T
// threads a rank splits its batch into T slices that the threads of a ThreadTeam push
// through forward and backward independently, each with single-threaded products, then
// sums their gradients: one join per step, and idle threads sleep. (Threaded products
// spin-wait between every product, which collapses on a shared machine, and their sums
// would depend on the thread count in more places.)
#include <Eigen/Dense>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <atomic>
#include <thread>
#include <utility>

#include "bucketed_allreduce.h"
#include "compute_backend.h"
#include "dense_products.h"
#include "huge_page_allocator.h"
#include "kernel_math.h"

namespace mlscale::worker {
namespace {

using Matrix = Eigen::MatrixXf;
using ConstMatrixMap = Eigen::Map<const Matrix>;
using VectorMap = Eigen::Map<Eigen::VectorXf>;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The optimizer step over `n` parameters. One loop per optimizer kind, the kind fixed and
// the arrays declared distinct, so that GCC vectorizes it, square roots and divisions
// included (a loop with the kind read at run time and possibly aliasing arrays stayed
// scalar: 20 % of a synthetic-MLP step). IEEE square root and division are exact, so the
// bits are those of the scalar loop.
template <int kKind>
void UpdateAllOfKind(kernels::UpdateParameters u, float* __restrict parameters, const float* __restrict gradients,
                     float* __restrict state, int64_t first, int64_t end) {
  u.kind = kKind;
  for (int64_t i = first; i < end; ++i) kernels::UpdateParameter(u, parameters[i], gradients[i], state, i);
}

// The optimizer step of parameters [first, end).
void UpdateAll(const kernels::UpdateParameters& u, float* parameters, const float* gradients, float* state,
               int64_t first, int64_t end) {
  switch (u.kind) {
    case kernels::kSgd:
      return UpdateAllOfKind<kernels::kSgd>(u, parameters, gradients, state, first, end);
    case kernels::kAdam:
      return UpdateAllOfKind<kernels::kAdam>(u, parameters, gradients, state, first, end);
    default:
      return UpdateAllOfKind<kernels::kAdamW>(u, parameters, gradients, state, first, end);
  }
}

// Whether the ranks shard the optimizer step: when asked (BackendOptions::shard_optimizer,
// the default) and the communicator does it cheaply. It halves each rank's optimizer step
// at 2 ranks for three rendezvous per step instead of two and no overlap of the gradient
// buckets with backward; once waits yielded the CPU instead of sleeping at once, that paid:
// 1.85x against 1.72x from 1 to 2 processes (tests/bench/results/trainer.md, session 15;
// in session 6, with sleeping waits, it was no faster).
bool ShardOptimizer(const BackendOptions& options) {
  const Communicator& communicator = *options.communicator;
  return options.shard_optimizer && communicator.size() > 1 &&
         communicator.ShardsCheaply(size_t(options.layout.parameter_count), DataType::kFloat32);
}

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
    UseOneThreadForProducts();
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
  HugePageVector<float> gradients;  // threads other than the first; the first writes the step's vector
};

class CpuBackend final : public ComputeBackend {
 public:
  explicit CpuBackend(const BackendOptions& options)
      : options_(options), layout_(options.layout),
        sync_(*options.communicator, size_t(std::max<int64_t>(1, options.config.bucket_bytes / 4))),
        team_(std::max(1, options.threads)),
        sharded_(ShardOptimizer(options)) {
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
    return "cpu (onednn, " + std::to_string(team_.size()) + " thread" + (team_.size() == 1 ? "" : "s") + ")";
  }

  Status LoadState(const TrainingState& state) override {
    if (state.parameters.size() != parameters_.size() || state.optimizer_state.size() != state_.size()) {
      return Internal("training state does not match the model");
    }
    parameters_.assign(state.parameters.begin(), state.parameters.end());
    state_.assign(state.optimizer_state.begin(), state.optimizer_state.end());
    step_ = state.step;
    return Status::Ok();
  }

  // Sharded, each rank's optimizer state is current only in its share: every rank sends
  // its share to the others.
  Status GatherState() override {
    if (!sharded_) return Status::Ok();
    Communicator& communicator = *options_.communicator;
    const int64_t p = layout_.parameter_count;
    for (size_t slot = 0; slot * size_t(p) < state_.size(); ++slot) {
      MLSCALE_RETURN_IF_ERROR(communicator.AllGather(state_.data() + slot * size_t(p), size_t(p), DataType::kFloat32));
    }
    return Status::Ok();
  }

  Status StoreState(TrainingState& state) override {
    state.parameters.assign(parameters_.begin(), parameters_.end());
    state.optimizer_state.assign(state_.begin(), state_.end());
    state.step = step_;
    return Status::Ok();
  }

  StatusOr<StepResult> TrainStep(const Batch& batch, double learning_rate, bool stop_requested) override {
    const int64_t p = layout_.parameter_count, n = batch.size();
    const int64_t features = layout_.layers[0].in;
    const float scale = 1.0f / float(batch.global_size);
    UseOneThreadForProducts();  // this calling thread is the team's first
    const Clock::time_point started = Clock::now();
    Clock::time_point forward_done = started;
    if (!sharded_) sync_.Start(gradients_.data(), gradients_.size());
    const int threads = int(std::min<int64_t>(team_.size(), std::max<int64_t>(1, n / 16)));
    // Slice t of the batch: columns [n t / threads, n (t + 1) / threads).
    auto slice = [&](int t, float* gradients, bool announce) {
      const int64_t first = n * t / threads, count = n * (t + 1) / threads - first;
      // Backward overwrites every parameter's gradient (products with beta 0, SumColumns),
      // so only an empty slice needs zeros: a 1 MiB fill per step less for the synthetic MLP.
      if (count == 0) std::fill(gradients, gradients + p, 0.0f);
      gradients[p + kLossSlot] = 0.0f;
      gradients[p + kStopSlot] = t == 0 && stop_requested ? 1.0f : 0.0f;  // before the tail is sent
      if (count == 0) return;
      Workspace& w = workspaces_[size_t(t)];
      ConstMatrixMap input(batch.x.data() + first * features, features, count);
      Forward(w, input, &batch, first);
      gradients[p + kLossSlot] = float(SoftmaxCrossEntropy(w, batch.y.data() + first, scale));
      if (t == 0) forward_done = Clock::now();
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
    const Clock::time_point backward_done = Clock::now();
    Communicator& communicator = *options_.communicator;
    // Sharded: each rank sums and updates only its share of the parameters, then sends
    // the updated share to the others; the same bytes move as in one AllReduce, and each
    // rank's optimizer step is 1/n of the parameters. Either way every parameter gets the
    // same sum and the same update, so the bits do not depend on sharding.
    const auto [first, end] = sharded_ ? ShareOf(size_t(p), communicator.rank(), communicator.size())
                                       : std::pair<size_t, size_t>(0, size_t(p));
    if (sharded_) {
      MLSCALE_RETURN_IF_ERROR(communicator.ReduceScatterSum(gradients_.data(), size_t(p), DataType::kFloat32));
      MLSCALE_RETURN_IF_ERROR(communicator.AllReduceSum(gradients_.data() + p, kExtraSlots, DataType::kFloat32));
    } else {
      MLSCALE_RETURN_IF_ERROR(sync_.Finish());
    }
    MLSCALE_RETURN_IF_ERROR(TakeProductStatus());
    const Clock::time_point reduced = Clock::now();
    ++step_;
    const kernels::UpdateParameters u =
        MakeUpdateParameters(options_.config.optimizer, learning_rate, step_, layout_.parameter_count);
    UpdateAll(u, parameters_.data(), gradients_.data(), state_.data(), int64_t(first), int64_t(end));
    const Clock::time_point updated = Clock::now();
    if (sharded_) {
      MLSCALE_RETURN_IF_ERROR(communicator.AllGather(parameters_.data(), size_t(p), DataType::kFloat32));
    }
    StepResult result{gradients_[size_t(p + kLossSlot)], gradients_[size_t(p + kStopSlot)] > 0.5f, {}};
    result.phases.forward = Seconds(forward_done - started);
    result.phases.backward = Seconds(backward_done - forward_done);
    result.phases.all_reduce_wait = Seconds(reduced - backward_done) + Seconds(Clock::now() - updated);
    result.phases.optimizer = Seconds(updated - reduced);
    return result;
  }

  StatusOr<EvaluationTotals> Evaluate(const float* x, const int32_t* y, int64_t count) override {
    EvaluationTotals totals;
    UseOneThreadForProducts();
    const int64_t chunk = 1024, features = layout_.layers[0].in;
    Workspace& w = workspaces_[0];
    for (int64_t first = 0; first < count; first += chunk) {
      const int64_t n = std::min(chunk, count - first);
      Forward(w, ConstMatrixMap(x + first * features, features, n), nullptr, 0);
      const Matrix& logits = w.pre_activations.back();
      const int64_t classes = logits.rows();
      for (int64_t j = 0; j < n; ++j) {
        const float* column = logits.data() + j * classes;
        int64_t predicted = 0;
        for (int64_t i = 1; i < classes; ++i) predicted = column[i] > column[predicted] ? i : predicted;
        const float max = column[predicted];
        float sum = 0;
        for (int64_t i = 0; i < classes; ++i) sum += std::exp(column[i] - max);
        const int32_t label = y[first + j];
        totals.loss_sum += std::log(double(sum)) + double(max) - double(column[label]);
        totals.correct += predicted == label ? 1 : 0;
      }
    }
    MLSCALE_RETURN_IF_ERROR(TakeProductStatus());
    return totals;
  }

 private:
  Eigen::Map<const Eigen::VectorXf> Bias(const LayerLayout& l) const {
    return Eigen::Map<const Eigen::VectorXf>(parameters_.data() + l.bias_offset, l.out);
  }

  const float* WeightData(const LayerLayout& l) const { return parameters_.data() + l.weight_offset; }

  // c (m x n) = op(a) op(b) over k, whole column-major matrices (MultiplyColumnMajor).
  // Called from the team's threads: the first failure is kept for TakeProductStatus.
  void Multiply(float* c, int64_t m, int64_t n, int64_t k, const float* a, bool transpose_a, const float* b,
                bool transpose_b) {
    Status status = MultiplyColumnMajor(transpose_a, transpose_b, m, n, k, a, transpose_a ? k : m, b,
                                        transpose_b ? n : k, c, m);
    if (status.ok()) return;
    std::lock_guard lock(product_mutex_);
    if (product_status_.ok()) product_status_ = std::move(status);
  }

  // The first failed product since the last call (and forgets it).
  Status TakeProductStatus() {
    std::lock_guard lock(product_mutex_);
    return std::exchange(product_status_, Status::Ok());
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
      const int64_t count = input.cols();
      z.resize(layer.out, count);
      Multiply(z.data(), layer.out, count, layer.in, WeightData(layer), false,
               l == 0 ? input.data() : w.activations[size_t(l - 1)].data(), false);
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
  // Plain loops over each column in index order (see SumColumns for why not Eigen's).
  double SoftmaxCrossEntropy(Workspace& w, const int32_t* labels, float scale) {
    Matrix& logits = w.pre_activations.back();
    const int64_t classes = logits.rows();
    double loss_sum = 0;
    for (int64_t j = 0; j < logits.cols(); ++j) {
      float* column = logits.data() + j * classes;
      float max = column[0];
      for (int64_t i = 1; i < classes; ++i) max = std::max(max, column[i]);
      float sum = 0;
      for (int64_t i = 0; i < classes; ++i) {
        column[i] = std::exp(column[i] - max);
        sum += column[i];
      }
      loss_sum -= std::log(double(column[labels[j]]) / double(sum));
      for (int64_t i = 0; i < classes; ++i) column[i] /= sum;
      column[labels[j]] -= 1.0f;
      for (int64_t i = 0; i < classes; ++i) column[i] *= scale;
    }
    return loss_sum * double(scale);
  }

  // out[i] = sum over the columns j of m(i, j), each row summed in column order. Not
  // Eigen's rowwise().sum(): assigned to a Map its vectorized loop starts at the
  // destination's first 32-byte boundary, sums the rows before it one way and the rest
  // another (pairwise), so the bits depended on where the gradient vector was allocated
  // (two runs in one process differed in the last bits of the bias gradients).
  static void SumColumns(const Matrix& m, float* out) {
    const int64_t rows = m.rows();
    std::fill(out, out + rows, 0.0f);
    for (int64_t j = 0; j < m.cols(); ++j) {
      const float* column = m.data() + j * rows;
      for (int64_t i = 0; i < rows; ++i) out[i] += column[i];
    }
  }

  // Back-propagates the logits' gradient into `gradients`; with `announce` each finished
  // layer is reported to LayerFinished at once.
  void Backward(Workspace& w, const ConstMatrixMap& input, float* gradients, bool announce) {
    const int activation = int(options_.spec.activation);
    Matrix delta = std::move(w.pre_activations.back());
    const int64_t count = input.cols();
    for (int l = int(layout_.layers.size()) - 1; l >= 0; --l) {
      const LayerLayout& layer = layout_.layers[size_t(l)];
      Multiply(gradients + layer.weight_offset, layer.out, layer.in, count, delta.data(), false,
               l == 0 ? input.data() : w.activations[size_t(l - 1)].data(), true);
      SumColumns(delta, gradients + layer.bias_offset);
      if (l > 0) {
        Matrix previous(layer.in, count);
        Multiply(previous.data(), layer.in, count, layer.out, WeightData(layer), true, delta.data(), false);
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
    // Layer 0 completes the vector: its buckets are reduced by Finish on the calling thread
    // right after, which saves waking the communication thread and waiting for it.
    if (l > 0 && !sharded_) sync_.ReadyFrom(size_t(layer.weight_offset));
  }

  BackendOptions options_;
  ParameterLayout layout_;
  std::mutex product_mutex_;
  Status product_status_;
  BucketedAllReduce sync_;
  ThreadTeam team_;
  const bool sharded_;  // ShardOptimizer
  int64_t step_ = 0;
  // On huge pages (huge_page_allocator.h): the AllReduce copies gradients between ranks, and
  // sharded, the parameters and optimizer state too.
  HugePageVector<float> parameters_, state_, gradients_;
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
