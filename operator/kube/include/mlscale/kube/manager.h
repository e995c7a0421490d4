// A controller manager: the process-wide pieces an operator needs, wired together.
// Owns the metrics registry, the client, the informers and the controllers; serves
// /metrics, /healthz and /readyz; optionally runs leader election (controllers run only
// while leading); stops cleanly on SIGTERM/SIGINT (queues drain, lease released).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "mlscale/kube/client.h"
#include "mlscale/kube/controller.h"
#include "mlscale/kube/informer.h"
#include "mlscale/kube/leader_election.h"
#include "mlscale/kube/metrics.h"

namespace mlscale::kube {

struct ManagerOptions {
  ClientConfig client;
  // Address of the /metrics, /healthz, /readyz endpoint; port 0 picks a free one, ""
  // serves nothing.
  std::string health_address = "127.0.0.1:8080";
  std::optional<LeaderElectionConfig> leader_election;  // none: always run
};

class Manager {
 public:
  static StatusOr<std::unique_ptr<Manager>> Create(ManagerOptions options);
  ~Manager();

  Client& client() { return *client_; }
  Metrics& metrics() { return metrics_; }
  InformerFactory& informers() { return *informers_; }
  // Adds a controller; it starts when the manager leads and the informers synced.
  Controller& AddController(ControllerOptions options, ReconcileFunction reconcile);

  // Runs until `stop` is requested or SIGTERM/SIGINT arrives (when handle_signals).
  // Returns an error when the health endpoint cannot be served.
  Status Run(std::stop_token stop = {}, bool handle_signals = true);
  // The health endpoint's port once Run has started serving (0 before).
  int health_port() const { return health_port_.load(); }
  bool Ready() const;
  bool Leading() const;

 private:
  explicit Manager(ManagerOptions options);
  void RunControllers(std::stop_token stop);

  ManagerOptions options_;
  Metrics metrics_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<InformerFactory> informers_;
  std::vector<std::unique_ptr<Controller>> controllers_;
  std::unique_ptr<LeaderElector> elector_;
  std::atomic<int> health_port_{0};
};

}  // namespace mlscale::kube
