// What a compute backend (CPU or GPU) does for the trainer (internal). The trainer owns
// the loop, the data, the schedule, checkpoints and metrics; a backend owns the
// parameters and optimizer state on its device and runs one training step: forward,
// backward with the gradient AllReduce overlapped, optimizer update.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cmath>

#include "kernel_math.h"
#include "mlscale/common/status.h"
#include "mlscale/worker/communicator.h"
#include "mlscale/worker/config.h"
#include "mlscale/worker/model.h"
#include "mlscale/worker/trainer.h"

namespace mlscale::worker {

// This rank's part of one global batch. Features are sample after sample (local x
// features, row-major), i.e. a features x local column-major matrix.
struct Batch {
  int64_t step = 0;
  int64_t global_size = 0;  // samples in the global batch, over all ranks
  std::vector<float> x;
  std::vector<int32_t> y;
  std::vector<int64_t> positions;  // each sample's position in the global batch
  int64_t size() const { return int64_t(y.size()); }
};

struct StepResult {
  double loss = 0;          // mean cross-entropy over the global batch
  bool stop_requested = false;  // some rank asked to stop after this step
  // Where this step's time went on this rank (all but `data`, which the trainer measures).
  // The CPU backend fills them; the GPU backend's kernels run asynchronously and it
  // leaves them 0.
  StepPhaseSeconds phases;
};

struct EvaluationTotals {
  double loss_sum = 0;
  double correct = 0;
};

class ComputeBackend {
 public:
  virtual ~ComputeBackend() = default;
  // "cpu (eigen, 2 threads)", "gpu (NVIDIA H100, bf16)".
  virtual std::string Describe() const = 0;
  virtual Status LoadState(const TrainingState& state) = 0;
  virtual Status StoreState(TrainingState& state) = 0;
  // Collective (every rank calls it, before rank 0's StoreState of a checkpoint): brings
  // state that the ranks keep in shares (a sharded optimizer's) to every rank.
  virtual Status GatherState() { return Status::Ok(); }
  // One optimizer step on `batch` at `learning_rate`; `stop_requested` is this rank's
  // wish to stop, combined over all ranks in the same AllReduce as the gradients.
  virtual StatusOr<StepResult> TrainStep(const Batch& batch, double learning_rate, bool stop_requested) = 0;
  // Summed loss and correct predictions on `count` samples (no dropout, this rank only).
  virtual StatusOr<EvaluationTotals> Evaluate(const float* x, const int32_t* y, int64_t count) = 0;
};

// The gradient vector of a step has two more slots, summed in the same AllReduce: this
// rank's share of the mean loss, and 1 when this rank wants to stop.
constexpr int64_t kLossSlot = 0, kStopSlot = 1, kExtraSlots = 2;

// The per-element optimizer settings for step `step` (1-based) at `learning_rate`.
inline kernels::UpdateParameters MakeUpdateParameters(const OptimizerConfig& o, double learning_rate, int64_t step,
                                                      int64_t parameters) {
  kernels::UpdateParameters u{};
  u.kind = int(o.name);
  u.learning_rate = float(learning_rate);
  u.momentum = float(o.momentum);
  u.beta1 = float(o.beta1);
  u.beta2 = float(o.beta2);
  u.epsilon = float(o.epsilon);
  u.weight_decay = float(o.weight_decay);
  u.bias_correction1 = float(1.0 - std::pow(o.beta1, double(step)));
  u.bias_correction2 = float(1.0 - std::pow(o.beta2, double(step)));
  u.parameters = parameters;
  return u;
}

struct BackendOptions {
  ModelSpec spec;
  ParameterLayout layout;
  TrainerConfig config;
  Communicator* communicator = nullptr;  // the job's communicator (bootstrap for NCCL)
  int local_rank = 0;
  int threads = 1;  // CPU threads of this rank
  bool shard_optimizer = true;  // TrainOptions::shard_optimizer
};

std::unique_ptr<ComputeBackend> CreateCpuBackend(const BackendOptions& options);
// Fails when this build has no GPU backend or no device is visible.
StatusOr<std::unique_ptr<ComputeBackend>> CreateGpuBackend(const BackendOptions& options);
// How many CUDA devices are visible (0 without a GPU build).
int VisibleGpuCount();

}  // namespace mlscale::worker
