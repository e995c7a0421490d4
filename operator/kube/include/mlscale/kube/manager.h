// A controller manager: the process-wide pieces an operator needs, wired together.
// Owns the metrics registry, the client, the informers and the controllers; serves
// /metrics on one address and /healthz, /readyz on another (controller-runtime's
// defaults :8080 and :8081); optionally runs leader election (controllers run only
// while leading; a standby is ready too, so rolling updates proceed; leadership is the
// gauge mlscale_kube_leader_election_master_status); stops cleanly on SIGTERM/SIGINT
// (queues drain, lease released), also when setup fails after the handlers were installed.
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
  // "host:port" ("" host: every interface; port 0: a free one; "" address: not served).
  std::string metrics_address = ":8080";       // /metrics
  std::string health_probe_address = ":8081";  // /healthz, /readyz (ready = caches synced)
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
  // Returns an error when an endpoint cannot be served or leader election is
  // misconfigured; the signal dispositions are restored on every return.
  Status Run(std::stop_token stop = {}, bool handle_signals = true);
  // The endpoints' ports once Run has started serving (0 before).
  int metrics_port() const { return metrics_port_.load(); }
  int health_port() const { return health_port_.load(); }
  // Every informer has synced (a standby is ready as well).
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
  std::atomic<int> metrics_port_{0};
  std::atomic<int> health_port_{0};
};

}  // namespace mlscale::kube
