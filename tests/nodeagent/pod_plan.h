// What the node agent runs for one pod, derived from the Pod object alone: a pure
// translation of the pod spec (containers, env, probes, restart policy) into process
// launch plans, unit-tested without an API server or processes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"

namespace mlscale::nodeagent {

// Image name -> entrypoint argv (the binary and any fixed leading arguments). An image
// without an entry can still run when the container gives a command.
using ImageMap = std::map<std::string, std::vector<std::string>>;

struct ProbePlan {
  enum class Kind { kExec, kHttpGet, kTcpSocket };
  Kind kind = Kind::kExec;
  std::vector<std::string> command;  // kExec: run inside the pod's sandbox
  std::string host;                  // kHttpGet/kTcpSocket; "" = the pod's address
  int port = 0;                      // named ports are resolved against containerPorts
  std::string path = "/";            // kHttpGet
  std::vector<std::pair<std::string, std::string>> http_headers;
  int initial_delay_seconds = 0;
  int period_seconds = 10;
  int timeout_seconds = 1;
  int success_threshold = 1;
  int failure_threshold = 3;
};

// A projected serviceAccountToken source: the agent asks the TokenRequest API for a token
// of the pod's service account, bound to the pod, writes it at `path` in the volume and
// replaces it before it expires (TokenRefreshTime).
struct TokenProjection {
  std::string path;                  // relative to the volume, e.g. "token"
  std::string audience;              // "" = the API server's own audiences
  int64_t expiration_seconds = 3600;  // requested lifetime (the API server's minimum is 600)
};

// A pod volume as the agent provides it: a folder of the pod's own (emptyDir), a host
// folder (hostPath), or a folder the agent fills with files (configMap, secret,
// downwardAPI fieldRefs, projected: service-account tokens are listed in `tokens` and
// issued by the agent, which adds them to `files`).
struct VolumePlan {
  enum class Kind { kEmptyDir, kHostPath, kFiles };
  std::string name;
  Kind kind = Kind::kEmptyDir;
  std::string host_path;                      // kHostPath
  bool create_host_path = false;              // kHostPath type DirectoryOrCreate
  std::map<std::string, std::string> files;   // kFiles: relative path -> content
  std::vector<TokenProjection> tokens;        // kFiles (projected): tokens to issue
};

struct MountPlan {
  std::string volume;      // a VolumePlan name
  std::string mount_path;  // absolute, inside the container's view
  std::string sub_path;    // "" = the whole volume
};

struct ContainerPlan {
  std::string name;
  std::string image;
  std::vector<std::string> argv;  // argv[0] is a path or a name looked up in PATH
  std::vector<std::string> env;   // "NAME=value", in the order Kubernetes defines them
  std::string working_dir;        // "" = the pod's own folder
  // Where the container expects to write its termination message (default
  // /dev/termination-log); the agent maps it to a file of its own.
  std::string termination_message_path = "/dev/termination-log";
  bool fallback_to_logs_on_error = false;  // terminationMessagePolicy FallbackToLogsOnError
  std::optional<ProbePlan> readiness;
  std::optional<ProbePlan> liveness;
  std::vector<MountPlan> mounts;  // volumeMounts, in order
};

enum class RestartPolicy { kAlways, kOnFailure, kNever };

struct PodPlan {
  std::string namespace_name;
  std::string name;
  std::string uid;
  std::string hostname;   // spec.hostname, else the pod name (at most 63 characters)
  std::string subdomain;  // spec.subdomain
  std::string service_account = "default";  // spec.serviceAccountName
  RestartPolicy restart_policy = RestartPolicy::kAlways;
  int64_t termination_grace_seconds = 30;
  std::vector<VolumePlan> volumes;
  std::vector<ContainerPlan> init_containers;  // run one after another, to completion
  std::vector<ContainerPlan> containers;
};

// What the plan needs besides the pod itself.
struct PlanInputs {
  ImageMap images;
  std::string pod_ip;     // the address the agent gave the pod
  std::string host_ip;    // the node's address
  std::string node_name;
  // The node's allocatable resources ("cpu" -> "4"): what resourceFieldRef reads for
  // a limit the container does not set, as on a kubelet.
  std::map<std::string, std::string> node_allocatable;
  // Extra variables every container gets (e.g. MLSCALE_TERMINATION_LOG is added per
  // container by the supervisor, not here).
  std::vector<std::string> base_env;
  // Reads a ConfigMap ("configmaps") or Secret ("secrets", values already base64-decoded)
  // for env valueFrom/envFrom. NotFound when absent. Unset: such references fail.
  std::function<StatusOr<std::map<std::string, std::string>>(
      const std::string& kind, const std::string& namespace_name, const std::string& name)>
      lookup;
};

// Builds the plan. Errors (as the kubelet would report them on the container):
//   NotFound          an image with no entry in the image map and no command
//                     (reported as ErrImagePull)
//   InvalidArgument   a malformed spec, a missing ConfigMap/Secret key, an unknown
//                     fieldRef, a probe on an unknown named port, a volume kind the
//                     agent cannot provide (persistentVolumeClaim, ...)
//                     (reported as CreateContainerConfigError)
StatusOr<PodPlan> BuildPodPlan(const nlohmann::json& pod, const PlanInputs& inputs);

// What can be known of a pod whose plan failed: identity, restart policy and the
// containers' names and images (no argv/env). Never fails; used to report the error.
PodPlan PlanSkeleton(const nlohmann::json& pod);

// Kubernetes' $(VAR) expansion of command, args and env values: $(NAME) becomes the
// value of NAME when defined in `env` ("NAME=value" entries, later ones win), $$ becomes $,
// and unknown references stay as written.
std::string ExpandVariables(const std::string& text, const std::vector<std::string>& env);

// The container's waiting reason for a BuildPodPlan error.
std::string WaitingReasonFor(const Status& plan_error);

// When a token issued at `issued` that expires at `expires` is replaced, by the kubelet's
// rule: once `percent` (kubelet: 80) of its lifetime has passed, and at the latest 24 h after
// it was issued.
std::chrono::system_clock::time_point TokenRefreshTime(std::chrono::system_clock::time_point issued,
                                                       std::chrono::system_clock::time_point expires,
                                                       int percent);

// Pod name -> hostname as the kubelet derives it (spec.hostname, else the name cut to 63
// characters without a trailing '-' or '.').
std::string PodHostname(const nlohmann::json& pod);

}  // namespace mlscale::nodeagent
