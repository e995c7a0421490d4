#include "mlscale/worker/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "mlscale/worker/model_artifact.h"
#include "ring_fixture.h"

namespace mlscale::worker {
namespace {

namespace fs = std::filesystem;

TrainerConfig Config(const std::string& json_text) {
  auto config = ParseTrainerConfig(nlohmann::json::parse(json_text));
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return *config;
}

TrainOptions Quiet() {
  TrainOptions options;
  options.backend = BackendChoice::kCpu;
  options.log = [](const std::string&) {};
  return options;
}

// Trains on n ranks (threads over loopback sockets); returns rank 0's result.
TrainResult TrainOnRanks(int n, const TrainerConfig& config, const TrainOptions& options) {
  TrainResult rank0;
  std::mutex mutex;
  testing::RunRing(n, [&](int rank, Communicator& comm) {
    auto result = Train(config, comm, options);
    ASSERT_TRUE(result.ok()) << "rank " << rank << ": " << result.status().ToString();
    std::lock_guard lock(mutex);
    if (rank == 0) rank0 = *result;
  });
  return rank0;
}

// The documented claim: with the same seed and global batch, 1 rank and 4 ranks give the
// same loss curve within 1e-3 (absolute, per step; float sums in another order are the
// only difference), dropout included.
TEST(Train, OneAndFourRanksGiveTheSameLossCurve) {
  const TrainerConfig config = Config(R"({"epochs": 3, "batchSize": 64, "model": {"dropout": 0.2},
      "schedule": {"name": "cosine", "warmupSteps": 5}})");
  auto single_comm = CreateSingleProcessCommunicator();
  auto single = Train(config, *single_comm, Quiet());
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  TrainResult four = TrainOnRanks(4, config, Quiet());
  ASSERT_EQ(single->step_losses.size(), 69u);  // 23 steps of 64 per epoch (1438 samples)
  ASSERT_EQ(four.step_losses.size(), single->step_losses.size());
  double worst = 0;
  for (size_t i = 0; i < four.step_losses.size(); ++i) {
    worst = std::max(worst, std::abs(four.step_losses[i] - single->step_losses[i]));
  }
  RecordProperty("largest_loss_difference", std::to_string(worst));
  EXPECT_LT(worst, 1e-3) << "largest per-step difference";
  EXPECT_NEAR(four.accuracy, single->accuracy, 0.01);
  EXPECT_EQ(four.world_size, 4);
  EXPECT_EQ(four.communicator, "tcp-ring");
}

// Threads inside a rank split its batch the same way ranks do: same curve.
TEST(Train, ThreadsGiveTheSameLossCurve) {
  const TrainerConfig config = Config(R"({"epochs": 2, "batchSize": 128, "model": {"dropout": 0.2}})");
  auto comm = CreateSingleProcessCommunicator();
  TrainOptions one = Quiet(), three = Quiet();
  one.threads = 1;
  three.threads = 3;
  auto a = Train(config, *comm, one);
  auto b = Train(config, *comm, three);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->backend, "cpu (onednn, 3 threads)");
  ASSERT_EQ(a->step_losses.size(), b->step_losses.size());
  for (size_t i = 0; i < a->step_losses.size(); ++i) EXPECT_NEAR(a->step_losses[i], b->step_losses[i], 1e-3) << i;
}

// Ranks with several threads each: the AllReduce of a layer starts when the last thread
// has its gradient (summed in thread order), so runs repeat bit for bit and follow the
// curve of one thread per rank; small buckets make many AllReduces overlap backward.
TEST(Train, RanksWithThreadsRepeatBitForBit) {
  const TrainerConfig config =
      Config(R"({"epochs": 1, "batchSize": 128, "bucketBytes": 4096, "model": {"dropout": 0.2}})");
  TrainOptions one = Quiet(), three = Quiet();
  one.threads = 1;
  three.threads = 3;
  TrainResult a = TrainOnRanks(2, config, three), b = TrainOnRanks(2, config, three);
  TrainResult c = TrainOnRanks(2, config, one);
  EXPECT_EQ(a.backend, "cpu (onednn, 3 threads)");
  EXPECT_EQ(a.transport, "shared-memory");
  ASSERT_FALSE(a.step_losses.empty());
  EXPECT_EQ(a.step_losses, b.step_losses);
  EXPECT_EQ(a.accuracy, b.accuracy);
  ASSERT_EQ(a.step_losses.size(), c.step_losses.size());
  for (size_t i = 0; i < a.step_losses.size(); ++i) EXPECT_NEAR(a.step_losses[i], c.step_losses[i], 1e-3) << i;
}

