// What the node agent gives pods that a kubelet gives, against the real control plane:
// service-account tokens from the TokenRequest API mounted where the kubelet mounts them,
// with which a program using in-cluster configuration authenticates as its service
// account (and is denied what its role does not grant); automountServiceAccountToken: false.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cluster_environment.h"
#include "node_agent_process.h"

namespace mlscale::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

bool WaitFor(const std::function<bool()>& condition, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return condition();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

NodeAgentOptions NodeOptions() {
  NodeAgentOptions options;
  options.name = UniqueNodeName("kubelet");
  return options;
}

class KubeletE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the node agent needs root (mount namespaces)";
    StatusOr<TestCluster> cluster = CurrentCluster();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    kubeconfig_ = cluster->admin_kubeconfig;
    namespace_ = "kl-" + std::to_string(getpid()) + "-" + std::to_string(++counter_);
    ASSERT_EQ(Run({"create", "namespace", namespace_}).exit_code, 0);
    ASSERT_TRUE(WaitFor([&] { return Run({"-n", namespace_, "get", "serviceaccount", "default"}).exit_code == 0; }, 30s));
    StatusOr<std::unique_ptr<NodeAgentProcess>> node = StartNodeAgent(NodeOptions());
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    node_ = std::move(*node);
  }
  void TearDown() override {
    if (!namespace_.empty()) Run({"delete", "namespace", namespace_, "--wait=false"});
  }

  CommandResult Run(const std::vector<std::string>& args, const std::string& input = "") {
    return Kubectl(kubeconfig_, args, input);
  }
  void Apply(const json& object) {
    CommandResult result = Run({"-n", namespace_, "apply", "-f", "-"}, object.dump());
    ASSERT_EQ(result.exit_code, 0) << result.output;
  }
  json Pod(const std::string& name, std::vector<std::string> command) {
    json pod = {{"apiVersion", "v1"}, {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", namespace_}}},
                {"spec", {{"restartPolicy", "Never"},
                          {"containers", {{{"name", "main"}, {"image", "busybox"}, {"command", command}}}}}}};
    node_->PlaceHere(pod["spec"]);
    return pod;
  }
  // Waits until the pod ended; returns its phase.
  std::string WaitForEnd(const std::string& name) {
    std::string phase;
    WaitFor([&] {
      CommandResult result = Run({"-n", namespace_, "get", "pod", name, "-o", "jsonpath={.status.phase}"});
      phase = result.output;
      return phase == "Succeeded" || phase == "Failed";
    }, 60s);
    return phase;
  }
  std::string Log(const std::string& pod) { return ReadAll(node_->PodDir(namespace_, pod) + "/main.log"); }

  std::string kubeconfig_;
  std::string namespace_;
  std::unique_ptr<NodeAgentProcess> node_;
  static inline int counter_ = 0;
};

TEST_F(KubeletE2E, InClusterProgramAuthenticatesAsItsServiceAccount) {
  // The trainer may list pods in its namespace and nothing else.
  Apply({{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", "trainer"}}}});
  Apply({{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "Role"}, {"metadata", {{"name", "pod-reader"}}},
         {"rules", {{{"apiGroups", {""}}, {"resources", {"pods"}}, {"verbs", {"list"}}}}}});
  Apply({{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "RoleBinding"},
         {"metadata", {{"name", "trainer-reads-pods"}}},
         {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", "pod-reader"}}},
         {"subjects", {{{"kind", "ServiceAccount"}, {"name", "trainer"}, {"namespace", namespace_}}}}});
  json pod = Pod("probe", {MLSCALE_INCLUSTER_PROBE});
  pod["spec"]["serviceAccountName"] = "trainer";
  Apply(pod);
  EXPECT_EQ(WaitForEnd("probe"), "Succeeded") << Log("probe");
  std::string log = Log("probe");
  EXPECT_NE(log.find("user: system:serviceaccount:" + namespace_ + ":trainer\n"), std::string::npos) << log;
  EXPECT_NE(log.find("namespace: " + namespace_ + "\n"), std::string::npos) << log;
  EXPECT_NE(log.find("list pods: allowed\n"), std::string::npos) << log;
  EXPECT_NE(log.find("list secrets: forbidden\n"), std::string::npos) << log;
  // The token on the host side is bound to this pod (the API server's claims say so).
  std::string token = ReadAll(node_->PodDir(namespace_, "probe") + "/volumes/" +
                              Run({"-n", namespace_, "get", "pod", "probe", "-o",
                                   "jsonpath={.spec.volumes[0].name}"}).output + "/token");
  CommandResult review = Run({"create", "-f", "-", "-o", "json"},
                             json{{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"},
                                  {"spec", {{"token", token}}}}.dump());
  ASSERT_EQ(review.exit_code, 0) << review.output;
  json answer = json::parse(review.output, nullptr, false);
  EXPECT_EQ(answer["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"], json::array({"probe"}))
      << review.output;
}

TEST_F(KubeletE2E, NoTokenWithoutAutomountButTheApiServerAddress) {
  json pod = Pod("no-token", {"sh", "-c",
                              "test ! -e /var/run/secrets/kubernetes.io/serviceaccount/token && "
                              "test -n \"$KUBERNETES_SERVICE_HOST\" && test -n \"$KUBERNETES_SERVICE_PORT\" && "
                              "echo \"https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT\""});
  pod["spec"]["automountServiceAccountToken"] = false;
  Apply(pod);
  EXPECT_EQ(WaitForEnd("no-token"), "Succeeded") << Log("no-token");
  EXPECT_EQ(Log("no-token"), CurrentCluster()->server + "\n");
}

}  // namespace
}  // namespace mlscale::testing
