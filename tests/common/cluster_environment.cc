#include "cluster_environment.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace mlscale::testing {
namespace {

StatusOr<TestCluster> LoadCluster() {
  const char* dir = std::getenv("MLSCALE_TEST_CLUSTER_DIR");
  if (dir == nullptr || *dir == '\0') {
    return FailedPrecondition("MLSCALE_TEST_CLUSTER_DIR is not set: run this test through ctest, "
                              "which starts the control plane (fixture 'cluster')");
  }
  std::string path = std::string(dir) + "/cluster.json";
  std::ifstream in(path);
  if (!in) return NotFound("no " + path + ": the control plane is not up");
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return DataLoss(path + " is not a JSON object");
  TestCluster cluster;
  cluster.dir = dir;
  cluster.server = doc.value("server", "");
  cluster.admin_kubeconfig = doc.value("adminKubeconfig", "");
  cluster.ca_file = doc.value("caFile", "");
  cluster.bin_dir = doc.value("binDir", "");
  cluster.audit_log = doc.value("auditLog", "");
  cluster.kubelet_serving_cert = doc.value("kubeletServingCert", "");
  cluster.kubelet_serving_key = doc.value("kubeletServingKey", "");
  if (cluster.server.empty() || cluster.admin_kubeconfig.empty() || cluster.bin_dir.empty()) {
    return DataLoss(path + " lacks server, adminKubeconfig or binDir");
  }
  return cluster;
}

}  // namespace

StatusOr<TestCluster> CurrentCluster() {
  static const StatusOr<TestCluster> cluster = LoadCluster();
  return cluster;
}

CommandResult Kubectl(const std::string& kubeconfig, const std::vector<std::string>& args,
                      const std::string& stdin_text) {
  StatusOr<TestCluster> cluster = CurrentCluster();
  if (!cluster.ok()) return {127, cluster.status().ToString()};
  std::vector<std::string> argv = {cluster->bin_dir + "/kubectl", "--kubeconfig", kubeconfig};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, stdin_text);
}

StatusOr<std::string> KubeconfigForServiceAccount(const std::string& namespace_name,
                                                  const std::string& service_account) {
  StatusOr<TestCluster> cluster = CurrentCluster();
  if (!cluster.ok()) return cluster.status();
  std::string path = cluster->dir + "/sa-" + namespace_name + "-" + service_account + ".kubeconfig";
  CommandResult minted = RunCommand({"python3", std::string(MLSCALE_TESTCLUSTER_TOOL), "kubeconfig",
                                     "--dir", cluster->dir, "--namespace", namespace_name,
                                     "--service-account", service_account, "--out", path});
  if (minted.exit_code != 0) {
    return Internal("minting a kubeconfig for " + namespace_name + "/" + service_account +
                    " failed: " + minted.output);
  }
  return path;
}

}  // namespace mlscale::testing
