#include "mlscale/worker/model.h"

#include <cmath>
#include <numbers>
#include <random>

namespace mlscale::worker {

ModelSpec ModelSpec::FromConfig(const ModelConfig& model, int64_t inputs, int64_t classes) {
  ModelSpec spec;
  spec.inputs = inputs;
  spec.hidden = model.hidden_layers;
  spec.classes = classes;
  spec.activation = model.activation;
  spec.dropout = model.dropout;
  return spec;
}

ParameterLayout ParameterLayout::For(const ModelSpec& spec) {
  ParameterLayout layout;
  int64_t in = spec.inputs;
  int64_t offset = 0;
  for (int l = 0; l < spec.layers(); ++l) {
    int64_t out = l < int(spec.hidden.size()) ? spec.hidden[size_t(l)] : spec.classes;
    LayerLayout layer{in, out, offset, offset + in * out};
    offset = layer.bias_offset + out;
    layout.layers.push_back(layer);
    in = out;
  }
  layout.parameter_count = offset;
  return layout;
}

std::vector<float> InitialParameters(const ParameterLayout& layout, uint64_t seed) {
  std::vector<float> parameters(size_t(layout.parameter_count));
  std::mt19937_64 rng(seed);
  for (const LayerLayout& layer : layout.layers) {
    const float bound = 1.0f / std::sqrt(float(layer.in));
    std::uniform_real_distribution<float> uniform(-bound, bound);
    for (int64_t i = layer.weight_offset; i < layer.bias_offset + layer.out; ++i) {
      parameters[size_t(i)] = uniform(rng);
    }
  }
  return parameters;
}

int OptimizerStateSlots(OptimizerName name) { return name == OptimizerName::kSgd ? 1 : 2; }

TrainingState InitialTrainingState(const ParameterLayout& layout, const TrainerConfig& config) {
  TrainingState state;
  state.parameters = InitialParameters(layout, config.seed);
  state.optimizer_state.assign(
      size_t(layout.parameter_count * OptimizerStateSlots(config.optimizer.name)), 0.0f);
  return state;
}

double LearningRateAt(const OptimizerConfig& optimizer, const ScheduleConfig& schedule, int64_t step,
                      int64_t total_steps) {
  const double base = optimizer.learning_rate;
  if (step < schedule.warmup_steps) return base * double(step + 1) / double(schedule.warmup_steps + 1);
  const int64_t after = step - schedule.warmup_steps;
  switch (schedule.name) {
    case ScheduleName::kConstant:
      return base;
    case ScheduleName::kStep:
      return base * std::pow(schedule.gamma, double(after / schedule.step_size));
    case ScheduleName::kCosine: {
      const int64_t span = std::max<int64_t>(1, total_steps - schedule.warmup_steps);
      const double progress = std::min(1.0, double(after) / double(span));
      return schedule.min_learning_rate +
             0.5 * (base - schedule.min_learning_rate) * (1.0 + std::cos(std::numbers::pi * progress));
    }
  }
  return base;
}

}  // namespace mlscale::worker
