// The node agent against the real control plane: pods the real kube-scheduler binds to
// an mlscale-test-node run as processes, report their status, resolve each other by
// cluster DNS names across nodes, and are killed and removed when deleted.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
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

class NodeAgentE2E : public NamespacedTest {
 protected:
  NodeAgentE2E() : NamespacedTest("na") {}
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the node agent needs root (mount namespaces)";
    NamespacedTest::SetUp();
  }

  // Waits for the pod's phase; returns the pod as last seen.
  json WaitForPhase(const std::string& name, const std::string& phase, std::chrono::seconds limit = 60s) {
    json pod;
    bool reached = WaitFor([&] {
      pod = Get("pod", name);
      return pod.is_object() && pod["status"].value("phase", "") == phase;
    }, limit);
    EXPECT_TRUE(reached) << "pod " << name << " never reached " << phase << "; last seen: " << pod.dump(2);
    return pod;
  }
  bool PodReady(const json& pod) {
    for (const json& condition : pod["status"].value("conditions", json::array())) {
      if (condition.value("type", "") == "Ready") return condition.value("status", "") == "True";
    }
    return false;
  }

  // A pod whose single container runs `script` in sh.
  json ShellPod(const std::string& name, const std::string& script, const std::string& restart_policy,
                const NodeAgentProcess& node) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", namespace_}}},
                {"spec", {{"restartPolicy", restart_policy},
                          {"containers", {{{"name", "main"}, {"image", "busybox"},
                                           {"command", {"sh", "-c", script}}}}}}}};
    node.PlaceHere(pod["spec"]);
    return pod;
  }

  std::unique_ptr<NodeAgentProcess> StartNode(NodeAgentOptions options = {}) {
    if (options.name.empty()) options.name = UniqueNodeName("e2e");
    StatusOr<std::unique_ptr<NodeAgentProcess>> node = StartNodeAgent(options);
    EXPECT_TRUE(node.ok()) << node.status().ToString();
    return node.ok() ? std::move(*node) : nullptr;
  }
};

TEST_F(NodeAgentE2E, PodRunsToSucceededWithExitCodeAndTerminationMessage) {
  auto node = StartNode();
  ASSERT_TRUE(node);
  Apply(ShellPod("ok", "echo \"trained on $(hostname)\" > /dev/termination-log; exit 0", "Never", *node));
  json pod = WaitForPhase("ok", "Succeeded");
  const json& container = pod["status"]["containerStatuses"][0];
  EXPECT_EQ(container["state"]["terminated"]["exitCode"], 0);
  EXPECT_EQ(container["state"]["terminated"]["reason"], "Completed");
  EXPECT_EQ(container["state"]["terminated"]["message"], "trained on ok\n");
  EXPECT_EQ(pod["spec"]["nodeName"], node->name());  // bound by the real scheduler
  EXPECT_TRUE(pod["status"].value("podIP", "").rfind("127.", 0) == 0) << pod["status"].dump();
}

TEST_F(NodeAgentE2E, FailingPodGoesToFailedWithItsExitCode) {
  auto node = StartNode();
  ASSERT_TRUE(node);
  Apply(ShellPod("bad", "echo 'loss is NaN' > /dev/termination-log; exit 3", "Never", *node));
  json pod = WaitForPhase("bad", "Failed");
  const json& terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"];
  EXPECT_EQ(terminated["exitCode"], 3);
  EXPECT_EQ(terminated["reason"], "Error");
  EXPECT_EQ(terminated["message"], "loss is NaN\n");
}

TEST_F(NodeAgentE2E, OnFailureRestartsCountAndEndInSuccess) {
  auto node = StartNode();
  ASSERT_TRUE(node);
  // The pod folder survives restarts: fail twice, then succeed.
  Apply(ShellPod("flaky", "n=$(cat tries 2>/dev/null || echo 0); echo $((n+1)) > tries; [ $n -ge 2 ]",
                 "OnFailure", *node));
  json pod = WaitForPhase("flaky", "Succeeded");
  const json& container = pod["status"]["containerStatuses"][0];
  EXPECT_EQ(container["restartCount"], 2);
  EXPECT_EQ(container["lastState"]["terminated"]["exitCode"], 1);
}

TEST_F(NodeAgentE2E, ConfigMapCreatedAfterThePodIsUsedOnceItExists) {
  auto node = StartNode();
  ASSERT_TRUE(node);
  json pod = ShellPod("conf", "echo \"$LR $(cat /etc/trainer/epochs)\" > /dev/termination-log", "Never", *node);
  pod["spec"]["volumes"] = {{{"name", "settings"}, {"configMap", {{"name", "settings"}}}}};
  pod["spec"]["containers"][0]["volumeMounts"] = {{{"name", "settings"}, {"mountPath", "/etc/trainer"}}};
  pod["spec"]["containers"][0]["env"] = {
      {{"name", "LR"}, {"valueFrom", {{"configMapKeyRef", {{"name", "settings"}, {"key", "lr"}}}}}}};
  Apply(pod);
  EXPECT_TRUE(WaitFor([&] {
    json seen = Get("pod", "conf");
    return seen.is_object() && seen["status"].contains("containerStatuses") &&
           seen["status"]["containerStatuses"][0]["state"]["waiting"].value("reason", "") ==
               "CreateContainerConfigError";
  }, 30s));
  EXPECT_EQ(Get("pod", "conf")["status"].value("phase", ""), "Pending");
  Apply({{"apiVersion", "v1"}, {"kind", "ConfigMap"},
         {"metadata", {{"name", "settings"}, {"namespace", namespace_}}},
         {"data", {{"lr", "0.1"}, {"epochs", "7"}}}});
  json done = WaitForPhase("conf", "Succeeded");
  EXPECT_EQ(done["status"]["containerStatuses"][0]["state"]["terminated"]["message"], "0.1 7\n");
}

