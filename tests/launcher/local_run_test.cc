// `mlscale run -f` with real processes: the CLI, mlscale-launch per rank and the
// rank_probe test peer in the trainer's place (--trainer), so that failures, Ctrl-C and
// what each rank receives can be produced on demand. The real trainer runs in
// local_e2e_test.cc.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <set>

#include "mlscale/launcher/socket.h"
#include "support.h"

namespace mlscale::launcher {
namespace {

namespace fs = std::filesystem;
using namespace testing;
using namespace std::chrono_literals;

class LocalRunTest : public ::testing::Test {
 protected:
  fs::path WriteManifest(const std::string& spec) {
    fs::path file = scratch_.path() / "job.yaml";
    std::ofstream(file) << "apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: probe-job\n"
                        << "spec:\n" << spec;
    return file;
  }
  Started RunCli(const fs::path& manifest, const std::string& behavior) {
    return StartProgram({kCliProgram, "run", "-f", manifest.string(), "--dir", run_dir_.string(), "--trainer",
                         kProbeProgram, "--timeout", "20"},
                        {{"PROBE_BEHAVIOR", behavior}, {"PROBE_REPORT_DIR", scratch_.path().string()}},
                        scratch_.path() / "cli.log");
  }
  ScratchDirectory scratch_;
  fs::path run_dir_ = scratch_.path() / "run";
};

TEST_F(LocalRunTest, RunsEveryRankThroughTheLauncherAndSummarizes) {
  auto manifest = WriteManifest(
      "  replicas: 3\n  backend: cpu\n  image: example.com/trainer:1\n"
      "  trainer:\n    epochs: 2\n    model: {hiddenLayers: [16]}\n");
  Started cli = RunCli(manifest, "exchange");
  ASSERT_EQ(WaitFor(cli.process, 60s), 0) << ReadText(cli.output);
  std::string output = ReadText(cli.output);
  EXPECT_NE(output.find("note: cluster-only fields, ignored in a local run: spec.image"), std::string::npos) << output;
  EXPECT_NE(output.find("TrainingJob probe-job finished"), std::string::npos) << output;
  EXPECT_NE(output.find("test accuracy  50.00 %"), std::string::npos) << output;
  EXPECT_NE(output.find("model          " + (run_dir_ / "model").string()), std::string::npos) << output;

  EXPECT_EQ(ReadJson(run_dir_ / "trainer.json"), nlohmann::json::parse(R"({"epochs":2,"model":{"hiddenLayers":[16]}})"));
  std::set<std::string> tokens;
  for (int rank = 0; rank < 3; ++rank) {
    auto report = ReadJson(scratch_.path() / ("rank-" + std::to_string(rank) + ".json"));
    ASSERT_TRUE(report.is_object()) << "rank " << rank;
    EXPECT_EQ(report["env"]["WORLD_SIZE"], "3");
    EXPECT_EQ(report["env"]["LOCAL_RANK"], std::to_string(rank)) << "all ranks share this host";
    EXPECT_EQ(report["env"]["MLSCALE_RESULT_FILE"], (run_dir_ / "result.json").string());
    EXPECT_EQ(report["env"]["MLSCALE_PROGRESS_FILE"], (run_dir_ / "progress.json").string());
    EXPECT_EQ(report["receivedFrom"].size(), 2u) << report.dump();
    tokens.insert(report["env"].value("MLSCALE_RUN_TOKEN", ""));
    std::vector<std::string> argv = report["argv"];
    EXPECT_EQ(argv, (std::vector<std::string>{"--config", (run_dir_ / "trainer.json").string(), "--checkpoint-dir",
                                              (run_dir_ / "checkpoints").string(), "--output-dir",
                                              (run_dir_ / "model").string(), "--backend", "cpu"}));
  }
  EXPECT_TRUE(fs::exists(run_dir_ / "logs" / "rank-2.log"));
  // One random token per run, shared by its ranks, in no log.
  ASSERT_EQ(tokens.size(), 1u);
  const std::string token = *tokens.begin();
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos) << token;
  EXPECT_EQ(output.find(token), std::string::npos);
  EXPECT_EQ(ReadText(run_dir_ / "logs" / "rank-0.log").find(token), std::string::npos);
  Started again = RunCli(manifest, "exchange");
  ASSERT_EQ(WaitFor(again.process, 60s), 0) << ReadText(again.output);
  EXPECT_NE(ReadJson(scratch_.path() / "rank-0.json")["env"].value("MLSCALE_RUN_TOKEN", ""), token);
}

TEST_F(LocalRunTest, AKilledRankIsNamedAndTheRunStopsInsteadOfHanging) {
  auto manifest = WriteManifest("  replicas: 3\n");
  auto start = Clock::now();
  Started cli = RunCli(manifest, "die-rank=2");  // the other ranks would wait forever
  ASSERT_EQ(WaitFor(cli.process, 60s), 1) << ReadText(cli.output);
  EXPECT_LT(Clock::now() - start, 40s);
  std::string output = ReadText(cli.output);
  EXPECT_NE(output.find("rank 2 failed (exit code 137 = signal 9 (Killed)"), std::string::npos) << output;
  EXPECT_NE(output.find("mlscale: rank 0: exit code 143"), std::string::npos) << output;
  // The survivors were asked to stop (and would have checkpointed).
  EXPECT_TRUE(fs::exists(scratch_.path() / "terminated-0"));
  EXPECT_TRUE(fs::exists(scratch_.path() / "terminated-1"));
}

TEST_F(LocalRunTest, CtrlCStopsEveryTrainerWithSigterm) {
  auto manifest = WriteManifest("  replicas: 2\n");
  Started cli = RunCli(manifest, "wait-for-term");
  ASSERT_TRUE(WaitForFile(scratch_.path() / "ready-0", 30s)) << ReadText(cli.output);
  ASSERT_TRUE(WaitForFile(scratch_.path() / "ready-1", 30s)) << ReadText(cli.output);
  cli.process.Signal(SIGINT);
  EXPECT_EQ(WaitFor(cli.process, 30s), 130) << ReadText(cli.output);
  EXPECT_TRUE(fs::exists(scratch_.path() / "terminated-0"));
  EXPECT_TRUE(fs::exists(scratch_.path() / "terminated-1"));
  EXPECT_NE(ReadText(cli.output).find("run the same command again to resume"), std::string::npos);
}

TEST_F(LocalRunTest, AnInvalidManifestIsRejectedBeforeAnythingStarts) {
  auto manifest = WriteManifest("  replicas: 0\n");
  Started cli = RunCli(manifest, "exchange");
  EXPECT_EQ(WaitFor(cli.process, 10s), 1);
  EXPECT_NE(ReadText(cli.output).find("spec.replicas: must be between 1 and 4096 (got 0)"), std::string::npos)
      << ReadText(cli.output);
  EXPECT_FALSE(fs::exists(run_dir_));
}

TEST_F(LocalRunTest, AMissingTrainerIsNamedBeforeAnythingStarts) {
  auto manifest = WriteManifest("  replicas: 2\n");
  Started cli = StartProgram({kCliProgram, "run", "-f", manifest.string(), "--dir", run_dir_.string(), "--trainer",
                              (scratch_.path() / "no-trainer").string()},
                             {}, scratch_.path() / "cli.log");
  EXPECT_EQ(WaitFor(cli.process, 10s), 1);
  EXPECT_NE(ReadText(cli.output).find("no-trainer is not an executable program"), std::string::npos)
      << ReadText(cli.output);
}

TEST_F(LocalRunTest, ValidateChecksAManifestWithoutRunningIt) {
  auto manifest = WriteManifest("  replicas: 4\n  launcher: mpi\n");
  Started cli = StartProgram({kCliProgram, "validate", "-f", manifest.string()}, {}, scratch_.path() / "cli.log");
  EXPECT_EQ(WaitFor(cli.process, 10s), 0);
  EXPECT_NE(ReadText(cli.output).find("TrainingJob probe-job is valid: 4 workers, mpi launcher, auto backend"),
            std::string::npos)
      << ReadText(cli.output);
}

TEST_F(LocalRunTest, TheTrainerSectionIsCheckedByTheTrainersParser) {
  auto manifest = WriteManifest("  trainer:\n    optimizer: {name: adam, learningRate: -1}\n");
  Started cli = RunCli(manifest, "exchange");
  EXPECT_EQ(WaitFor(cli.process, 10s), 1);
  EXPECT_NE(ReadText(cli.output).find("spec.trainer.optimizer.learningRate: "), std::string::npos)
      << ReadText(cli.output);
  EXPECT_FALSE(fs::exists(run_dir_));
}

TEST_F(LocalRunTest, FlagsAreCheckedAndHelpIsGenerated) {
  Started help = StartProgram({kCliProgram, "run", "--help"}, {}, scratch_.path() / "help.log");
  EXPECT_EQ(WaitFor(help.process, 10s), 0);
  for (const char* flag : {"--file", "--dir", "--timeout", "--trainer"}) {
    EXPECT_NE(ReadText(help.output).find(flag), std::string::npos) << flag << ReadText(help.output);
  }
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"run", "-f", "x.yaml", "--bogus", "1"}, "unknown option --bogus for run"},
      {{"run", "-f", "x.yaml", "--dirs", "d"}, "unknown option --dirs for run"},
      {{"validate", "-f", "x.yaml", "--dir", "d"}, "unknown option --dir for validate"},
      {{"run", "-f", "x.yaml", "extra"}, "unexpected argument 'extra' for run"},
      {{"run", "-f", "x.yaml", "--timeout", "soon"}, "'--timeout' is invalid"},
      {{"run", "-f", "x.yaml", "--timeout", "0"}, "--timeout needs a positive number of seconds"},
      {{"run"}, "run needs -f FILE"},
      {{"launch"}, "unknown command 'launch'"},
  };
  for (const auto& [arguments, error] : cases) {
    std::vector<std::string> argv{kCliProgram};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    Started cli = StartProgram(argv, {}, scratch_.path() / "cli.log");
    EXPECT_EQ(WaitFor(cli.process, 10s), 1) << error;
    std::string output = ReadText(cli.output);
    EXPECT_NE(output.find(error), std::string::npos) << "expected '" << error << "' in:\n" << output;
    std::filesystem::remove(cli.output);
  }
}

}  // namespace
}  // namespace mlscale::launcher
