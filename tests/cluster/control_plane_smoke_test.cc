// Smoke tests of the control plane that tests/cluster/testcluster.py brings up: each one
// checks a behaviour a mock would not have (storage, RBAC, controllers, garbage collector).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "cluster_environment.h"

namespace mlscale::testing {
namespace {

// Polls `probe` until it returns true or `timeout` passes.
template <typename Probe>
bool Eventually(Probe probe, std::chrono::seconds timeout = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (probe()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return false;
}

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StatusOr<TestCluster> cluster = CurrentCluster();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    admin_ = cluster->admin_kubeconfig;
  }
  // Creates a fresh namespace for one test.
  std::string MakeNamespace(const std::string& name) {
    Kubectl(admin_, {"delete", "namespace", name, "--ignore-not-found", "--wait=true"});
    CommandResult created = Kubectl(admin_, {"create", "namespace", name});
    EXPECT_EQ(created.exit_code, 0) << created.output;
    return name;
  }
  CommandResult Admin(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    return Kubectl(admin_, args, stdin_text);
  }
  std::string admin_;
};

TEST_F(ControlPlaneTest, StoresAndReadsBackObjects) {
  std::string ns = MakeNamespace("smoke-store");
  CommandResult created = Admin({"create", "configmap", "greeting", "-n", ns, "--from-literal=text=hello"});
  ASSERT_EQ(created.exit_code, 0) << created.output;
  CommandResult read = Admin({"get", "configmap", "greeting", "-n", ns, "-o", "jsonpath={.data.text}"});
  ASSERT_EQ(read.exit_code, 0) << read.output;
  EXPECT_EQ(read.output, "hello");
}

TEST_F(ControlPlaneTest, EnforcesRbacForServiceAccountTokens) {
  std::string ns = MakeNamespace("smoke-rbac");
  StatusOr<std::string> restricted = KubeconfigForServiceAccount(ns, "restricted");
  ASSERT_TRUE(restricted.ok()) << restricted.status().ToString();

  CommandResult who = Kubectl(*restricted, {"auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"});
  ASSERT_EQ(who.exit_code, 0) << who.output;
  EXPECT_EQ(who.output, "system:serviceaccount:" + ns + ":restricted");

  CommandResult denied = Kubectl(*restricted, {"get", "configmaps", "-n", ns});
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_NE(denied.output.find("Forbidden"), std::string::npos) << denied.output;

  // Granting a Role makes the same request succeed: the token itself is valid.
  ASSERT_EQ(Admin({"create", "role", "reader", "-n", ns, "--verb=list", "--resource=configmaps"}).exit_code, 0);
  ASSERT_EQ(Admin({"create", "rolebinding", "reader", "-n", ns, "--role=reader",
                   "--serviceaccount=" + ns + ":restricted"}).exit_code, 0);
  EXPECT_TRUE(Eventually([&] { return Kubectl(*restricted, {"get", "configmaps", "-n", ns}).exit_code == 0; },
                         std::chrono::seconds(20)));
  // Still denied outside what the Role grants.
  EXPECT_NE(Kubectl(*restricted, {"get", "secrets", "-n", ns}).exit_code, 0);
}

TEST_F(ControlPlaneTest, DeploymentControllerCreatesReplicaSet) {
  std::string ns = MakeNamespace("smoke-deploy");
  CommandResult created = Admin({"create", "deployment", "web", "-n", ns, "--image=example/web:1", "--replicas=2"});
  ASSERT_EQ(created.exit_code, 0) << created.output;
  std::string owner;
  EXPECT_TRUE(Eventually([&] {
    CommandResult rs = Admin({"get", "replicasets", "-n", ns, "-o", "jsonpath={.items[0].metadata.ownerReferences[0].name}"});
    owner = rs.output;
    return rs.exit_code == 0 && owner == "web";
  })) << "no ReplicaSet owned by deployment/web; last owner seen: '" << owner << "'";
  // The ReplicaSet controller in turn creates the pods (Pending: there is no node here).
  EXPECT_TRUE(Eventually([&] {
    CommandResult pods = Admin({"get", "pods", "-n", ns, "-o", "name"});
    return pods.exit_code == 0 && std::count(pods.output.begin(), pods.output.end(), '\n') == 2;
  }));
}

TEST_F(ControlPlaneTest, GarbageCollectorDeletesDependents) {
  std::string ns = MakeNamespace("smoke-gc");
  ASSERT_EQ(Admin({"create", "configmap", "owner", "-n", ns}).exit_code, 0);
  CommandResult uid = Admin({"get", "configmap", "owner", "-n", ns, "-o", "jsonpath={.metadata.uid}"});
  ASSERT_EQ(uid.exit_code, 0) << uid.output;
  std::string dependent = R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dependent","namespace":")" +
                          ns + R"(","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":")" +
                          uid.output + R"("}]}})";
  CommandResult created = Admin({"create", "-f", "-"}, dependent);
  ASSERT_EQ(created.exit_code, 0) << created.output;

  ASSERT_EQ(Admin({"delete", "configmap", "owner", "-n", ns}).exit_code, 0);
  EXPECT_TRUE(Eventually([&] {
    return Admin({"get", "configmap", "dependent", "-n", ns}).output.find("NotFound") != std::string::npos;
  })) << "the garbage collector did not delete the dependent of a deleted owner";
}

}  // namespace
}  // namespace mlscale::testing
