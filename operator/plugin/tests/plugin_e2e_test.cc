// kubectl-mlscale through real kubectl against the real control plane: kubectl finds the
// plugin on PATH (`kubectl mlscale ...`), which reads the objects with the user's
// kubeconfig. No operator runs: the test writes the statuses a controller would write
// (through the status subresource), so what is printed is known.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cluster_environment.h"
#include "namespaced_test.h"
#include "node_agent_process.h"

namespace mlscale::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

class PluginE2E : public NamespacedTest {
 protected:
  PluginE2E() : NamespacedTest("plugin") {}
  static void SetUpTestSuite() {
    StatusOr<TestCluster> cluster = CurrentCluster();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    // As a user has it: the plugin on PATH, the kubeconfig in $KUBECONFIG.
    std::string path = std::filesystem::path(KUBECTL_MLSCALE).parent_path().string() + ":" + getenv("PATH");
    setenv("PATH", path.c_str(), 1);
    setenv("KUBECONFIG", cluster->admin_kubeconfig.c_str(), 1);
    for (const char* crd : {"trainingjobs.mlscale.io", "hyperparametersweeps.mlscale.io"}) {
      CommandResult applied = Kubectl(cluster->admin_kubeconfig, {"apply", "--server-side", "--force-conflicts", "-f",
                                                                  std::string(MLSCALE_CRD_DIR) + "/" + crd + ".yaml"});
      ASSERT_EQ(applied.exit_code, 0) << applied.output;
      CommandResult established = Kubectl(cluster->admin_kubeconfig, {"wait", "--for=condition=Established",
                                                                      "--timeout=60s", std::string("crd/") + crd});
      ASSERT_EQ(established.exit_code, 0) << established.output;
    }
  }
  // `kubectl mlscale <args>`: kubectl itself resolves the plugin.
  CommandResult Plugin(std::vector<std::string> args) {
    args.insert(args.begin(), {CurrentCluster()->bin_dir + "/kubectl", "mlscale"});
    return RunCommand(args);
  }
  void PatchStatus(const std::string& resource, const std::string& name, const json& status) {
    CommandResult result = Run({"-n", namespace_, "patch", resource, name, "--subresource=status", "--type=merge",
                                "-p", json{{"status", status}}.dump()});
    ASSERT_EQ(result.exit_code, 0) << result.output;
  }
  json Job(const std::string& name, json labels = json::object(), json annotations = json::object()) {
    return {{"apiVersion", "mlscale.io/v1alpha1"}, {"kind", "TrainingJob"},
            {"metadata", {{"name", name}, {"labels", labels}, {"annotations", annotations}}},
            {"spec", {{"replicas", 1}, {"backend", "cpu"}, {"trainer", {{"dataset", {{"name", "digits"}}}}}}}};
  }
};

TEST_F(PluginE2E, StatusShowsProgressAndConditions) {
  Apply(Job("digits"));
  PatchStatus("trainingjobs", "digits",
              {{"state", "Running"}, {"workersReady", "1/1"}, {"restarts", 2},
               {"progress", {{"step", 350}, {"totalSteps", 1000}, {"loss", 0.25}, {"samplesPerSecond", 900},
                             {"etaSeconds", 125}}},
               {"conditions", {{{"type", "Running"}, {"status", "True"}, {"reason", "AllWorkersRunning"},
                                {"lastTransitionTime", "2026-01-01T00:00:00Z"}, {"message", "1 worker runs"}}}}});
  CommandResult shown = Plugin({"status", "digits", "-n", namespace_, "--context", "mlscale-test"});
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  for (const char* expected : {"TrainingJob ", "State:       Running\n", " 35%  step 350/1000", "Loss:        0.25\n",
                               "Samples/s:   900\n", "ETA:         2m05s\n", "Restarts:    2\n",
                               "Running  True    AllWorkersRunning"}) {
    EXPECT_NE(shown.output.find(expected), std::string::npos) << expected << " in:\n" << shown.output;
  }
  CommandResult missing = Plugin({"status", "nope", "-n", namespace_});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("trainingjob nope not found in namespace " + namespace_), std::string::npos)
      << missing.output;
  CommandResult bad_context = Plugin({"status", "digits", "--context", "elsewhere"});
  EXPECT_NE(bad_context.exit_code, 0);
  EXPECT_NE(bad_context.output.find("elsewhere"), std::string::npos) << bad_context.output;
  CommandResult help = Plugin({"status", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("kubectl mlscale status <trainingjob>"), std::string::npos) << help.output;
}

