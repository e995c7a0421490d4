// What the node agent gives pods that a kubelet gives, against the real control plane:
// service-account tokens from the TokenRequest API mounted where the kubelet mounts them,
// with which a program using in-cluster configuration authenticates as its service
// account (and is denied what its role does not grant), as the audit log records;
// automountServiceAccountToken: false; `kubectl logs` through the API server to the
// agent's log endpoint.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "audit_log.h"
#include "cluster_environment.h"
#include "namespaced_test.h"
#include "node_agent_process.h"

namespace mlscale::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

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

class KubeletE2E : public NamespacedTest {
 protected:
  KubeletE2E() : NamespacedTest("kl") {}
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the node agent needs root (mount namespaces)";
    NamespacedTest::SetUp();
    if (HasFatalFailure()) return;
    StatusOr<std::unique_ptr<NodeAgentProcess>> node = StartNodeAgent(NodeOptions());
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    node_ = std::move(*node);
  }

  // A pod of one container running `command`, on `node` (default: the fixture's).
  json Pod(const std::string& name, std::vector<std::string> command, const NodeAgentProcess* node = nullptr) {
    json pod = {{"apiVersion", "v1"}, {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", namespace_}}},
                {"spec", {{"restartPolicy", "Never"},
                          {"containers", {{{"name", "main"}, {"image", "busybox"}, {"command", command}}}}}}};
    (node ? node : node_.get())->PlaceHere(pod["spec"]);
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

  std::unique_ptr<NodeAgentProcess> node_;
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
  // The audit log saw the service account's requests, the denied one with 403.
  StatusOr<std::vector<AuditRecord>> audit = ReadAuditLog(CurrentCluster()->audit_log);
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  UsedPermissions used = PermissionsOf(*audit, "system:serviceaccount:" + namespace_ + ":trainer");
  EXPECT_EQ(used.used, (std::set<std::string>{"create authentication.k8s.io/selfsubjectreviews", "list /pods",
                                              "list /secrets"}));
  EXPECT_EQ(used.denied, (std::set<std::string>{"list /secrets"}));
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

// The kubelet replaces a projected token once 80% of its lifetime has passed; the API server's
// shortest lifetime is 600 s, so this node refreshes at 1% (6 s). The pod keeps authenticating
// across the refresh, with the new token (its JTI), and the old one stays valid until it expires.
TEST_F(KubeletE2E, ProjectedTokenIsRefreshedBeforeExpiryAndThePodUsesTheNewOne) {
  NodeAgentOptions options = NodeOptions();
  options.extra_args = {"--token-refresh-percent", "1"};
  StatusOr<std::unique_ptr<NodeAgentProcess>> refreshing = StartNodeAgent(options);
  ASSERT_TRUE(refreshing.ok()) << refreshing.status().ToString();
  json pod = Pod("refresh", {MLSCALE_INCLUSTER_PROBE, "--rounds", "30", "--interval-ms", "500"}, refreshing->get());
  // The service-account folder as the kubelet projects it, with a 600 s token.
  pod["spec"]["automountServiceAccountToken"] = false;
  pod["spec"]["volumes"] = {{{"name", "sa"}, {"projected", {{"sources", {
      {{"serviceAccountToken", {{"path", "token"}, {"expirationSeconds", 600}}}},
      {{"configMap", {{"name", "kube-root-ca.crt"}, {"items", {{{"key", "ca.crt"}, {"path", "ca.crt"}}}}}}},
      {{"downwardAPI", {{"items", {{{"path", "namespace"},
                                    {"fieldRef", {{"fieldPath", "metadata.namespace"}}}}}}}}}}}}}}};
  pod["spec"]["containers"][0]["volumeMounts"] = {
      {{"name", "sa"}, {"mountPath", "/var/run/secrets/kubernetes.io/serviceaccount"}, {"readOnly", true}}};
  ASSERT_TRUE(WaitFor([&] {  // kube-root-ca.crt is published by the controller manager
    return Run({"-n", namespace_, "get", "configmap", "kube-root-ca.crt"}).exit_code == 0;
  }, 30s));
  Apply(pod);
  std::string token_file;
  std::string first;
  ASSERT_TRUE(WaitFor([&] {
    std::string dir = (*refreshing)->PodDir(namespace_, "refresh");
    if (!dir.empty()) token_file = dir + "/volumes/sa/token";
    first = token_file.empty() ? "" : ReadAll(token_file);
    return !first.empty();
  }, 60s)) << "no token was issued";
  std::string second;
  ASSERT_TRUE(WaitFor([&] {
    second = ReadAll(token_file);
    return !second.empty() && second != first;
  }, 30s)) << "the token was not refreshed";

  // Both are valid, for the same pod, and they are two credentials.
  auto review = [&](const std::string& token) {
    CommandResult result = Run({"create", "-f", "-", "-o", "json"},
                               json{{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"},
                                    {"spec", {{"token", token}}}}.dump());
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return json::parse(result.output, nullptr, false)["status"];
  };
  json old_review = review(first), new_review = review(second);
  for (const json& status : {old_review, new_review}) {
    EXPECT_EQ(status.value("authenticated", false), true) << status.dump();
    EXPECT_EQ(status["user"].value("username", ""), "system:serviceaccount:" + namespace_ + ":default");
    EXPECT_EQ(status["user"]["extra"]["authentication.kubernetes.io/pod-name"], json::array({"refresh"}));
  }
  std::string old_id = old_review["user"]["extra"]["authentication.kubernetes.io/credential-id"][0];
  std::string new_id = new_review["user"]["extra"]["authentication.kubernetes.io/credential-id"][0];
  EXPECT_NE(old_id, new_id);

  // The pod authenticated in every round, first with the old token, later with the new one.
  std::string phase = WaitForEnd("refresh");
  std::string log = ReadAll((*refreshing)->PodDir(namespace_, "refresh") + "/main.log");
  EXPECT_EQ(phase, "Succeeded") << log;
  EXPECT_NE(log.find("credential: " + old_id + "\n"), std::string::npos) << log;
  EXPECT_NE(log.find("credential: " + new_id + "\n"), std::string::npos) << log;
  EXPECT_LT(log.find("credential: " + old_id + "\n"), log.find("credential: " + new_id + "\n")) << log;
  std::istringstream lines(log);
  int rounds = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("user: ", 0) == 0) {
      ++rounds;
      EXPECT_EQ(line, "user: system:serviceaccount:" + namespace_ + ":default");
    }
  }
  EXPECT_EQ(rounds, 30) << log;
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

TEST_F(KubeletE2E, KubectlLogsCurrentPreviousTailAndFollow) {
  // The first run fails, the second runs for a while: -f follows it to its end.
  json pod = Pod("logs", {"sh", "-c",
                          "n=$(cat runs 2>/dev/null || echo 0); echo $((n+1)) > runs; echo \"run $n line 1\"; "
                          "echo \"run $n line 2\"; [ $n -ge 1 ] || exit 1; sleep 4; echo \"run $n done\""});
  pod["spec"]["restartPolicy"] = "OnFailure";
  Apply(pod);
  ASSERT_TRUE(WaitFor([&] {
    return Run({"-n", namespace_, "get", "pod", "logs", "-o",
                "jsonpath={.status.containerStatuses[0].restartCount}/{.status.containerStatuses[0].state.running}"})
               .output.rfind("1/{", 0) == 0;
  }, 60s));
  CommandResult followed = Run({"-n", namespace_, "logs", "-f", "logs", "-c", "main"});
  EXPECT_EQ(followed.exit_code, 0) << followed.output;
  EXPECT_EQ(followed.output, "run 1 line 1\nrun 1 line 2\nrun 1 done\n");
  CommandResult previous = Run({"-n", namespace_, "logs", "--previous", "logs"});
  EXPECT_EQ(previous.output, "run 0 line 1\nrun 0 line 2\n");
  EXPECT_EQ(Run({"-n", namespace_, "logs", "--tail=2", "logs"}).output, "run 1 line 2\nrun 1 done\n");
  CommandResult timestamps = Run({"-n", namespace_, "logs", "--timestamps", "logs"});
  EXPECT_NE(timestamps.exit_code, 0);
  EXPECT_NE(timestamps.output.find("timestamps are not recorded"), std::string::npos) << timestamps.output;

  // Straight to the endpoint the Node advertises: its certificate verifies against the
  // cluster CA for 127.0.0.1, and only a client with a certificate from that CA is served.
  std::string port = Run({"get", "node", node_->name(), "-o", "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}"}).output;
  ASSERT_FALSE(port.empty() || port == "0");
  std::string pki = CurrentCluster()->dir + "/pki/";
  auto fetch = [&](const std::string& client_cert) {
    std::string script =
        "import socket, ssl, sys\n"
        "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
        "if len(sys.argv) > 4: ctx.load_cert_chain(sys.argv[4], sys.argv[5])\n"
        "try:\n"
        "  s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=10),"
        " server_hostname='127.0.0.1')\n"
        "  s.sendall(('GET ' + sys.argv[3] + ' HTTP/1.1\\r\\nHost: n\\r\\n\\r\\n').encode())\n"
        "  print(s.recv(64).decode(errors='replace').splitlines()[0])\n"
        "except (ssl.SSLError, OSError, IndexError) as e: print('refused', type(e).__name__)\n";
    std::vector<std::string> argv = {"python3", "-c", script, pki + "ca.crt", port,
                                     "/containerLogs/" + namespace_ + "/logs/main"};
    if (!client_cert.empty()) argv.insert(argv.end(), {pki + client_cert + ".crt", pki + client_cert + ".key"});
    return RunCommand(argv).output;
  };
  EXPECT_EQ(fetch("apiserver-kubelet-client"), "HTTP/1.1 200 OK\n");
  EXPECT_EQ(fetch("").rfind("refused", 0), 0u) << fetch("");
}

}  // namespace
}  // namespace mlscale::testing