// Two runs with the same seed and thread count give the same bits: every step's loss and
// every final weight. Between the runs the heap is shifted (blocks of odd sizes stay
// allocated), so the second run's buffers sit at other addresses: a sum whose rounding
// depended on alignment, or a read of memory never written, would show here.
TEST(Train, SameSeedAndThreadsRepeatBitForBitInOneProcess) {
  const TrainerConfig config = Config(R"({"epochs": 2, "batchSize": 96, "model": {"dropout": 0.2,
      "hiddenLayers": [48, 24]}, "optimizer": {"name": "adamw", "weightDecay": 0.01}})");
  std::vector<std::vector<char>> shifts;
  for (int threads : {1, 2}) {
    std::vector<TrainResult> results;
    std::vector<std::vector<float>> weights;
    for (int run = 0; run < 2; ++run) {
      const std::string output = ::testing::TempDir() + "/repeat-" + std::to_string(threads) + "-" + std::to_string(run);
      fs::remove_all(output);
      auto comm = CreateSingleProcessCommunicator();
      TrainOptions options = Quiet();
      options.threads = threads;
      options.output_dir = output;
      auto result = Train(config, *comm, options);
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      results.push_back(*result);
      auto model = ReadModelArtifact(output);
      ASSERT_TRUE(model.ok()) << model.status().ToString();
      weights.push_back(model->parameters);
      for (size_t size : {4u, 20u, 52u}) shifts.emplace_back(size + size_t(run), 'x');
    }
    EXPECT_EQ(results[0].step_losses, results[1].step_losses) << threads << " thread(s)";
    EXPECT_EQ(results[0].test_loss, results[1].test_loss);
    ASSERT_EQ(weights[0].size(), weights[1].size());
    EXPECT_EQ(std::memcmp(weights[0].data(), weights[1].data(), weights[0].size() * sizeof(float)), 0)
        << threads << " thread(s): the final weights differ";
  }
}

// With TrainOptions::shard_optimizer and 2 ranks on shared memory the optimizer step is
// sharded (each rank sums and updates its half, then sends it): the same bits as the
// unsharded step, and a checkpoint written from the shards (GatherState) resumes to the
// same final weights as a run that never stopped.
TEST(Train, ShardedOptimizerGivesTheSameBitsAndCheckpointsEveryShard) {
  const TrainerConfig config = Config(R"({"epochs": 2, "batchSize": 96, "model": {"dropout": 0.2},
      "optimizer": {"name": "adamw", "weightDecay": 0.01}, "checkpoint": {"everySteps": 0}})");
  const std::string dir = ::testing::TempDir() + "/sharded";
  fs::remove_all(dir);
  auto train = [&](const std::string& name, bool sharded, int64_t stop_at_step, const std::string& checkpoints) {
    TrainOptions options = Quiet();
    options.shard_optimizer = sharded;
    options.output_dir = dir + "/" + name;
    options.checkpoint_dir = checkpoints;
    options.stop_at_step = stop_at_step;
    TrainResult result = TrainOnRanks(2, config, options);
    EXPECT_EQ(result.transport, "shared-memory");
    return result;
  };
  auto weights = [&](const std::string& name) {
    auto model = ReadModelArtifact(dir + "/" + name);
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    return model.ok() ? model->parameters : std::vector<float>();
  };
  TrainResult sharded = train("sharded", true, -1, ""), plain = train("plain", false, -1, "");
  ASSERT_FALSE(sharded.step_losses.empty());
  EXPECT_EQ(sharded.step_losses, plain.step_losses);
  EXPECT_EQ(sharded.test_loss, plain.test_loss);
  const std::vector<float> a = weights("sharded"), b = weights("plain");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << "sharded and plain weights differ";

  // Stopped sharded, resumed unsharded: the checkpoint must hold every rank's optimizer state.
  EXPECT_TRUE(train("stopped", true, 10, dir + "/checkpoints").stopped);
  TrainResult resumed = train("resumed", false, -1, dir + "/checkpoints");
  EXPECT_EQ(resumed.resumed_from_step, 10);
  const std::vector<float> c = weights("resumed");
  ASSERT_EQ(c.size(), b.size());
  EXPECT_EQ(std::memcmp(c.data(), b.data(), c.size() * sizeof(float)), 0) << "the resumed run's weights differ";
}

// The default config on the bundled digits set reaches >= 95 % test accuracy.
TEST(Train, DefaultConfigReaches95PercentOnDigits) {
  auto comm = CreateSingleProcessCommunicator();
  const std::string output = ::testing::TempDir() + "/digits-model";
  fs::remove_all(output);
  TrainOptions options = Quiet();
  options.output_dir = output;
  auto result = Train(TrainerConfig{}, *comm, options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_GE(result->accuracy, 0.95);
  EXPECT_EQ(result->steps, 460);
  auto model = ReadModelArtifact(output);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->spec.inputs, 64);
  EXPECT_EQ(model->spec.classes, 10);
  EXPECT_EQ(model->metadata["dataset"], "digits");
  EXPECT_EQ(model->metadata["metrics"]["accuracy"], result->accuracy);
  EXPECT_EQ(model->metadata["hyperparameters"]["batchSize"], 64);
  EXPECT_EQ(model->standardization.mean.size(), 64u);
}

