// What an integration test knows of the control plane that ctest started for it
// (tests/cluster/testcluster.py, fixture `cluster`). Tests that use it are registered
// with mlscale_add_test(... CLUSTER) and should work in a namespace of their own.
#pragma once

#include <string>
#include <vector>

#include "command.h"
#include "mlscale/common/status.h"

namespace mlscale::testing {

struct TestCluster {
  std::string dir;              // the fixture's state folder
  std::string server;           // https://127.0.0.1:<port>
  std::string admin_kubeconfig; // cluster-admin credentials
  std::string ca_file;          // the CA that signed the apiserver's serving cert
  std::string bin_dir;          // where kubectl, etcd, kube-apiserver... are
  std::string audit_log;        // the API server's audit log (audit_log.h reads it)
  // The node agents' serving certificate and key (PEM files) for their log endpoint.
  std::string kubelet_serving_cert;
  std::string kubelet_serving_key;
};

// The running test cluster, read once from $MLSCALE_TEST_CLUSTER_DIR/cluster.json.
// An error when the test was started without the fixture.
StatusOr<TestCluster> CurrentCluster();

// Runs kubectl (from the cluster's bin dir) with the given kubeconfig and arguments.
CommandResult Kubectl(const std::string& kubeconfig, const std::vector<std::string>& args,
                      const std::string& stdin_text = "");

// Creates namespace/service account if missing and writes a kubeconfig that
// authenticates as that service account (a token from the TokenRequest API).
// Returns the kubeconfig's path.
StatusOr<std::string> KubeconfigForServiceAccount(const std::string& namespace_name,
                                                  const std::string& service_account);

}  // namespace mlscale::testing