TEST_F(PluginE2E, TrialsBestFirstAndTop) {
  Apply({{"apiVersion", "mlscale.io/v1alpha1"}, {"kind", "HyperparameterSweep"}, {"metadata", {{"name", "hpo"}}},
         {"spec", {{"objective", {{"metric", "testAccuracy"}, {"direction", "maximize"}}},
                   {"algorithm", {{"name", "random"}}},
                   {"parameters", {{{"name", "lr"}, {"type", "float"}, {"min", 0.001}, {"max", 0.1}}}},
                   {"maxTrials", 3},
                   {"trialTemplate", {{"spec", {{"replicas", 1}, {"trainer", {{"dataset", {{"name", "digits"}}}}}}}}}}}});
  const std::vector<std::pair<std::string, double>> accuracies = {{"hpo-0", 0.91}, {"hpo-1", 0.97}, {"hpo-2", 0.85}};
  for (size_t i = 0; i < accuracies.size(); ++i) {
    const auto& [name, accuracy] = accuracies[i];
    Apply(Job(name, {{"mlscale.io/sweep-name", "hpo"}, {"mlscale.io/trial-index", std::to_string(i)}},
              {{"mlscale.io/assignment", json{{"lr", 0.01 * double(i + 1)}}.dump()}}));
    PatchStatus("trainingjobs", name, {{"state", "Succeeded"}, {"result", {{"metrics", {{"testAccuracy", accuracy}}}}}});
  }
  Apply(Job("other"));  // not a trial of the sweep
  CommandResult trials = Plugin({"trials", "hpo", "-n", namespace_});
  ASSERT_EQ(trials.exit_code, 0) << trials.output;
  size_t best = trials.output.find("hpo-1"), middle = trials.output.find("hpo-0"), worst = trials.output.find("hpo-2");
  ASSERT_NE(worst, std::string::npos) << trials.output;
  EXPECT_LT(best, middle) << trials.output;
  EXPECT_LT(middle, worst) << trials.output;
  EXPECT_EQ(trials.output.find("other"), std::string::npos) << trials.output;
  EXPECT_NE(trials.output.find("0.97"), std::string::npos) << trials.output;

  CommandResult top = Plugin({"top", "-n", namespace_});
  ASSERT_EQ(top.exit_code, 0) << top.output;
  for (const char* expected : {"TRAININGJOB", "other", "hpo-1", "Succeeded", "SWEEP", "hpo "}) {
    EXPECT_NE(top.output.find(expected), std::string::npos) << expected << " in:\n" << top.output;
  }
}

TEST_F(PluginE2E, LogsOfARankThroughTheApiServer) {
  if (geteuid() != 0) GTEST_SKIP() << "the node agent needs root (mount namespaces)";
  NodeAgentOptions options;
  options.name = UniqueNodeName("plugin");
  StatusOr<std::unique_ptr<NodeAgentProcess>> node = StartNodeAgent(options);
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  for (int rank : {0, 1}) {
    json pod = {{"apiVersion", "v1"}, {"kind", "Pod"},
                {"metadata", {{"name", "digits-worker-" + std::to_string(rank)},
                              {"labels", {{"mlscale.io/job-name", "digits"}, {"mlscale.io/replica-index", std::to_string(rank)}}}}},
                {"spec", {{"restartPolicy", "Never"},
                          {"containers", {{{"name", "worker"}, {"image", "busybox"},
                                           {"command", {"sh", "-c", "echo rank " + std::to_string(rank) +
                                                                        " step 1; sleep 2; echo rank " +
                                                                        std::to_string(rank) + " step 2"}}}}}}}};
    (*node)->PlaceHere(pod["spec"]);
    Apply(pod);
  }
  ASSERT_TRUE(WaitFor([&] {
    return Run({"-n", namespace_, "get", "pod", "digits-worker-1", "-o", "jsonpath={.status.phase}"}).output ==
           "Running";
  }, 60s));
  CommandResult followed = Plugin({"logs", "digits", "--rank", "1", "-f", "-n", namespace_});
  EXPECT_EQ(followed.exit_code, 0) << followed.output;
  EXPECT_EQ(followed.output, "rank 1 step 1\nrank 1 step 2\n");
  CommandResult rank0 = Plugin({"logs", "digits", "--tail", "1", "-n", namespace_});
  EXPECT_EQ(rank0.output, "rank 0 step 2\n");
  CommandResult none = Plugin({"logs", "digits", "--rank", "7", "-n", namespace_});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("no pod of trainingjob digits rank 7"), std::string::npos) << none.output;
}

}  // namespace
}  // namespace mlscale::testing
