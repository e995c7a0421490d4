// The test tooling itself: two clusters run side by side on different ports, and `down`
// leaves no process behind.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"

namespace mlscale::testing {
namespace {

nlohmann::json ReadState(const std::string& dir) {
  std::ifstream in(dir + "/cluster.json");
  return nlohmann::json::parse(in, nullptr, false);
}

bool ProcessAlive(int pid) { return kill(pid, 0) == 0; }

TEST(TestClusterTool, TwoClustersCoexistAndDownLeavesNoProcess) {
  const std::string tool = MLSCALE_TESTCLUSTER_TOOL;
  const std::string base = std::string(MLSCALE_TEST_SCRATCH_DIR) + "/testcluster-tool";
  const std::string first = base + "/a";
  const std::string second = base + "/b";
  CommandResult up_first = RunCommand({"python3", tool, "up", "--dir", first});
  ASSERT_EQ(up_first.exit_code, 0) << up_first.output;
  CommandResult up_second = RunCommand({"python3", tool, "up", "--dir", second});
  EXPECT_EQ(up_second.exit_code, 0) << up_second.output;

  nlohmann::json a = ReadState(first);
  nlohmann::json b = ReadState(second);
  ASSERT_TRUE(a.is_object() && b.is_object());
  EXPECT_NE(a["server"], b["server"]);
  EXPECT_NE(a["ports"]["etcd"], b["ports"]["etcd"]);

  // Both answer, each with its own storage.
  const std::string kubectl = a["binDir"].get<std::string>() + "/kubectl";
  EXPECT_EQ(RunCommand({kubectl, "--kubeconfig", a["adminKubeconfig"], "create", "namespace", "only-in-a"}).exit_code, 0);
  EXPECT_EQ(RunCommand({kubectl, "--kubeconfig", a["adminKubeconfig"], "get", "namespace", "only-in-a"}).exit_code, 0);
  EXPECT_NE(RunCommand({kubectl, "--kubeconfig", b["adminKubeconfig"], "get", "namespace", "only-in-a"}).exit_code, 0);

  int supervisor = std::stoi(RunCommand({"cat", first + "/supervisor.pid"}).output);
  std::string components = RunCommand({"pgrep", "-s", std::to_string(supervisor)}).output;
  EXPECT_GE(std::count(components.begin(), components.end(), '\n'), 5) << components;

  EXPECT_EQ(RunCommand({"python3", tool, "down", "--dir", first}).exit_code, 0);
  EXPECT_EQ(RunCommand({"python3", tool, "down", "--dir", second}).exit_code, 0);
  EXPECT_FALSE(ProcessAlive(supervisor));
  CommandResult left = RunCommand({"pgrep", "-s", std::to_string(supervisor)});
  EXPECT_NE(left.exit_code, 0) << "processes left behind: " << left.output;
}

}  // namespace
}  // namespace mlscale::testing
