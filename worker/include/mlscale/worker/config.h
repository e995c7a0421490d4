// The trainer's configuration: the `spec.trainer` object of a TrainingJob manifest.
//
// Contract with the launcher and the `mlscale` CLI (fixed; see worker/README.md):
//   mlscale-train --config FILE [--checkpoint-dir DIR] [--output-dir DIR] [--backend auto|cpu|gpu]
// FILE is JSON or YAML holding exactly `spec.trainer` with camelCase keys, e.g.
//   {"dataset": {"name": "digits"}, "model": {"hiddenLayers": [128, 64], "activation": "relu",
//    "dropout": 0.1}, "optimizer": {"name": "adam", "learningRate": 0.001, "weightDecay": 0.0001},
//    "schedule": {"name": "cosine", "warmupSteps": 50}, "batchSize": 64, "epochs": 20, "seed": 42,
//    "checkpoint": {"everySteps": 100}, "testFraction": 0.2}
// Every field is optional; the defaults train the bundled digits set to >= 95 % test accuracy.
// Unknown keys and bad values are errors naming the field path, e.g.
//   "trainer.optimizer.learningRate: must be > 0".
// This header has no MPI or CUDA in it: the launcher links mlscale::worker (or just
// mlscale::worker_config, this parser alone) to validate manifests with
// ParseTrainerConfig before it starts any process.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"

namespace mlscale::worker {

// Where the samples come from: exactly one of a bundled set, files, or a generator.
struct DatasetConfig {
  enum class Source { kBundled, kFiles, kSynthetic };
  enum class Format { kCsv, kIdx };
  Source source = Source::kBundled;
  std::string name = "digits";  // kBundled: a set under MLSCALE_DATA_DIR (only "digits")
  // kFiles. CSV: one sample per line, numbers only, an optional header line; `labelColumn`
  // is the 0-based column of the integer class label (negative counts from the end).
  // IDX (MNIST): `path` holds the images, `labelsPath` the labels.
  std::string path;
  std::string labels_path;
  std::string test_path;         // optional held-out set; else testFraction of `path`
  std::string test_labels_path;  // IDX only, with test_path
  Format format = Format::kCsv;
  int label_column = 0;
  // kSynthetic: a seeded mixture of Gaussian classes, any size (for benchmarks).
  int64_t synthetic_samples = 10000;
  int64_t synthetic_features = 64;
  int64_t synthetic_classes = 10;
};

enum class Activation { kRelu, kTanh, kGelu };
enum class OptimizerName { kSgd, kAdam, kAdamW };
enum class ScheduleName { kConstant, kStep, kCosine };
enum class Precision { kFloat32, kBFloat16 };

struct ModelConfig {
  std::vector<int> hidden_layers = {128, 64};
  Activation activation = Activation::kRelu;
  double dropout = 0.1;  // probability of zeroing a hidden unit while training
};

// sgd: momentum SGD with L2 weight decay added to the gradient (torch.optim.SGD).
// adam: Adam with L2 weight decay added to the gradient (torch.optim.Adam).
// adamw: Adam with decoupled weight decay (torch.optim.AdamW).
struct OptimizerConfig {
  OptimizerName name = OptimizerName::kAdam;
  double learning_rate = 0.001;
  double momentum = 0.9;  // sgd
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;  // adam, adamw
  double weight_decay = 0.0001;
};

// The learning rate at step s: linear warmup from 0 over warmupSteps, then
//   constant: the base rate;  step: times gamma every stepSize steps;
//   cosine: from the base rate down to minLearningRate at the last step.
struct ScheduleConfig {
  ScheduleName name = ScheduleName::kConstant;
  int64_t warmup_steps = 0;
  int64_t step_size = 1000;  // step
  double gamma = 0.1;        // step
  double min_learning_rate = 0.0;  // cosine
};

struct TrainerConfig {
  DatasetConfig dataset;
  ModelConfig model;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  int64_t batch_size = 64;  // global: split across ranks, so results do not depend on them
  int64_t epochs = 20;
  uint64_t seed = 42;
  int64_t checkpoint_every_steps = 100;  // 0: only on SIGTERM and at the end
  double test_fraction = 0.2;            // held out of `path` when there is no testPath
  Precision precision = Precision::kFloat32;  // bfloat16: GPU mixed precision
  // Gradients are averaged in buckets of this many bytes, each sent while the backward
  // pass computes the layers before it.
  int64_t bucket_bytes = 1 << 20;
  double log_every_seconds = 5.0;  // step log lines on stderr (rank 0)
};

// Parses and validates `spec.trainer`. Errors name the field path ("trainer.epochs: ...").
StatusOr<TrainerConfig> ParseTrainerConfig(const nlohmann::json& trainer);

// Reads a JSON or YAML file holding `spec.trainer` and parses it.
StatusOr<TrainerConfig> LoadTrainerConfigFile(const std::string& path);

// The configuration in the same camelCase JSON form ParseTrainerConfig accepts (stored
// with checkpoints and models as the hyperparameters).
nlohmann::json TrainerConfigToJson(const TrainerConfig& config);

}  // namespace mlscale::worker
