// Leader election on a coordination.k8s.io/v1 Lease, like client-go's: the holder
// renews the lease every retry_period; a standby takes over once it has seen the lease
// unchanged for lease_duration (by its own clock, from when its read returned); a
// leader that has not renewed within renew_deadline of sending its last successful
// renew stops leading: its controllers are stopped (on_started_leading's stop token,
// then joined) before renew_deadline + that stop time, which must stay under
// lease_duration, so two replicas never lead at once. The elector talks through a
// client of its own (its own rate limiter, no retries, every call bounded by what is
// left of the renew deadline), so a busy shared client cannot delay a renew. On a
// clean stop the leader releases the lease so a standby takes over at once.
// Each leadership interval is logged when it ends:
//   "leader election: <identity> led <ns>/<name> from <unix ms> to <unix ms>".
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>

#include "mlscale/kube/client.h"
#include "mlscale/kube/metrics.h"

namespace mlscale::kube {

struct LeaderElectionConfig {
  std::string lease_namespace;
  std::string lease_name;
  std::string identity;  // unique per process, e.g. "<hostname>_<pid>"
  std::chrono::milliseconds lease_duration{15'000};
  std::chrono::milliseconds renew_deadline{10'000};
  std::chrono::milliseconds retry_period{2'000};
  bool release_on_stop = true;
};

struct LeaderCallbacks {
  // Called on its own thread when this process becomes leader; `stop` is requested when
  // leadership is lost or the elector stops. Must return soon after.
  std::function<void(std::stop_token stop)> on_started_leading;
  // Called after on_started_leading returned, when leadership ended.
  std::function<void()> on_stopped_leading;
  // Called whenever the observed leader changes (also with our own identity).
  std::function<void(const std::string& identity)> on_new_leader;
};

class LeaderElector {
 public:
  // Builds the elector's own client from `client_config` (the manager's credentials and
  // server). `metrics` (optional, must outlive the elector) gets the elector's requests
  // and the gauge mlscale_kube_leader_election_master_status{name=<lease>}. Errors:
  // missing namespace/name/identity, durations that are not lease_duration >
  // renew_deadline > retry_period > 0, a client that cannot be built.
  static StatusOr<std::unique_ptr<LeaderElector>> Create(const ClientConfig& client_config,
                                                         LeaderElectionConfig config, LeaderCallbacks callbacks,
                                                         Metrics* metrics = nullptr);
  // Acquires, leads, and re-acquires after losing the lease, until `stop` is requested;
  // then releases the lease when leading. Blocks.
  void Run(std::stop_token stop);
  bool IsLeader() const { return leading_.load(); }
  std::string ObservedLeader() const;

 private:
  LeaderElector(std::unique_ptr<Client> client, LeaderElectionConfig config, LeaderCallbacks callbacks,
                Metrics* metrics);
  // One attempt to acquire or renew, bounded by `call`; true when we hold the lease afterwards.
  bool TryAcquireOrRenew(const CallOptions& call);
  void Release();
  // Leads from `renewed_at` (when the acquiring request was sent) until the lease is
  // lost or `stop` is requested.
  void Lead(std::stop_token stop, std::chrono::steady_clock::time_point renewed_at);
  void PublishLeading(bool leading);

  std::unique_ptr<Client> client_;
  Metrics* metrics_;
  LeaderElectionConfig config_;
  LeaderCallbacks callbacks_;
  std::atomic<bool> leading_{false};
  mutable std::mutex mutex_;
  std::string observed_holder_;
  std::string observed_renew_time_;
  std::chrono::steady_clock::time_point observed_at_;
};

}  // namespace mlscale::kube
