#include "mlscale/worker/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "mlscale/worker/model_artifact.h"

namespace mlscale::worker {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  return dir;
}

TrainingState State(int64_t step) {
  TrainingState state;
  state.step = step;
  for (int i = 0; i < 1000; ++i) state.parameters.push_back(float(i) * 0.5f + float(step));
  for (int i = 0; i < 2000; ++i) state.optimizer_state.push_back(-float(i));
  return state;
}

void Corrupt(const std::string& path, long offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(offset);
  char c;
  file.get(c);
  file.seekp(offset);
  file.put(char(c ^ 0x40));
}

TEST(Checkpoint, RoundTrip) {
  const std::string dir = FreshDir("ckpt-roundtrip");
  auto path = WriteCheckpoint(dir, State(7), {{"model", {{"inputs", 3}}}});
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(fs::path(*path).filename(), "checkpoint-000000000007.mlsckpt");
  auto read = ReadCheckpoint(*path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->state.step, 7);
  EXPECT_EQ(read->state.parameters, State(7).parameters);
  EXPECT_EQ(read->state.optimizer_state, State(7).optimizer_state);
  EXPECT_EQ(read->metadata["model"]["inputs"], 3);
  // No temporary file is left behind.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) files += entry.path().filename().string()[0] == '.' ? 100 : 1;
  EXPECT_EQ(files, 1);
}

TEST(Checkpoint, DetectsEveryKindOfDamage) {
  const std::string dir = FreshDir("ckpt-damage");
  const std::string path = *WriteCheckpoint(dir, State(1), {});
  const auto size = long(fs::file_size(path));
  for (long offset : {0L, 9L, 20L, size / 2, size - 1}) {
    ASSERT_TRUE(fs::copy_file(path, path + ".bad", fs::copy_options::overwrite_existing));
    Corrupt(path + ".bad", offset);
    auto read = ReadCheckpoint(path + ".bad");
    EXPECT_EQ(read.status().code(), StatusCode::kDataLoss) << "byte " << offset;
  }
  fs::resize_file(path, fs::file_size(path) - 10);
  EXPECT_EQ(ReadCheckpoint(path).status().code(), StatusCode::kDataLoss);
  std::ofstream(path, std::ios::trunc) << "";
  EXPECT_EQ(ReadCheckpoint(path).status().code(), StatusCode::kDataLoss);
}

TEST(Checkpoint, LatestValidIsResumedAndCorruptOnesAreSkipped) {
  const std::string dir = FreshDir("ckpt-latest");
  std::vector<std::string> warnings;
  auto warn = [&](const std::string& w) { warnings.push_back(w); };
  EXPECT_EQ(LoadLatestCheckpoint(dir, warn).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(WriteCheckpoint(dir, State(10), {}, 3).ok());
  ASSERT_TRUE(WriteCheckpoint(dir, State(20), {}, 3).ok());
  const std::string newest = *WriteCheckpoint(dir, State(30), {}, 3);
  auto latest = LoadLatestCheckpoint(dir, warn);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->state.step, 30);
  EXPECT_TRUE(warnings.empty());

  Corrupt(newest, 100);
  latest = LoadLatestCheckpoint(dir, warn);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->state.step, 20);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("checkpoint-000000000030.mlsckpt' is corrupt: checksum mismatch"), std::string::npos)
      << warnings[0];
}

// fsync failing must fail the write and leave the old file in place. The fault: the
// temporary file (".<name>.tmp", an implementation detail) is made a link to /dev/null,
// on which fsync fails with EINVAL; a disk that fails to flush cannot be had otherwise.
TEST(Checkpoint, AFailedFlushFailsTheWriteAndKeepsTheOldFile) {
  const std::string dir = FreshDir("flush");
  fs::create_directories(dir);
  const std::string path = dir + "/state.json";
  ASSERT_TRUE(WriteFileAtomically(path, "good").ok());
  fs::create_symlink("/dev/null", dir + "/.state.json.tmp");
  Status written = WriteFileAtomically(path, "new");
  ASSERT_FALSE(written.ok()) << "an unflushed write was reported as done";
  EXPECT_NE(written.message().find("flush"), std::string::npos) << written.ToString();
  std::ifstream in(path);
  std::string contents;
  std::getline(in, contents);
  EXPECT_EQ(contents, "good");
  EXPECT_FALSE(fs::is_symlink(path));
}

TEST(Checkpoint, KeepsOnlyTheNewest) {
  const std::string dir = FreshDir("ckpt-keep");
  for (int step = 1; step <= 5; ++step) ASSERT_TRUE(WriteCheckpoint(dir, State(step), {}, 2).ok());
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"checkpoint-000000000004.mlsckpt", "checkpoint-000000000005.mlsckpt"}));
}

TEST(ModelArtifact, RoundTripAndTamperDetection) {
  const std::string dir = FreshDir("model");
  ModelArtifact artifact;
  artifact.spec.inputs = 3;
  artifact.spec.hidden = {4};
  artifact.spec.classes = 2;
  artifact.spec.activation = Activation::kTanh;
  artifact.standardization = {{1, 2, 3}, {0.5f, 1, 2}};
  const ParameterLayout layout = ParameterLayout::For(artifact.spec);
  ASSERT_EQ(layout.parameter_count, 3 * 4 + 4 + 4 * 2 + 2);
  for (int64_t i = 0; i < layout.parameter_count; ++i) artifact.parameters.push_back(float(i));
  artifact.metadata = {{"dataset", "digits"}, {"metrics", {{"accuracy", 0.97}}}};
  ASSERT_TRUE(WriteModelArtifact(dir, artifact).ok());

  // weights.bin is row-major [out, in]: element (o=1, i=0) of layer 0 comes second.
  std::ifstream weights(dir + "/weights.bin", std::ios::binary);
  float first_two[2];
  weights.read(reinterpret_cast<char*>(first_two), sizeof(first_two));
  EXPECT_EQ(first_two[0], artifact.parameters[0]);            // (0, 0)
  EXPECT_EQ(first_two[1], artifact.parameters[size_t(4)]);    // (0, 1): column-major offset 1 * out

  auto read = ReadModelArtifact(dir);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->parameters, artifact.parameters);
  EXPECT_EQ(read->spec.hidden, artifact.spec.hidden);
  EXPECT_EQ(read->spec.activation, Activation::kTanh);
  EXPECT_EQ(read->standardization.stddev, artifact.standardization.stddev);
  EXPECT_EQ(read->metadata["metrics"]["accuracy"], 0.97);

  Corrupt(dir + "/weights.bin", 8);
  EXPECT_EQ(ReadModelArtifact(dir).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace mlscale::worker