// Stopping (as on SIGTERM) writes a checkpoint; the next run resumes it and ends with
// exactly the parameters of an uninterrupted run, on any number of ranks.
TEST(Train, StopAndResumeMatchesAnUninterruptedRun) {
  const TrainerConfig config = Config(R"({"epochs": 2, "optimizer": {"name": "sgd", "learningRate": 0.05},
      "checkpoint": {"everySteps": 0}, "model": {"dropout": 0.1}})");
  const std::string plain = ::testing::TempDir() + "/resume-plain", resumed = ::testing::TempDir() + "/resume-ckpt";
  fs::remove_all(plain);
  fs::remove_all(resumed);
  auto comm = CreateSingleProcessCommunicator();
  TrainOptions straight = Quiet();
  straight.output_dir = plain + "/model";
  ASSERT_TRUE(Train(config, *comm, straight).ok());

  TrainOptions first = Quiet();
  first.checkpoint_dir = resumed + "/checkpoints";
  first.stop_at_step = 17;
  TrainResult stopped = TrainOnRanks(2, config, first);
  EXPECT_TRUE(stopped.stopped);
  EXPECT_EQ(stopped.steps, 17);
  EXPECT_TRUE(fs::exists(resumed + "/checkpoints/checkpoint-000000000017.mlsckpt"));

  TrainOptions second = Quiet();
  second.checkpoint_dir = resumed + "/checkpoints";
  second.output_dir = resumed + "/model";
  TrainResult finished = TrainOnRanks(3, config, second);
  EXPECT_FALSE(finished.stopped);
  EXPECT_EQ(finished.resumed_from_step, 17);
  EXPECT_EQ(finished.steps, 46);
  auto a = ReadModelArtifact(plain + "/model");
  auto b = ReadModelArtifact(resumed + "/model");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->parameters.size(), b->parameters.size());
  for (size_t i = 0; i < a->parameters.size(); ++i) ASSERT_NEAR(a->parameters[i], b->parameters[i], 1e-4) << i;
}

TEST(Train, CheckpointOfAnotherModelIsRefused) {
  const std::string dir = ::testing::TempDir() + "/other-model-ckpt";
  fs::remove_all(dir);
  auto comm = CreateSingleProcessCommunicator();
  TrainOptions options = Quiet();
  options.checkpoint_dir = dir;
  ASSERT_TRUE(Train(Config(R"({"epochs": 1, "model": {"hiddenLayers": [8]}})"), *comm, options).ok());
  auto other = Train(Config(R"({"epochs": 1, "model": {"hiddenLayers": [16]}})"), *comm, options);
  EXPECT_EQ(other.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other.status().message().find("is of another model"), std::string::npos) << other.status().message();
}

TEST(Train, BadDataFailsWithThePath) {
  const std::string path = ::testing::TempDir() + "/broken.csv";
  std::ofstream(path) << "1,2,3\n0,4\n";
  auto comm = CreateSingleProcessCommunicator();
  auto result = Train(Config(R"({"dataset": {"path": ")" + path + R"("}})"), *comm, Quiet());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("trainer.dataset.path: " + path + ":2: has 2 columns"), std::string::npos)
      << result.status().message();
}

TEST(Train, TrainsFromIdxFilesAndEverySchedule) {
  // A tiny two-class IDX set: bright images are class 1.
  std::string images = {0, 0, 8, 3, 0, 0, 0, 40, 0, 0, 0, 2, 0, 0, 0, 2};
  std::string labels = {0, 0, 8, 1, 0, 0, 0, 40};
  for (int i = 0; i < 40; ++i) {
    const char pixel = char(i % 2 ? 200 + i : 10 + i);
    images += std::string(4, pixel);
    labels += char(i % 2);
  }
  const std::string dir = ::testing::TempDir();
  std::ofstream(dir + "/i.idx", std::ios::binary) << images;
  std::ofstream(dir + "/l.idx", std::ios::binary) << labels;
  for (const char* schedule : {"constant", "step", "cosine"}) {
    for (const char* optimizer : {"sgd", "adam", "adamw"}) {
      auto comm = CreateSingleProcessCommunicator();
      auto result = Train(Config(std::string(R"({"dataset": {"path": ")") + dir + R"(/i.idx", "labelsPath": ")" + dir +
                                 R"(/l.idx", "format": "idx"}, "epochs": 30, "batchSize": 8, "model": {"hiddenLayers": [4],
                                 "activation": "gelu"}, "optimizer": {"name": ")" + optimizer + R"(", "learningRate": 0.05},
                                 "schedule": {"name": ")" + schedule + R"(", "stepSize": 20, "warmupSteps": 3}})"),
                          *comm, Quiet());
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      EXPECT_EQ(result->accuracy, 1.0) << schedule << " " << optimizer;
    }
  }
}

}  // namespace
}  // namespace mlscale::worker
