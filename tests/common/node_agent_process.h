// Running a test node agent (tests/nodeagent, mlscale-test-node) from an end-to-end
// test, so the pods the test creates really run (as local processes). Needs the test
// control plane (mlscale_add_test(... CLUSTER)) and root.
//
//   NodeAgentOptions options;
//   options.name = UniqueNodeName("train");
//   options.capacity = {{"nvidia.com/gpu", "2"}};
//   options.images = {{"mlscale/worker:dev", "/path/to/mlscale-worker"}};
//   auto node = StartNodeAgent(options);
//   ASSERT_TRUE(node.ok()) << node.status().ToString();
//   json pod_spec = {...};
//   (*node)->PlaceHere(pod_spec);   // exclusive nodes take only pods placed on them
//
// Parallel tests share one control plane and the scheduler may put a pod on any Ready
// node, so by default a node is exclusive: tainted `mlscale.io/test-node=<name>:NoSchedule`
// and labelled `mlscale.io/test-node=<name>`; PlaceHere() adds the matching toleration and
// nodeSelector to a pod spec (or a pod template's spec). Tests whose pods cannot carry
// them use exclusive = false and must not run in parallel with other node tests
// (ctest RUN_SERIAL).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"

namespace mlscale::testing {

struct NodeAgentOptions {
  std::string name;                                 // the Node's name (unique per test)
  std::map<std::string, std::string> capacity;      // e.g. {"nvidia.com/gpu", "2"}; adds to the defaults
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> images;        // image -> binary run when no command is given
  std::vector<std::string> taints;                  // "key=value:Effect", besides the exclusive one
  bool exclusive = true;
  int restart_backoff_ms = 200;                     // fast restarts for tests
  std::vector<std::string> extra_args;              // more mlscale-test-node flags
};

class NodeAgentProcess {
 public:
  NodeAgentProcess(pid_t pid, std::string name, std::string state_dir, bool exclusive)
      : pid_(pid), name_(std::move(name)), state_dir_(std::move(state_dir)), exclusive_(exclusive) {}
  // Stops the agent (SIGTERM; SIGKILL after 20 s): its pod processes are killed and
  // its Node and Lease deleted.
  ~NodeAgentProcess();
  NodeAgentProcess(const NodeAgentProcess&) = delete;
  NodeAgentProcess& operator=(const NodeAgentProcess&) = delete;

  const std::string& name() const { return name_; }
  // Pod folders are <state_dir>/pods/<namespace>_<name>_<uid>/ (logs, hosts, termination logs).
  const std::string& state_dir() const { return state_dir_; }
  std::string log_file() const { return state_dir_ + "/agent.log"; }
  // The folder of a pod this node runs ("" when none): holds <container>.log.
  std::string PodDir(const std::string& namespace_name, const std::string& pod_name) const;
  // Adds this node's nodeSelector and (when exclusive) toleration to a pod spec.
  void PlaceHere(nlohmann::json& pod_spec) const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
  std::string name_;
  std::string state_dir_;
  bool exclusive_;
};

// Starts mlscale-test-node against the current test cluster and waits until its Node is
// registered and its caches are synced. It serves the kubelet's log endpoint with the
// cluster's kubelet serving certificate, so `kubectl logs` works for its pods. Errors carry the tail of the agent's log.
StatusOr<std::unique_ptr<NodeAgentProcess>> StartNodeAgent(const NodeAgentOptions& options);

// "<prefix>-<pid>-<counter>": node names that do not collide across test processes.
std::string UniqueNodeName(const std::string& prefix);

}  // namespace mlscale::testing
