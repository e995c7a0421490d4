// The flags of mlscale-operator, parsed with Boost.Program_options (pure: arguments in,
// typed options or an error naming the flag out), and the controllers it can host.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::operator_cmd {

struct OperatorFlags {
  std::string kubeconfig;  // "": $KUBECONFIG, in-cluster, ~/.kube/config
  std::string context;
  std::vector<std::string> namespaces;  // watched; empty: all
  std::vector<std::string> controllers;  // kinds to run; empty: every known kind
  bool leader_elect = false;
  std::string leader_election_namespace = "default";
  std::string leader_election_id = "mlscale-operator";  // the Lease's name
  // Lease timing, as controller-runtime's LeaderElection options (and its defaults):
  // lease_duration > renew_deadline > retry_period > 0.
  std::chrono::milliseconds leader_election_lease_duration{15'000};
  std::chrono::milliseconds leader_election_renew_deadline{10'000};
  std::chrono::milliseconds leader_election_retry_period{2'000};
  std::string metrics_bind_address = ":8080";       // /metrics
  std::string health_probe_bind_address = ":8081";  // /healthz, /readyz (ready = caches synced)
  double kube_api_qps = 50;
  int kube_api_burst = 100;
  int workers = 4;  // concurrent reconciles per controller
  std::string log_level = "info";
  std::string log_format = "text";
  double status_write_qps = 20;  // progress polls (and the writes they cause), all jobs together
  std::chrono::milliseconds progress_interval{1000};
  std::chrono::milliseconds restart_backoff{10'000};
  std::chrono::milliseconds max_restart_backoff{360'000};
  std::chrono::milliseconds start_timeout{120'000};
  std::string trainer_command = "mlscale-train";
  std::string gang_scheduler_name = "scheduler-plugins-scheduler";  // coscheduling's; "": off
  std::string volcano_scheduler_name = "volcano";                   // Volcano's; "": off
  std::chrono::milliseconds gang_discovery_interval{30'000};        // PodGroup CRDs looked up again
  // InferenceService: the model server and router inside the worker image.
  std::string serve_command = "mlscale-serve";
  std::string router_command = "mlscale-router";
  std::string router_image;  // "": each service's spec.image
  bool help = false;
  std::string usage;  // the --help text
};

// The kinds this binary hosts (one manager, one controller per kind).
std::vector<std::string> KnownControllers();

// Parses the arguments (without the program name). Errors name the flag and the
// accepted values; unknown flags are errors.
StatusOr<OperatorFlags> ParseOperatorFlags(const std::vector<std::string>& arguments);

}  // namespace mlscale::operator_cmd
