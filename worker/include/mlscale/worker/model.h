// The model description shared by every backend: the MLP's shape, where each layer's
// weights live in one flat float32 parameter vector, its seeded initialization, the
// optimizer state, and the learning-rate schedule. Backends only supply the kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "mlscale/worker/config.h"

namespace mlscale::worker {

struct ModelSpec {
  int64_t inputs = 0;
  std::vector<int> hidden;  // widths of the hidden layers
  int64_t classes = 0;
  Activation activation = Activation::kRelu;
  double dropout = 0.0;

  static ModelSpec FromConfig(const ModelConfig& model, int64_t inputs, int64_t classes);
  int layers() const { return int(hidden.size()) + 1; }  // dense layers, the last gives logits
};

// Dense layer l maps `in` to `out` units. Its weight is an out x in column-major matrix
// (the layout of torch.nn.Linear.weight transposed in memory: element (o, i) at
// weight_offset + i * out + o) followed by `out` biases. Layers are stored in order, so
// the gradients of layers l..L occupy one tail of the vector, which the backward pass
// completes first (the bucketed AllReduce sends tails while earlier layers compute).
struct LayerLayout {
  int64_t in = 0, out = 0;
  int64_t weight_offset = 0, bias_offset = 0;
};

struct ParameterLayout {
  std::vector<LayerLayout> layers;
  int64_t parameter_count = 0;

  static ParameterLayout For(const ModelSpec& spec);
};

// PyTorch's default for nn.Linear: weights and biases uniform in +-1/sqrt(in), drawn from
// `seed`, so every rank starts from the same values.
std::vector<float> InitialParameters(const ParameterLayout& layout, uint64_t seed);

// How many float32 values of optimizer state each parameter has (sgd: momentum; adam:
// first and second moments).
int OptimizerStateSlots(OptimizerName name);

// Everything that changes while training: restored from checkpoints and broadcast from
// rank 0 at start. optimizer_state holds OptimizerStateSlots() vectors one after another.
struct TrainingState {
  int64_t step = 0;  // optimizer steps taken
  std::vector<float> parameters;
  std::vector<float> optimizer_state;
};

TrainingState InitialTrainingState(const ParameterLayout& layout, const TrainerConfig& config);

// The learning rate for optimizer step `step` (0-based) of `total_steps`.
double LearningRateAt(const OptimizerConfig& optimizer, const ScheduleConfig& schedule, int64_t step,
                      int64_t total_steps);

}  // namespace mlscale::worker
