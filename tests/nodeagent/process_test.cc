// Real processes in real sandboxes (mount + UTS namespaces need root).
#include "process.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace mlscale::nodeagent {
namespace {

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "sandboxes need root";
    dir_ = std::filesystem::temp_directory_path() / ("nodeagent-process-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  ExitStatus Wait(Process& process) {
    for (int i = 0; i < 1000; ++i) {
      if (auto exit = process.Poll()) return *exit;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "process did not exit";
    return {};
  }
  std::string Read(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  std::filesystem::path dir_;
};

TEST_F(ProcessTest, RunsInItsOwnSandbox) {
  std::ofstream(dir_ / "hosts") << "127.64.9.9 w-0.job.ml.svc.cluster.local w-0.job\n";
  std::ofstream(dir_ / "term");
  std::ofstream(dir_ / "target");  // stands in for /dev/termination-log
  LaunchSpec spec;
  spec.argv = {"sh", "-c",
               "getent hosts w-0.job; hostname; echo \"$GREETING\"; pwd; echo done > " +
                   (dir_ / "target").string()};
  spec.env = {"PATH=/usr/bin:/bin", "GREETING=hello"};
  spec.working_dir = dir_;
  spec.log_file = dir_ / "out.log";
  spec.sandbox.hosts_file = dir_ / "hosts";
  spec.sandbox.hostname = "w-0";
  spec.sandbox.binds = {{dir_ / "term", dir_ / "target"}};
  StatusOr<std::unique_ptr<Process>> process = Process::Spawn(spec);
  ASSERT_TRUE(process.ok()) << process.status().ToString();
  EXPECT_EQ(Wait(**process).exit_code, 0);
  std::string output = Read(dir_ / "out.log");
  EXPECT_NE(output.find("127.64.9.9"), std::string::npos) << output;
  EXPECT_NE(output.find("w-0\nhello\n" + dir_.string()), std::string::npos) << output;
  EXPECT_EQ(Read(dir_ / "term"), "done\n");  // written through the bind mount
  EXPECT_EQ(Read(dir_ / "target"), "");      // the host's file is untouched
  // Outside the sandbox, the host is unchanged.
  char host[256] = {};
  gethostname(host, sizeof host);
  EXPECT_NE(std::string(host), "w-0");
}

TEST_F(ProcessTest, ReportsExitCodesAndSignals) {
  LaunchSpec spec;
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.argv = {"sh", "-c", "exit 7"};
  EXPECT_EQ(Wait(**Process::Spawn(spec)).exit_code, 7);
  spec.argv = {"sleep", "30"};
  std::unique_ptr<Process> sleeper = Process::Spawn(spec).value();
  sleeper->Signal(SIGTERM);
  ExitStatus status = Wait(*sleeper);
  EXPECT_EQ(status.signal, SIGTERM);
  EXPECT_EQ(status.exit_code, 143);
}

TEST_F(ProcessTest, SignalsReachTheWholeGroupAndDestructionKillsIt) {
  LaunchSpec spec;
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.argv = {"sh", "-c", "sleep 60 & echo $! > " + (dir_ / "child").string() + "; wait"};
  pid_t grandchild = 0;
  {
    std::unique_ptr<Process> process = Process::Spawn(spec).value();
    for (int i = 0; i < 200 && Read(dir_ / "child").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    grandchild = std::stoi(Read(dir_ / "child"));
    EXPECT_EQ(kill(grandchild, 0), 0);
  }
  for (int i = 0; i < 200 && kill(grandchild, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(kill(grandchild, 0), 0) << "the container's child outlived it";
}

TEST_F(ProcessTest, StartFailuresSayWhy) {
  LaunchSpec spec;
  spec.env = {"PATH=/nonexistent"};
  spec.argv = {"no-such-program"};
  StatusOr<std::unique_ptr<Process>> missing = Process::Spawn(spec);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("not found in $PATH"), std::string::npos);
  spec.argv = {"/bin/true"};
  spec.working_dir = dir_ / "no-such-dir";
  StatusOr<std::unique_ptr<Process>> bad_dir = Process::Spawn(spec);
  ASSERT_FALSE(bad_dir.ok());
  EXPECT_NE(bad_dir.status().message().find("chdir"), std::string::npos) << bad_dir.status().message();
  spec.working_dir = "";
  spec.sandbox.hosts_file = dir_ / "no-such-hosts";
  StatusOr<std::unique_ptr<Process>> bad_hosts = Process::Spawn(spec);
  ASSERT_FALSE(bad_hosts.ok());
  EXPECT_NE(bad_hosts.status().message().find("/etc/hosts"), std::string::npos);
}

}  // namespace
}  // namespace mlscale::nodeagent
