// The forward pass of mlscale-serve against the trainer's own code path: a model trained by
// worker::Train predicts the raw test set with the trainer's accuracy, and every class
// probability equals what the trainer's CPU backend (Evaluate) computes, to 1e-6. And every
// kind of broken artifact is refused with its reason.
#include "mlscale/serve/inference_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "artifacts.h"
#include "compute_backend.h"
#include "mlscale/worker/communicator.h"
#include "mlscale/worker/dataset.h"
#include "mlscale/worker/trainer.h"

namespace mlscale::serve {
namespace {

namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("mlscale-serve-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

TEST(InferenceModelTest, PredictionsEqualTheTrainersEvaluation) {
  const std::string dir = TempDir("trained");
  auto config = worker::ParseTrainerConfig(nlohmann::json::parse(R"({"epochs": 4, "model": {"activation": "gelu"}})"));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto communicator = worker::CreateSingleProcessCommunicator();
  worker::TrainOptions options;
  options.backend = worker::BackendChoice::kCpu;
  options.output_dir = dir;
  options.log = [](const std::string&) {};
  auto trained = worker::Train(*config, *communicator, options);
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();

  auto model = InferenceModel::Load(dir);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const auto& artifact = (*model)->artifact();

  // The raw (not standardized) test split, as a client would send it.
  auto data = worker::LoadTrainTestData(config->dataset, config->test_fraction, config->seed, worker::BundledDataDir());
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  const worker::Dataset& test = data->test;
  std::vector<float> probabilities;
  std::vector<int64_t> predicted;
  (*model)->Predict(test.x.data(), test.samples, probabilities, predicted);
  int64_t correct = 0;
  for (int64_t j = 0; j < test.samples; ++j) correct += predicted[size_t(j)] == test.y[size_t(j)] ? 1 : 0;
  EXPECT_DOUBLE_EQ(double(correct) / double(test.samples), trained->accuracy);

  // The trainer's backend on the standardized samples: Evaluate(x, label c) is -log p_c.
  worker::BackendOptions backend_options;
  backend_options.spec = artifact.spec;
  backend_options.layout = worker::ParameterLayout::For(artifact.spec);
  backend_options.config = *config;
  backend_options.communicator = communicator.get();
  auto backend = worker::CreateCpuBackend(backend_options);
  worker::TrainingState state = worker::InitialTrainingState(backend_options.layout, *config);
  state.parameters = artifact.parameters;
  ASSERT_TRUE(backend->LoadState(state).ok());
  worker::Dataset standardized = test;
  worker::Standardize(artifact.standardization, standardized);
  double worst = 0;
  for (int64_t j = 0; j < test.samples; ++j) {
    for (int32_t c = 0; c < int32_t(test.classes); ++c) {
      auto totals = backend->Evaluate(standardized.x.data() + j * test.features, &c, 1);
      ASSERT_TRUE(totals.ok());
      worst = std::max(worst, std::abs(std::exp(-totals->loss_sum) - double(probabilities[size_t(j * test.classes + c)])));
    }
  }
  char worst_text[32];
  std::snprintf(worst_text, sizeof worst_text, "%.3g", worst);
  RecordProperty("largest_probability_difference", worst_text);
  EXPECT_LE(worst, 1e-6);
  // Batch size does not change a row's answer beyond float rounding.
  std::vector<float> one;
  std::vector<int64_t> one_class;
  (*model)->Predict(test.x.data() + 5 * test.features, 1, one, one_class);
  for (int64_t c = 0; c < test.classes; ++c) EXPECT_NEAR(one[size_t(c)], probabilities[size_t(5 * test.classes + c)], 1e-6);
  EXPECT_EQ(one_class[0], predicted[5]);
  fs::remove_all(dir);
}

// Each way an artifact can be broken, and a part of the message that says so.
struct Breakage {
  const char* name;
  std::function<void(const std::string& dir)> apply;
  StatusCode code;
  const char* message;
};

void EditJson(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json model;
  std::ifstream(dir + "/model.json") >> model;
  edit(model);
  std::ofstream(dir + "/model.json") << model.dump();
}

TEST(InferenceModelTest, BrokenArtifactsAreRefusedWithTheirReason) {
  const std::vector<Breakage> cases = {
      {"no model.json", [](const std::string& d) { fs::remove(d + "/model.json"); }, StatusCode::kNotFound, "model.json"},
      {"model.json not JSON", [](const std::string& d) { std::ofstream(d + "/model.json") << "{\"format\": "; },
       StatusCode::kDataLoss, "not JSON"},
      {"truncated weights", [](const std::string& d) { fs::resize_file(d + "/weights.bin", 100); }, StatusCode::kDataLoss,
       "SHA-256"},
      {"no weights", [](const std::string& d) { fs::remove(d + "/weights.bin"); }, StatusCode::kNotFound, "weights.bin"},
      {"flipped byte", [](const std::string& d) {
         std::fstream f(d + "/weights.bin", std::ios::in | std::ios::out | std::ios::binary);
         f.seekp(40);
         f.put('\x7f');
       }, StatusCode::kDataLoss, "SHA-256"},
      {"other format", [](const std::string& d) { EditJson(d, [](auto& m) { m["format"] = "onnx"; }); },
       StatusCode::kDataLoss, "not an mlscale-mlp model"},
      {"newer format version", [](const std::string& d) { EditJson(d, [](auto& m) { m["formatVersion"] = 2; }); },
       StatusCode::kDataLoss, "format version 1"},
      {"unknown activation", [](const std::string& d) { EditJson(d, [](auto& m) { m["architecture"]["activation"] = "swish"; }); },
       StatusCode::kDataLoss, "'swish'"},
      {"architecture mismatching weights",
       [](const std::string& d) { EditJson(d, [](auto& m) { m["architecture"]["hiddenLayers"] = {16}; }); },
       StatusCode::kDataLoss, "wrong size"},
      {"normalization of the wrong length",
       [](const std::string& d) { EditJson(d, [](auto& m) { m["normalization"]["mean"].erase(0); }); },
       StatusCode::kDataLoss, "normalization.mean"},
      {"zero stddev", [](const std::string& d) { EditJson(d, [](auto& m) { m["normalization"]["stddev"][3] = 0; }); },
       StatusCode::kDataLoss, "stddev"},
      {"tensor table mismatch",
       [](const std::string& d) { EditJson(d, [](auto& m) { m["weights"]["tensors"][1]["offset"] = 4; }); },
       StatusCode::kDataLoss, "weights.tensors[1]"},
      {"weights outside the folder",
       [](const std::string& d) { EditJson(d, [](auto& m) { m["weights"]["file"] = "../../etc/passwd"; }); },
       StatusCode::kDataLoss, "weights.file"},
      {"missing key", [](const std::string& d) { EditJson(d, [](auto& m) { m["architecture"].erase("classes"); }); },
       StatusCode::kDataLoss, "classes"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string dir = TempDir("broken");
    testing::WriteArtifact(dir, testing::MakeArtifact(8, {12}, 3, 7));
    ASSERT_TRUE(InferenceModel::Load(dir).ok());
    c.apply(dir);
    auto loaded = InferenceModel::Load(dir);
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.status().code(), c.code) << loaded.status().ToString();
    EXPECT_NE(loaded.status().message().find(c.message), std::string::npos) << loaded.status().message();
    fs::remove_all(dir);
  }
}

}  // namespace
}  // namespace mlscale::serve
