// Leader election on a coordination.k8s.io/v1 Lease, like client-go's: the holder
// renews the lease every retry_period; a standby takes over once the lease has not been
// renewed for lease_duration; a leader that cannot renew within renew_deadline stops
// leading. On a clean stop the leader releases the lease so a standby takes over at once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>

#include "mlscale/kube/client.h"

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
  // `client` must outlive the elector. Errors: missing namespace/name/identity, or
  // durations that are not lease_duration > renew_deadline > retry_period.
  static StatusOr<std::unique_ptr<LeaderElector>> Create(Client& client, LeaderElectionConfig config,
                                                         LeaderCallbacks callbacks);
  // Acquires, leads, and re-acquires after losing the lease, until `stop` is requested;
  // then releases the lease when leading. Blocks.
  void Run(std::stop_token stop);
  bool IsLeader() const { return leading_.load(); }
  std::string ObservedLeader() const;

 private:
  LeaderElector(Client& client, LeaderElectionConfig config, LeaderCallbacks callbacks);
  // One attempt to acquire or renew; true when we hold the lease afterwards.
  bool TryAcquireOrRenew();
  void Release();
  void Lead(std::stop_token stop);

  Client& client_;
  LeaderElectionConfig config_;
  LeaderCallbacks callbacks_;
  std::atomic<bool> leading_{false};
  mutable std::mutex mutex_;
  std::string observed_holder_;
  std::string observed_renew_time_;
  std::chrono::steady_clock::time_point observed_at_;
};

}  // namespace mlscale::kube
