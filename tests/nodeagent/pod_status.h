// What the agent observed of a pod's containers, and the pure translation of that into
// the Pod's status (phase, conditions, container statuses) the way the kubelet writes it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pod_plan.h"

namespace mlscale::nodeagent {

using WallTime = std::chrono::system_clock::time_point;

struct ContainerState {
  enum class Kind { kWaiting, kRunning, kTerminated };
  Kind kind = Kind::kWaiting;
  std::string reason = "ContainerCreating";  // waiting/terminated reason
  std::string message;                       // waiting message or termination message
  int exit_code = 0;                         // terminated
  int signal = 0;                            // terminated by this signal, or 0
  WallTime started_at{};                     // running/terminated
  WallTime finished_at{};                    // terminated
  std::string container_id;                  // running/terminated
};

struct ContainerObserved {
  std::string name;
  std::string image;
  ContainerState state;
  std::optional<ContainerState> last_state;  // the previous run, once restarted
  int restart_count = 0;
  bool ready = false;
  bool started = false;
};

struct PodObserved {
  std::vector<ContainerObserved> init_containers;
  std::vector<ContainerObserved> containers;
  bool initialized = false;       // every init container succeeded
  bool terminating = false;       // deletion in progress: nothing restarts any more
  std::string pod_ip;
  std::string host_ip;
  WallTime start_time{};
};

// The kubelet's phase rules: Pending until every container has started, Running while
// any runs or will be restarted, Succeeded/Failed once all stopped for good (a deleted
// pod whose containers stopped is terminal whatever its restart policy).
std::string PodPhase(const PodObserved& observed, RestartPolicy policy);

// The status to write: phase, podIP(s), hostIP(s), startTime, conditions
// (PodReadyToStartContainers, Initialized, ContainersReady, Ready; conditions of other
// types in `previous_status` such as PodScheduled are kept, and lastTransitionTime only
// changes when a condition's status does) and (init)containerStatuses.
nlohmann::json PodStatusObject(const PodObserved& observed, RestartPolicy policy,
                               const nlohmann::json& previous_status, WallTime now);

}  // namespace mlscale::nodeagent
