#include "mlscale/worker/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>

namespace mlscale::worker {
namespace {

using nlohmann::json;

TEST(ParseTrainerConfig, EmptyObjectGivesDefaults) {
  auto config = ParseTrainerConfig(json::object());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->dataset.source, DatasetConfig::Source::kBundled);
  EXPECT_EQ(config->dataset.name, "digits");
  EXPECT_EQ(config->model.hidden_layers, (std::vector<int>{128, 64}));
  EXPECT_EQ(config->optimizer.name, OptimizerName::kAdam);
  EXPECT_EQ(config->batch_size, 64);
  EXPECT_EQ(config->epochs, 20);
}

TEST(ParseTrainerConfig, ReadsEveryDocumentedField) {
  auto config = ParseTrainerConfig(json::parse(R"({
    "dataset": {"path": "/data/train.csv", "format": "csv", "labelColumn": -1, "testPath": "/data/test.csv"},
    "model": {"hiddenLayers": [256, 32, 16], "activation": "gelu", "dropout": 0.25},
    "optimizer": {"name": "sgd", "learningRate": 0.05, "momentum": 0.8, "weightDecay": 0.001},
    "schedule": {"name": "cosine", "warmupSteps": 10, "minLearningRate": 0.001},
    "batchSize": 128, "epochs": 3, "seed": 7, "checkpoint": {"everySteps": 50}, "testFraction": 0.1})"));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->dataset.source, DatasetConfig::Source::kFiles);
  EXPECT_EQ(config->dataset.path, "/data/train.csv");
  EXPECT_EQ(config->dataset.label_column, -1);
  EXPECT_EQ(config->dataset.test_path, "/data/test.csv");
  EXPECT_EQ(config->model.hidden_layers, (std::vector<int>{256, 32, 16}));
  EXPECT_EQ(config->model.activation, Activation::kGelu);
  EXPECT_DOUBLE_EQ(config->model.dropout, 0.25);
  EXPECT_EQ(config->optimizer.name, OptimizerName::kSgd);
  EXPECT_DOUBLE_EQ(config->optimizer.learning_rate, 0.05);
  EXPECT_DOUBLE_EQ(config->optimizer.momentum, 0.8);
  EXPECT_EQ(config->schedule.name, ScheduleName::kCosine);
  EXPECT_EQ(config->schedule.warmup_steps, 10);
  EXPECT_EQ(config->batch_size, 128);
  EXPECT_EQ(config->seed, 7u);
  EXPECT_EQ(config->checkpoint_every_steps, 50);
  EXPECT_DOUBLE_EQ(config->test_fraction, 0.1);
}

TEST(ParseTrainerConfig, SyntheticAndIdxSources) {
  auto synthetic = ParseTrainerConfig(json::parse(R"({"dataset": {"synthetic": {"samples": 500, "features": 8, "classes": 3}}})"));
  ASSERT_TRUE(synthetic.ok()) << synthetic.status().ToString();
  EXPECT_EQ(synthetic->dataset.source, DatasetConfig::Source::kSynthetic);
  EXPECT_EQ(synthetic->dataset.synthetic_features, 8);
  auto idx = ParseTrainerConfig(json::parse(R"({"dataset": {"path": "i", "labelsPath": "l", "format": "idx"}})"));
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_EQ(idx->dataset.format, DatasetConfig::Format::kIdx);
}

TEST(ParseTrainerConfig, ToJsonParsesBackToTheSameConfig) {
  auto config = ParseTrainerConfig(json::parse(R"({"optimizer": {"name": "adamw", "learningRate": 0.01},
      "schedule": {"name": "step", "stepSize": 5, "gamma": 0.5}, "model": {"activation": "tanh"}})"));
  ASSERT_TRUE(config.ok());
  json once = TrainerConfigToJson(*config);
  auto again = ParseTrainerConfig(once);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(TrainerConfigToJson(*again), once);
}

struct BadCase {
  const char* input;
  const char* error;  // must appear in the message
};

TEST(ParseTrainerConfig, BadValuesNameTheField) {
  const BadCase cases[] = {
      {R"({"optimizer": {"learningRate": 0}})", "trainer.optimizer.learningRate: must be > 0"},
      {R"({"optimizer": {"learningRate": "fast"}})", "trainer.optimizer.learningRate: must be a number"},
      {R"({"optimizer": {"name": "lamb"}})", "trainer.optimizer.name: must be one of sgd, adam, adamw"},
      {R"({"optimizer": {"name": "adam", "momentum": 0.9}})", "trainer.optimizer.momentum: only for sgd"},
      {R"({"optimizer": {"lr": 0.1}})", "trainer.optimizer.lr: unknown field"},
      {R"({"batchSize": 0})", "trainer.batchSize: must be >= 1"},
      {R"({"batchSize": 1.5})", "trainer.batchSize: must be an integer"},
      {R"({"epochs": -3})", "trainer.epochs: must be >= 1"},
      {R"({"seed": "x"})", "trainer.seed: must be an integer"},
      {R"({"testFraction": 1})", "trainer.testFraction: must be in (0, 1)"},
      {R"({"model": {"hiddenLayers": [64, 0]}})", "trainer.model.hiddenLayers[1]: must be an integer"},
      {R"({"model": {"hiddenLayers": 64}})", "trainer.model.hiddenLayers: must be a list"},
      {R"({"model": {"activation": "swish"}})", "trainer.model.activation: must be one of relu, tanh, gelu"},
      {R"({"model": {"dropout": 1.0}})", "trainer.model.dropout: must be in [0, 1)"},
      {R"({"model": []})", "trainer.model: must be an object"},
      {R"({"schedule": {"name": "linear"}})", "trainer.schedule.name: must be one of"},
      {R"({"schedule": {"warmupSteps": -1}})", "trainer.schedule.warmupSteps: must be >= 0"},
      {R"({"checkpoint": {"every": 5}})", "trainer.checkpoint.every: unknown field"},
      {R"({"dataset": {"name": "mnist"}})", "trainer.dataset.name: must be a bundled dataset: digits"},
      {R"({"dataset": {"name": "digits", "path": "x"}})", "trainer.dataset: give only one of"},
      {R"({"dataset": {"labelColumn": 2}})", "trainer.dataset: labelsPath, testPath"},
      {R"({"dataset": {"path": "x", "format": "parquet"}})", "trainer.dataset.format: must be one of csv, idx"},
      {R"({"dataset": {"path": "x", "format": "idx"}})", "trainer.dataset.labelsPath: required for format idx"},
      {R"({"dataset": {"path": "", "format": "csv"}})", "trainer.dataset.path: must be a non-empty string"},
      {R"({"dataset": {"synthetic": {"samples": 1}}})", "trainer.dataset.synthetic.samples: must be >= 2"},
      {R"({"dataset": {"synthetic": {"classes": 10, "rows": 3}}})", "trainer.dataset.synthetic.rows: unknown field"},
      {R"({"precision": "fp8"})", "trainer.precision: must be one of float32, bfloat16"},
      {R"({"learningRate": 0.1})", "trainer.learningRate: unknown field"},
      {R"([1, 2])", "trainer: must be an object"},
  };
  for (const BadCase& c : cases) {
    auto config = ParseTrainerConfig(json::parse(c.input));
    ASSERT_FALSE(config.ok()) << c.input;
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument) << c.input;
    EXPECT_NE(config.status().message().find(c.error), std::string::npos)
        << c.input << " gave: " << config.status().message();
  }
}

