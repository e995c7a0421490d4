#include "pod_status.h"

#include "json_fields.h"
#include "mlscale/kube/time_format.h"

namespace mlscale::nodeagent {
namespace {

using kube::FormatTime;
using nlohmann::json;

json StateObject(const ContainerState& state) {
  switch (state.kind) {
    case ContainerState::Kind::kWaiting: {
      json waiting = {{"reason", state.reason}};
      if (!state.message.empty()) waiting["message"] = state.message;
      return {{"waiting", waiting}};
    }
    case ContainerState::Kind::kRunning:
      return {{"running", {{"startedAt", FormatTime(state.started_at)}}}};
    case ContainerState::Kind::kTerminated: {
      json terminated = {{"exitCode", state.exit_code},
                         {"reason", state.reason},
                         {"startedAt", FormatTime(state.started_at)},
                         {"finishedAt", FormatTime(state.finished_at)}};
      if (state.signal != 0) terminated["signal"] = state.signal;
      if (!state.message.empty()) terminated["message"] = state.message;
      if (!state.container_id.empty()) terminated["containerID"] = state.container_id;
      return {{"terminated", terminated}};
    }
  }
  return json::object();
}

json ContainerStatusObject(const ContainerObserved& container) {
  json status = {{"name", container.name},
                 {"image", container.image},
                 {"imageID", ""},
                 {"ready", container.ready},
                 {"started", container.started},
                 {"restartCount", container.restart_count},
                 {"state", StateObject(container.state)},
                 {"lastState", container.last_state ? StateObject(*container.last_state) : json::object()}};
  if (!container.state.container_id.empty()) status["containerID"] = container.state.container_id;
  return status;
}

bool Stopped(const ContainerObserved& container) {
  return container.state.kind == ContainerState::Kind::kTerminated ||
         (container.state.kind == ContainerState::Kind::kWaiting && container.last_state.has_value());
}

// The exit of the last run of a stopped container.
const ContainerState& LastRun(const ContainerObserved& container) {
  return container.state.kind == ContainerState::Kind::kTerminated ? container.state : *container.last_state;
}

json Condition(const std::string& type, bool value, const std::string& reason,
               const json& previous_conditions, WallTime now) {
  std::string status = value ? "True" : "False";
  std::string transition = FormatTime(now);
  for (const json& old : previous_conditions) {
    if (StringField(old, "type") == type && StringField(old, "status") == status) {
      if (std::string when = StringField(old, "lastTransitionTime"); !when.empty()) transition = when;
    }
  }
  json condition = {{"type", type}, {"status", status},
                    {"lastTransitionTime", transition}};
  if (!reason.empty() && !value) condition["reason"] = reason;
  return condition;
}

}  // namespace

std::string PodPhase(const PodObserved& observed, RestartPolicy policy) {
  for (const ContainerObserved& init : observed.init_containers) {
    if (policy == RestartPolicy::kNever && Stopped(init) && LastRun(init).exit_code != 0) return "Failed";
  }
  if (!observed.initialized) return observed.terminating ? "Failed" : "Pending";
  int running = 0, waiting = 0, stopped = 0, succeeded = 0;
  for (const ContainerObserved& container : observed.containers) {
    if (container.state.kind == ContainerState::Kind::kRunning) {
      ++running;
    } else if (Stopped(container)) {
      ++stopped;
      if (LastRun(container).exit_code == 0) ++succeeded;
    } else {
      ++waiting;
    }
  }
  if (waiting > 0) return observed.terminating && running == 0 ? "Failed" : "Pending";
  if (running > 0) return "Running";
  if (stopped == 0) return "Pending";
  bool all_succeeded = stopped == succeeded;
  if (observed.terminating) return all_succeeded ? "Succeeded" : "Failed";
  if (policy == RestartPolicy::kAlways) return "Running";
  if (all_succeeded) return "Succeeded";
  if (policy == RestartPolicy::kOnFailure) return "Running";
  return "Failed";
}

json PodStatusObject(const PodObserved& observed, RestartPolicy policy, const json& previous_status,
                     WallTime now) {
  std::string phase = PodPhase(observed, policy);
  bool terminal = phase == "Succeeded" || phase == "Failed";
  bool containers_ready = !observed.containers.empty() && !terminal;
  for (const ContainerObserved& container : observed.containers) containers_ready &= container.ready;
  std::string not_ready_reason = terminal ? "PodCompleted" : "ContainersNotReady";

  json previous_conditions = previous_status.is_object()
                                 ? ListField(previous_status, "conditions")
                                 : json::array();
  const char* ours[] = {"PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"};
  json conditions = json::array();
  for (const json& old : previous_conditions) {
    std::string type = StringField(old, "type");
    bool mine = false;
    for (const char* own : ours) mine |= type == own;
    if (!mine) conditions.push_back(old);
  }
  conditions.push_back(Condition("PodReadyToStartContainers", !observed.pod_ip.empty(), "",
                                 previous_conditions, now));
  conditions.push_back(Condition("Initialized", observed.initialized,
                                 terminal ? "PodCompleted" : "ContainersNotInitialized",
                                 previous_conditions, now));
  conditions.push_back(Condition("ContainersReady", containers_ready, not_ready_reason,
                                 previous_conditions, now));
  conditions.push_back(Condition("Ready", containers_ready, not_ready_reason, previous_conditions, now));

  json status = {{"phase", phase}, {"conditions", conditions}};
  if (!observed.pod_ip.empty()) {
    status["podIP"] = observed.pod_ip;
    status["podIPs"] = json::array({{{"ip", observed.pod_ip}}});
  }
  if (!observed.host_ip.empty()) {
    status["hostIP"] = observed.host_ip;
    status["hostIPs"] = json::array({{{"ip", observed.host_ip}}});
  }
  if (observed.start_time != WallTime{}) status["startTime"] = FormatTime(observed.start_time);
  json containers = json::array();
  for (const ContainerObserved& container : observed.containers) {
    containers.push_back(ContainerStatusObject(container));
  }
  status["containerStatuses"] = containers;
  if (!observed.init_containers.empty()) {
    json init = json::array();
    for (const ContainerObserved& container : observed.init_containers) {
      init.push_back(ContainerStatusObject(container));
    }
    status["initContainerStatuses"] = init;
  }
  return status;
}

}  // namespace mlscale::nodeagent
