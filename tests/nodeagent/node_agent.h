// The node agent: a kubelet stand-in for end-to-end tests. It registers a Node (with
// the configured capacity, labels and taints, and a Ready condition), renews the Node's
// Lease in kube-node-lease, and runs every pod the scheduler binds to the Node through a
// PodRuntime, writing the pod's status through the status subresource. Pods resolve each
// other's cluster DNS names through hosts files kept current from the pods and Services
// it watches. A deleted pod gets SIGTERM, SIGKILL after its grace period, a terminal
// status, and is then removed (deleted with grace 0), as the kubelet does.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "address_pool.h"
#include "agent_config.h"
#include "log_endpoint.h"
#include "mlscale/kube/client.h"
#include "mlscale/kube/informer.h"
#include "pod_runtime.h"

namespace mlscale::nodeagent {

// The token and its expiry from a TokenRequest answer (status.token,
// status.expirationTimestamp). DataLoss when either is missing or malformed (the token
// itself is never quoted).
struct IssuedTokenValue {
  std::string token;
  std::chrono::system_clock::time_point expires;
};
StatusOr<IssuedTokenValue> TokenFromTokenRequest(const nlohmann::json& answer);

class NodeAgent {
 public:
  // `client` must outlive the agent.
  NodeAgent(kube::Client& client, AgentConfig config);
  ~NodeAgent();
  NodeAgent(const NodeAgent&) = delete;
  NodeAgent& operator=(const NodeAgent&) = delete;

  // Registers the Node and runs pods until `stop` is requested; then kills what runs and,
  // when configured, deletes the Node and its Lease. Errors: the Node could not be
  // registered or the caches did not sync.
  Status Run(std::stop_token stop);

 private:
  // A service-account token the agent keeps current in a pod's volume.
  struct IssuedToken {
    std::string file;  // on the host: <pod dir>/volumes/<volume>/<path>
    TokenProjection projection;
    std::chrono::system_clock::time_point refresh_at;
  };

  struct PodEntry {
    std::string uid;
    std::vector<IssuedToken> tokens;
    std::string address;
    std::unique_ptr<PodRuntime> runtime;
    nlohmann::json last_status;   // as last written
    std::string hosts_text;
    bool delete_sent = false;
    // The plan failed (missing ConfigMap, unmapped image...): retried from this time on,
    // as the kubelet retries CreateContainerConfigError.
    std::optional<std::chrono::steady_clock::time_point> retry_plan_at;
  };

  // Asks the TokenRequest API for a token of the pod's service account, bound to the pod;
  // returns the token and sets `refresh_at` (TokenRefreshTime).
  StatusOr<std::string> RequestToken(const PodPlan& plan, const TokenProjection& projection,
                                     std::chrono::system_clock::time_point& refresh_at);
  // Issues the plan's tokens into its volumes' files; records them in `entry` for refresh.
  Status IssueTokens(PodPlan& plan, const std::string& pod_dir, PodEntry& entry);
  // Replaces every token of a running pod that is due (written atomically: rename).
  void RefreshTokens(const std::string& key, PodEntry& entry);
  Status RegisterNode();
  Status WriteNodeStatus();
  Status RenewLease();
  void MarkDirty(const std::string& key, bool names_changed);
  void SyncPod(const std::string& key);
  // Starts the pod at `address` ("" = lease a new one).
  void StartPod(const std::string& key, const kube::Object& pod, const std::string& address);
  void WriteStatus(const std::string& key, PodEntry& entry);
  void RefreshNames();
  std::string HostsFor(const kube::Object& pod, const std::string& address) const;
  StatusOr<std::map<std::string, std::string>> ReadValues(const std::string& kind,
                                                           const std::string& namespace_name,
                                                           const std::string& name);

  // The log file of a container of a pod running here, for the log endpoint's threads.
  std::optional<std::string> LogFileOf(const std::string& namespace_name, const std::string& pod,
                                       const std::string& container);
  void ForgetLogs(const std::string& key, const std::string& uid);

  kube::Client& client_;
  const AgentConfig config_;
  AddressPool addresses_;
  // KUBERNETES_SERVICE_HOST/PORT (and _PORT_HTTPS) of the API server the agent talks to:
  // there is no service proxy, so pods reach it at its real address, not a ClusterIP.
  std::vector<std::string> api_server_env_;
  std::string node_uid_;
  std::string node_ready_since_;
  std::unique_ptr<kube::SharedInformer> pods_;
  std::unique_ptr<kube::SharedInformer> services_;

  std::mutex mutex_;  // guards dirty_ and names_dirty_
  std::condition_variable_any wake_;
  std::set<std::string> dirty_;
  bool names_dirty_ = true;

  std::map<std::string, PodEntry> entries_;  // by pod key; only the Run thread touches it

  struct LogTarget {
    std::string uid;
    std::string pod_dir;
    std::set<std::string> containers;       // their logs are <pod dir>/<name>.log
    std::set<std::string> init_containers;  // <pod dir>/init-<name>.log
  };
  std::mutex logs_mutex_;  // guards log_targets_ (read by the log endpoint's threads)
  std::map<std::string, LogTarget> log_targets_;  // by pod key
  std::unique_ptr<LogServer> log_server_;
};

}  // namespace mlscale::nodeagent