// Random edits of a valid config must give a config or a clear InvalidArgument, never a
// crash or another kind of error.
TEST(ParseTrainerConfig, SurvivesRandomlyMangledInput) {
  const json valid = json::parse(R"({"dataset": {"synthetic": {"samples": 100, "features": 4, "classes": 2}},
      "model": {"hiddenLayers": [8, 4], "activation": "relu", "dropout": 0.1},
      "optimizer": {"name": "sgd", "learningRate": 0.1, "momentum": 0.9, "weightDecay": 0.0},
      "schedule": {"name": "step", "warmupSteps": 1, "stepSize": 2, "gamma": 0.5},
      "batchSize": 8, "epochs": 2, "seed": 1, "checkpoint": {"everySteps": 3}, "testFraction": 0.5})");
  const json replacements[] = {nullptr, -1, 0, 0.5, 1e300, "x", "", json::array(), json::object(), true,
                               json::array({1, -2}), 18446744073709551615ULL};
  std::mt19937 rng(1234);
  for (int round = 0; round < 3000; ++round) {
    json config = valid;
    json flat = config.flatten();
    auto it = flat.begin();
    std::advance(it, long(rng() % flat.size()));
    const std::string pointer = it.key();
    config[json::json_pointer(pointer)] = replacements[rng() % std::size(replacements)];
    if (rng() % 4 == 0) config["extra" + std::to_string(rng() % 3)] = 1;
    auto parsed = ParseTrainerConfig(config);
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << config.dump();
      EXPECT_EQ(parsed.status().message().rfind("trainer", 0), 0u) << parsed.status().message();
    }
  }
}

TEST(LoadTrainerConfigFile, ReadsYamlAndJsonAndNamesTheFile) {
  const std::string yaml_path = ::testing::TempDir() + "/trainer.yaml";
  std::ofstream(yaml_path) << "dataset:\n  name: digits\nmodel:\n  hiddenLayers: [32, 16]\n"
                              "optimizer:\n  name: adam\n  learningRate: 0.002\nepochs: 3\n";
  auto yaml = LoadTrainerConfigFile(yaml_path);
  ASSERT_TRUE(yaml.ok()) << yaml.status().ToString();
  EXPECT_EQ(yaml->model.hidden_layers, (std::vector<int>{32, 16}));
  EXPECT_DOUBLE_EQ(yaml->optimizer.learning_rate, 0.002);
  EXPECT_EQ(yaml->epochs, 3);

  const std::string json_path = ::testing::TempDir() + "/trainer.json";
  std::ofstream(json_path) << R"({"epochs": 0})";
  auto bad = LoadTrainerConfigFile(json_path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(json_path), std::string::npos);
  EXPECT_NE(bad.status().message().find("trainer.epochs: must be >= 1"), std::string::npos);

  std::ofstream(json_path) << "epochs: [1, 2\n";
  EXPECT_EQ(LoadTrainerConfigFile(json_path).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadTrainerConfigFile("/nonexistent/trainer.json").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mlscale::worker