TEST_F(NodeAgentE2E, DeletedRunningPodGetsSigtermThenSigkillAndIsRemoved) {
  auto node = StartNode();
  ASSERT_TRUE(node);
  json pod = ShellPod("long", "", "Always", *node);
  pod["spec"]["terminationGracePeriodSeconds"] = 3;
  // "polite" records the SIGTERM and exits; "stubborn" ignores it and must be SIGKILLed.
  pod["spec"]["containers"] = {
      {{"name", "polite"}, {"image", "busybox"},
       {"command", {"sh", "-c", "trap 'echo term > polite.got-term; exit 0' TERM; while :; do sleep 0.1; done"}}},
      {{"name", "stubborn"}, {"image", "busybox"},
       // $$ is Kubernetes' escape for a literal $, so the shell sees $$ (its pid).
       {"command", {"sh", "-c", "echo $$$$ > stubborn.pid; trap '' TERM; while :; do sleep 0.1; done"}}}};
  Apply(pod);
  WaitForPhase("long", "Running");
  std::string dir = node->PodDir(namespace_, "long");
  ASSERT_FALSE(dir.empty());
  ASSERT_TRUE(WaitFor([&] {
    std::error_code error;
    return std::filesystem::file_size(dir + "/stubborn.pid", error) > 0 && !error;
  }, 10s));
  std::this_thread::sleep_for(300ms);  // the shells install their traps
  pid_t stubborn = 0;
  std::ifstream(dir + "/stubborn.pid") >> stubborn;
  ASSERT_GT(stubborn, 0);
  ASSERT_EQ(kill(stubborn, 0), 0);

  auto deleted_at = std::chrono::steady_clock::now();
  ASSERT_EQ(Run({"-n", namespace_, "delete", "pod", "long", "--wait=false"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(dir + "/polite.got-term"); }, 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - deleted_at, 2500ms) << "SIGTERM came late";
  EXPECT_EQ(kill(stubborn, 0), 0) << "killed before the grace period ended";
  ASSERT_TRUE(WaitFor([&] { return Get("pod", "long").is_null(); }, 30s)) << "the pod was not removed";
  auto gone_after = std::chrono::steady_clock::now() - deleted_at;
  EXPECT_GE(gone_after, 3s) << "removed before the grace period ended";
  EXPECT_LT(gone_after, 15s);
  EXPECT_NE(kill(stubborn, 0), 0) << "the stubborn container outlived its pod";
}

TEST_F(NodeAgentE2E, PodsOnTwoNodesReachEachOtherByDnsName) {
  auto node_a = StartNode();
  auto node_b = StartNode();
  ASSERT_TRUE(node_a && node_b);
  Apply({{"apiVersion", "v1"}, {"kind", "Service"},
         {"metadata", {{"name", "peers"}, {"namespace", namespace_}}},
         {"spec", {{"clusterIP", "None"}, {"selector", {{"app", "peers"}}}, {"publishNotReadyAddresses", true}}}});
  // The server answers one connection on its own address with its hostname.
  json server = ShellPod("server-0", "", "Never", *node_a);
  server["metadata"]["labels"] = {{"app", "peers"}};
  server["spec"]["hostname"] = "server-0";
  server["spec"]["subdomain"] = "peers";
  server["spec"]["containers"][0]["command"] = {
      "/usr/bin/python3", "-c",
      "import os, socket\n"
      "s = socket.create_server((os.environ['POD_IP'], 7070))\n"
      "c, _ = s.accept()\n"
      "c.sendall(('hello from ' + socket.gethostname()).encode())\n"};
  server["spec"]["containers"][0]["env"] = {
      {{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}}};
  // The client, on the other node, finds it by name (retrying until the name resolves).
  json client = ShellPod("client", "", "Never", *node_b);
  client["metadata"]["labels"] = {{"app", "peers"}};
  client["spec"]["hostname"] = "client";
  client["spec"]["subdomain"] = "peers";
  client["spec"]["containers"][0]["command"] = {
      "/usr/bin/python3", "-c",
      "import socket, time\n"
      "for attempt in range(200):\n"
      "    try:\n"
      "        c = socket.create_connection(('server-0.peers', 7070), timeout=2); break\n"
      "    except OSError: time.sleep(0.1)\n"
      "reply = c.recv(100).decode()\n"
      "full = socket.gethostbyname('server-0.peers." + namespace_ + ".svc.cluster.local')\n"
      "open('/dev/termination-log', 'w').write(reply + ' at ' + full)\n"};
  Apply(server);
  Apply(client);
  json done = WaitForPhase("client", "Succeeded", 90s);
  json server_pod = WaitForPhase("server-0", "Succeeded");
  std::string server_ip = server_pod["status"].value("podIP", "");
  EXPECT_NE(server_ip, done["status"].value("podIP", ""));  // distinct addresses
  EXPECT_EQ(done["status"]["containerStatuses"][0]["state"]["terminated"]["message"],
            "hello from server-0 at " + server_ip);
  EXPECT_EQ(server_pod["spec"]["nodeName"], node_a->name());
  EXPECT_EQ(done["spec"]["nodeName"], node_b->name());
}

TEST_F(NodeAgentE2E, ReadinessProbesFlipReady) {
  auto node = StartNode();
  ASSERT_TRUE(node);
  json pod = ShellPod("srv", "", "Always", *node);
  pod["spec"]["containers"] = {
      // Ready while the file "ready" exists in the pod folder.
      {{"name", "gate"}, {"image", "busybox"}, {"command", {"sleep", "3600"}},
       {"readinessProbe", {{"exec", {{"command", {"test", "-f", "ready"}}}},
                           {"periodSeconds", 1}, {"failureThreshold", 1}}}},
      // Ready once its HTTP server answers on the pod's address.
      {{"name", "web"}, {"image", "busybox"},
       {"command", {"sh", "-c", "sleep 2; exec /usr/bin/python3 -m http.server 8080 --bind \"$POD_IP\""}},
       {"env", {{{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}}}},
       {"ports", {{{"name", "http"}, {"containerPort", 8080}}}},
       {"readinessProbe", {{"httpGet", {{"path", "/"}, {"port", "http"}}}, {"periodSeconds", 1}}}}};
  Apply(pod);
  WaitForPhase("srv", "Running");
  auto ready_of = [&](const std::string& container) {
    json pod_now = Get("pod", "srv");
    for (const json& status : pod_now["status"]["containerStatuses"]) {
      if (status["name"] == container) return status.value("ready", false);
    }
    return false;
  };
  EXPECT_TRUE(WaitFor([&] { return ready_of("web"); }, 30s)) << "the HTTP probe never succeeded";
  EXPECT_FALSE(ready_of("gate"));
  EXPECT_FALSE(PodReady(Get("pod", "srv")));
  std::string dir = node->PodDir(namespace_, "srv");
  std::ofstream(dir + "/ready") << "yes\n";
  EXPECT_TRUE(WaitFor([&] { return PodReady(Get("pod", "srv")); }, 20s)) << "Ready never became True";
  std::filesystem::remove(dir + "/ready");
  EXPECT_TRUE(WaitFor([&] { return !PodReady(Get("pod", "srv")); }, 20s)) << "Ready never went back to False";
}

TEST_F(NodeAgentE2E, NodeHasCapacityLeaseAndRunsGpuPods) {
  std::string name;
  {
    NodeAgentOptions options;
    options.name = UniqueNodeName("gpu");
    options.capacity = {{"nvidia.com/gpu", "2"}};
    auto node = StartNode(options);
    ASSERT_TRUE(node);
    name = node->name();
    CommandResult node_json = Run({"get", "node", name, "-o", "json"});
    ASSERT_EQ(node_json.exit_code, 0) << node_json.output;
    json object = json::parse(node_json.output);
    EXPECT_EQ(object["status"]["capacity"]["nvidia.com/gpu"], "2");
    EXPECT_EQ(object["status"]["allocatable"]["nvidia.com/gpu"], "2");
    bool ready = false;
    for (const json& condition : object["status"]["conditions"]) {
      if (condition["type"] == "Ready") ready = condition["status"] == "True";
    }
    EXPECT_TRUE(ready);
    CommandResult lease = Run({"-n", "kube-node-lease", "get", "lease", name, "-o", "json"});
    ASSERT_EQ(lease.exit_code, 0) << lease.output;
    EXPECT_EQ(json::parse(lease.output)["spec"]["holderIdentity"], name);

    json pod = ShellPod("cuda", "true", "Never", *node);
    pod["spec"]["containers"][0]["resources"] = {{"limits", {{"nvidia.com/gpu", "2"}}}};
    Apply(pod);
    WaitForPhase("cuda", "Succeeded");
    // A third GPU does not exist: the scheduler keeps such a pod Pending.
    json greedy = ShellPod("greedy", "true", "Never", *node);
    greedy["spec"]["containers"][0]["resources"] = {{"limits", {{"nvidia.com/gpu", "3"}}}};
    Apply(greedy);
    std::this_thread::sleep_for(2s);
    json seen = Get("pod", "greedy");
    EXPECT_EQ(seen["status"].value("phase", ""), "Pending");
    EXPECT_FALSE(seen["spec"].contains("nodeName"));
  }
  // Stopping the agent removes its node.
  EXPECT_NE(Run({"get", "node", name}).exit_code, 0);
}

}  // namespace
}  // namespace mlscale::testing
