// mlscale-launch runs its command as a child: signals reach the command and the
// command's exit code (or the signal that killed it) comes back as the launcher's.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "support.h"

namespace mlscale::launcher {
namespace {

using namespace testing;
using namespace std::chrono_literals;

class SignalTest : public ::testing::TestWithParam<std::string> {
 protected:
  // The launcher for a one-rank job in the mode under test, running the probe.
  Started StartLauncher(const std::string& behavior) {
    return StartProgram({kLaunchProgram, "--mode", GetParam(), "--bind-address", "127.0.0.1", "--", kProbeProgram},
                        {{"WORLD_SIZE", "1"}, {"RANK", "0"}, {"PROBE_BEHAVIOR", behavior},
                         {"PROBE_REPORT_DIR", scratch_.path().string()}},
                        scratch_.path() / "launcher.log");
  }
  pid_t ProbePid() {
    EXPECT_TRUE(WaitForFile(scratch_.path() / "ready-0", 10s));
    return static_cast<pid_t>(std::stol(ReadText(scratch_.path() / "ready-0")));
  }
  ScratchDirectory scratch_;
};

TEST_P(SignalTest, SigtermReachesTheCommandAndItsExitCodeComesBack) {
  Started launcher = StartLauncher("wait-for-term");
  pid_t probe = ProbePid();
  EXPECT_NE(probe, launcher.process.pid()) << "the command runs as the launcher's child";
  launcher.process.Signal(SIGTERM);
  EXPECT_EQ(WaitFor(launcher.process, 10s), 143) << ReadText(launcher.output);
  EXPECT_TRUE(std::filesystem::exists(scratch_.path() / "terminated-0")) << "the probe's SIGTERM handler ran";
}

TEST_P(SignalTest, OtherSignalsAreForwardedToo) {
  Started launcher = StartLauncher("wait-for-term");
  ProbePid();
  launcher.process.Signal(SIGINT);  // the probe does not handle SIGINT: it dies of it
  EXPECT_EQ(WaitFor(launcher.process, 10s), 128 + SIGINT) << ReadText(launcher.output);
}

TEST_P(SignalTest, TheCommandsExitCodeIsTheLaunchers) {
  Started launcher = StartLauncher("exit=3");
  EXPECT_EQ(WaitFor(launcher.process, 10s), 3) << ReadText(launcher.output);
}

TEST_P(SignalTest, ACommandKilledBySignalIsReported) {
  Started launcher = StartLauncher("wait-for-term");
  ::kill(ProbePid(), SIGKILL);
  EXPECT_EQ(WaitFor(launcher.process, 10s), 128 + SIGKILL);
}

INSTANTIATE_TEST_SUITE_P(Modes, SignalTest, ::testing::Values("rendezvous", "env"));

TEST(Launcher, AMissingCommandIsAClearError) {
  ScratchDirectory scratch;
  Started launcher = StartProgram({kLaunchProgram, "--mode", "env", "--", "/nonexistent/mlscale-train"},
                                  {{"WORLD_SIZE", "1"}, {"RANK", "0"}}, scratch.path() / "launcher.log");
  EXPECT_EQ(WaitFor(launcher.process, 10s), 127);
  EXPECT_NE(ReadText(launcher.output).find("cannot run '/nonexistent/mlscale-train': No such file or directory"),
            std::string::npos)
      << ReadText(launcher.output);
}

TEST(Launcher, EnvModeGivesTheTorchrunVariables) {
  ScratchDirectory scratch;
  Started launcher = StartProgram({kLaunchProgram, "--mode", "env", "--", kProbeProgram},
                                  {{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                                   {"MASTER_ADDR", "job-0.job"}, {"MASTER_PORT", "1234"},
                                   {"PROBE_REPORT_DIR", scratch.path().string()}},
                                  scratch.path() / "launcher.log");
  ASSERT_EQ(WaitFor(launcher.process, 10s), 0) << ReadText(launcher.output);
  auto env = ReadJson(scratch.path() / "rank-3.json")["env"];
  EXPECT_EQ(env["WORLD_SIZE"], "4");
  EXPECT_EQ(env["LOCAL_RANK"], "1");
  EXPECT_EQ(env["LOCAL_WORLD_SIZE"], "2");
  EXPECT_EQ(env["GROUP_RANK"], "1");
  EXPECT_EQ(env["MASTER_ADDR"], "job-0.job");
  EXPECT_EQ(env["MASTER_PORT"], "1234");
  EXPECT_FALSE(env.contains("MLSCALE_PEERS")) << "no rendezvous in env mode";
}

}  // namespace
}  // namespace mlscale::launcher
