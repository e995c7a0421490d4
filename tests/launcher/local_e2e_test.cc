// `mlscale run -f` end to end with the real trainer (mlscale-train): the README's first
// command, MPI mode, Ctrl-C then resume, and a trainer rank killed mid-run.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "mlscale/launcher/socket.h"
#include "support.h"

namespace mlscale::launcher {
namespace {

namespace fs = std::filesystem;
using namespace testing;
using namespace std::chrono_literals;

class LocalEndToEndTest : public ::testing::Test {
 protected:
  fs::path WriteManifest(const std::string& name, const std::string& spec) {
    fs::path file = scratch_.path() / (name + ".yaml");
    std::ofstream(file) << "apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: " << name
                        << "\nspec:\n  backend: cpu\n" << spec;
    return file;
  }
  // The CLI finds mlscale-train in the build tree by itself (no --trainer).
  Started RunCli(const fs::path& manifest, const std::string& log_name = "cli.log") {
    return StartProgram({kCliProgram, "run", "-f", manifest.string(), "--dir", run_dir_.string()}, {},
                        scratch_.path() / log_name);
  }
  // Waits until rank 0 reports a training step, so that a checkpoint can exist.
  bool WaitForTraining(std::chrono::seconds limit) {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      auto progress = ReadJson(run_dir_ / "progress.json");
      if (progress.is_object() && progress.value("step", 0) > 0) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  ScratchDirectory scratch_;
  fs::path run_dir_ = scratch_.path() / "run";
};

TEST_F(LocalEndToEndTest, TheReadmeExampleTrainsToTheStatedAccuracy) {
  Started cli = StartProgram({kCliProgram, "run", "-f", MLSCALE_DIGITS_EXAMPLE, "--dir", run_dir_.string()}, {},
                             scratch_.path() / "cli.log");
  ASSERT_EQ(WaitFor(cli.process, 240s), 0) << ReadText(cli.output);
  auto result = ReadJson(run_dir_ / "result.json");
  ASSERT_TRUE(result.is_object()) << ReadText(cli.output);
  EXPECT_GE(result["accuracy"].get<double>(), 0.95);
  EXPECT_EQ(result["worldSize"], 4);
  EXPECT_EQ(result["communicator"], "tcp-ring");
  std::string output = ReadText(cli.output);
  EXPECT_NE(output.find("test accuracy"), std::string::npos) << output;
  EXPECT_TRUE(fs::exists(run_dir_ / "model" / "model.json"));
}

TEST_F(LocalEndToEndTest, MpiLauncherRunsTheTrainerUnderMpirun) {
  Started cli = RunCli(WriteManifest("mpi-job", "  replicas: 2\n  launcher: mpi\n  trainer: {epochs: 3}\n"));
  ASSERT_EQ(WaitFor(cli.process, 240s), 0) << ReadText(cli.output) << ReadText(run_dir_ / "logs" / "mpirun.log");
  auto result = ReadJson(run_dir_ / "result.json");
  EXPECT_EQ(result["communicator"], "mpi");
  EXPECT_EQ(result["worldSize"], 2);
}

TEST_F(LocalEndToEndTest, CtrlCCheckpointsAndTheSameCommandResumes) {
  auto manifest = WriteManifest("resume-job", "  replicas: 2\n  trainer: {epochs: 200, checkpoint: {everySteps: 1000000}}\n");
  Started first = RunCli(manifest, "first.log");
  ASSERT_TRUE(WaitForTraining(120s)) << ReadText(first.output);
  first.process.Signal(SIGINT);
  ASSERT_EQ(WaitFor(first.process, 60s), 130) << ReadText(first.output);
  // Checkpoints come only from the SIGTERM the trainers got (everySteps is huge).
  ASSERT_FALSE(fs::is_empty(run_dir_ / "checkpoints"))
      << ReadText(first.output) << "\nrank 0:\n" << ReadText(run_dir_ / "logs" / "rank-0.log") << "\nrank 1:\n"
      << ReadText(run_dir_ / "logs" / "rank-1.log");

  Started second = RunCli(manifest, "second.log");
  ASSERT_EQ(WaitFor(second.process, 240s), 0) << ReadText(second.output);
  std::string output = ReadText(second.output);
  EXPECT_NE(output.find("resuming from the latest checkpoint"), std::string::npos) << output;
  auto result = ReadJson(run_dir_ / "result.json");
  EXPECT_GT(result["resumedFromStep"].get<int>(), 0) << result.dump();
  EXPECT_EQ(result["steps"], result["totalSteps"]);
  EXPECT_GE(result["accuracy"].get<double>(), 0.95);
}

// The pid of the mlscale-train process of `rank` in the run started by `cli`.
pid_t FindTrainer(pid_t cli, const std::string& job, int rank) {
  std::string run_id = "MLSCALE_RUN_ID=" + job + "-" + std::to_string(cli);
  std::string rank_variable = "RANK=" + std::to_string(rank);
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::error_code error;
    auto exe = fs::read_symlink(entry.path() / "exe", error);
    if (error || exe.filename() != "mlscale-train") continue;
    std::string environ = ReadText(entry.path() / "environ");
    bool has_run = false, has_rank = false;
    for (std::size_t start = 0; start < environ.size();) {
      std::size_t end = environ.find('\0', start);
      if (end == std::string::npos) end = environ.size();
      std::string_view variable(environ.data() + start, end - start);
      has_run |= variable == run_id;
      has_rank |= variable == rank_variable;
      start = end + 1;
    }
    if (has_run && has_rank) return static_cast<pid_t>(std::stol(entry.path().filename().string()));
  }
  return -1;
}

TEST_F(LocalEndToEndTest, AKilledTrainerRankIsNamedAndTheRunEnds) {
  Started cli = RunCli(WriteManifest("kill-job", "  replicas: 3\n  trainer: {epochs: 1000}\n"));
  ASSERT_TRUE(WaitForTraining(120s)) << ReadText(cli.output);
  pid_t trainer = FindTrainer(cli.process.pid(), "kill-job", 1);
  ASSERT_GT(trainer, 0);
  ::kill(trainer, SIGKILL);
  auto killed_at = Clock::now();
  ASSERT_EQ(WaitFor(cli.process, 120s), 1) << ReadText(cli.output);
  EXPECT_LT(Clock::now() - killed_at, 60s);
  std::string output = ReadText(cli.output);
  EXPECT_NE(output.find("rank 1 failed (exit code 137 = signal 9 (Killed))"), std::string::npos) << output;
  // The others stopped because of it, and said so.
  auto rank0 = output.find("mlscale: rank 0: exit code 2 (");
  ASSERT_NE(rank0, std::string::npos) << output;
  EXPECT_NE(output.substr(rank0, output.find('\n', rank0) - rank0).find("rank 1"), std::string::npos) << output;
}

}  // namespace
}  // namespace mlscale::launcher
