// TrainingJob (mlscale.io/v1alpha1): a data-parallel training run of `replicas` workers.
// The manifest is parsed into typed structs by pure functions, used by the local CLI
// (`mlscale run -f`, `mlscale validate -f`) and by the Kubernetes controller alike. The
// CRD (crds/trainingjobs.mlscale.io.yaml) states the same rules for the API server; a
// corpus test (tests/operator/api/corpus) holds the two to one verdict per manifest.
//
//   apiVersion: mlscale.io/v1alpha1
//   kind: TrainingJob
//   metadata: {name: digits}
//   spec:
//     replicas: 4              # workers (default 1)
//     launcher: rendezvous     # or mpi
//     backend: cpu             # auto | cpu | gpu
//     trainer: {...}           # our trainer's configuration (mlscale-train --config)
//     # Cluster only (a local run ignores these and says so):
//     image: ...               # our worker image (default kDefaultWorkerImage), or
//     container: {image, command, args, workingDir}   # a user image (then no trainer)
//     resources: {limits: {cpu: 2, nvidia.com/gpu: 1}, requests: {...}}
//     template: {labels, annotations, nodeSelector, affinity, tolerations, volumes,
//                volumeMounts, env, serviceAccountName, priorityClassName, schedulerName}
//     runPolicy: {backoffLimit, activeDeadlineSeconds, ttlSecondsAfterFinished, suspend,
//                 cleanPodPolicy: None | Running | All}
//     failurePolicy: {rules: [{exitCodes: [3], action: Retry | Fail}]}
//     gang: {timeoutSeconds, queueName}
//     checkpoint: {volume, path, intervalSteps}
//     output: {volume, path}
//
// Null is taken as absent everywhere, as the API server does (it drops nulls of
// non-nullable fields before validating); so `image: null` means the default image.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"

namespace mlscale::api {

inline constexpr std::string_view kApiVersion = "mlscale.io/v1alpha1";
inline constexpr std::string_view kTrainingJobKind = "TrainingJob";
// Limits of the spec (the CRD states the same; tests/operator/api holds them to it).
inline constexpr std::int64_t kMaxReplicas = 4096;         // workers of one job
inline constexpr std::size_t kMaxImageBytes = 1024;        // an image reference
inline constexpr std::size_t kMaxArguments = 256;          // items of container.command / args
inline constexpr std::size_t kMaxArgumentBytes = 4096;     // one command or argument
inline constexpr std::size_t kMaxPathBytes = 4096;         // a path in the container
inline constexpr std::size_t kMaxResourceNames = 32;       // names in resources.limits / requests
inline constexpr std::size_t kMaxListItems = 64;           // tolerations, volumes, volumeMounts
inline constexpr std::size_t kMaxEnvItems = 256;           // template.env
inline constexpr std::size_t kMaxFailureRules = 16;        // failurePolicy.rules
inline constexpr std::int64_t kMaxBackoffLimit = 1000;     // runPolicy.backoffLimit
inline constexpr std::int64_t kMaxSeconds = 31'536'000;    // activeDeadline / TTL: a year
inline constexpr std::int64_t kMaxGangTimeoutSeconds = 86'400;
inline constexpr std::int64_t kMaxIntervalSteps = std::int64_t(1) << 40;
// The fields of spec, in the order of the schema.
inline constexpr std::string_view kSpecFields[] = {
    "replicas", "launcher", "backend", "trainer", "image", "container", "resources", "template",
    "runPolicy", "failurePolicy", "gang", "checkpoint", "output"};
// The extended resource of NVIDIA GPUs (whole numbers only).
inline constexpr std::string_view kGpuResource = "nvidia.com/gpu";
// The image workers run when neither spec.image nor spec.container is given.
inline constexpr std::string_view kDefaultWorkerImage = "ghcr.io/mlscale/worker:v1alpha1";
// The trainer's default global batch size (worker/include/mlscale/worker/config.h; a unit
// test checks they agree). Needed here for the batch-size-vs-workers check.
inline constexpr std::int64_t kDefaultTrainerBatchSize = 64;
// Environment variables the controller sets in every worker (the torchrun set and our
// own); spec.template.env may not name them.
inline constexpr std::string_view kReservedEnvNames[] = {
    "WORLD_SIZE",      "RANK",          "LOCAL_RANK",         "LOCAL_WORLD_SIZE",        "GROUP_RANK",
    "MASTER_ADDR",     "MASTER_PORT",   "PET_NNODES",         "PET_NPROC_PER_NODE",      "PET_NODE_RANK",
    "PET_MASTER_ADDR", "PET_MASTER_PORT", "MLSCALE_RUN_ID",   "MLSCALE_ADVERTISE_ADDRESS", "MLSCALE_RUN_TOKEN"};
// The label Kueue reads the queue from (spec.gang.queueName is copied to it).
inline constexpr std::string_view kKueueQueueLabel = "kueue.x-k8s.io/queue-name";
// Where the checkpoint and output volumes are mounted when no path is given.
inline constexpr std::string_view kDefaultCheckpointPath = "/var/lib/mlscale/checkpoints";
inline constexpr std::string_view kDefaultOutputPath = "/var/lib/mlscale/model";

// How the workers find each other: our own rendezvous (every worker runs
// mlscale-launch) or mpirun over a hostfile (as Kubeflow's MPI Operator does).
enum class LauncherKind { kRendezvous, kMpi };
// The compute backend of the trainer; auto picks the GPU when one is visible.
enum class Backend { kAuto, kCpu, kGpu };
// Which pods are deleted when the job has finished (Kubeflow's cleanPodPolicy):
// none, those still running (the default: finished pods keep their logs), or all.
enum class CleanPodPolicy { kNone, kRunning, kAll };
// What a worker's failure does to the job: restart the group (counted against
// runPolicy.backoffLimit) or fail the job at once.
enum class FailureAction { kRetry, kFail };

std::string_view LauncherKindName(LauncherKind kind);        // "rendezvous", "mpi"
std::string_view BackendName(Backend backend);                // "auto", "cpu", "gpu"
std::string_view CleanPodPolicyName(CleanPodPolicy policy);   // "None", "Running", "All"
std::string_view FailureActionName(FailureAction action);     // "Retry", "Fail"

// spec.container: a user image instead of our worker image. The pod's command is
// `command` (default: the image's entrypoint) with `args`; the torchrun environment
// (WORLD_SIZE, RANK, MASTER_ADDR, ...) is set as for our own workers.
struct UserContainer {
  std::string image;                  // required
  std::vector<std::string> command;   // empty: the image's ENTRYPOINT
  std::vector<std::string> args;      // empty: the image's CMD
  std::string working_dir;            // empty: the image's

  bool operator==(const UserContainer&) const = default;
};

// spec.resources: a Kubernetes ResourceRequirements. Values are quantities as written
// ("2", "500m", "4Gi"); integers in the manifest are kept as their decimal text.
struct Resources {
  std::map<std::string, std::string> limits;
  std::map<std::string, std::string> requests;
  // The whole-number GPUs asked per worker: limits["nvidia.com/gpu"], else
  // requests["nvidia.com/gpu"], else 0.
  std::int64_t Gpus() const;

  bool operator==(const Resources&) const = default;
};

// spec.template: what is added to every worker pod. The Kubernetes-typed lists are kept
// as validated JSON (their shape is checked: each item an object with its required
// fields) and copied into the pod as they are.
struct PodTemplateOverlay {
  std::map<std::string, std::string> labels;       // added to the pod's labels
  std::map<std::string, std::string> annotations;  // added to the pod's annotations
  std::map<std::string, std::string> node_selector;
  nlohmann::json affinity;                          // a core/v1 Affinity; null when absent
  nlohmann::json tolerations = nlohmann::json::array();    // core/v1 Toleration items
  nlohmann::json volumes = nlohmann::json::array();        // core/v1 Volume items (name required)
  nlohmann::json volume_mounts = nlohmann::json::array();  // core/v1 VolumeMount items, worker container
  nlohmann::json env = nlohmann::json::array();            // core/v1 EnvVar items, worker container
  std::string service_account_name;  // empty: the namespace's default
  std::string priority_class_name;
  std::string scheduler_name;        // empty: the default scheduler (or the gang scheduler's)

  bool Empty() const;

  bool operator==(const PodTemplateOverlay&) const = default;
};

// spec.runPolicy, as in Kubeflow's RunPolicy.
struct RunPolicy {
  // Group restarts after retryable failures before the job fails (BackoffLimitExceeded).
  // Evictions, preemptions and node loss do not count.
  std::int64_t backoff_limit = 3;
  std::optional<std::int64_t> active_deadline_seconds;     // from startTime; DeadlineExceeded
  std::optional<std::int64_t> ttl_seconds_after_finished;  // then the job is deleted
  bool suspend = false;  // true: no pods (deleted if running); status kept; resume from checkpoint
  CleanPodPolicy clean_pod_policy = CleanPodPolicy::kRunning;

  bool operator==(const RunPolicy&) const = default;
};

// One rule of spec.failurePolicy: these exit codes lead to `action`.
struct ExitCodeRule {
  std::vector<int> exit_codes;  // each in [1, 255], no duplicates
  FailureAction action = FailureAction::kRetry;

  bool operator==(const ExitCodeRule&) const = default;
};

// spec.failurePolicy: the user's rules are tried first (first match wins), then the
// defaults, which follow Kubeflow's ExitCode restart policy as a PyTorch user expects:
//   128-255 (killed by a signal: 137 SIGKILL, the OOM killer's; 143 SIGTERM, preemption) -> Retry
//   1-127 (1 a Python exception or our trainer's bad input, 2 a usage error,
//          126 not executable, 127 command not found) -> Fail
// Configuration errors the controller sees itself (an image that cannot be pulled, a
// missing Secret or ConfigMap) are permanent whatever the rules say.
struct FailurePolicy {
  std::vector<ExitCodeRule> rules;
  // The action for a worker that exited with `exit_code` (non-zero).
  FailureAction Classify(int exit_code) const;

  bool operator==(const FailurePolicy&) const = default;
};

// spec.gang: all workers start together or none holds resources.
struct GangPolicy {
  // If not every worker is placed on a node this long after the group's last pod was
  // created, every pod is released and the group retried with backoff.
  std::int64_t timeout_seconds = 300;
  std::string queue_name;  // Kueue LocalQueue (label kKueueQueueLabel); empty: none

  bool operator==(const GangPolicy&) const = default;
};

// A volume of spec.template.volumes mounted at `path` in every worker.
struct VolumeLocation {
  std::string volume;  // a name in template.volumes; empty: the pod's own emptyDir
  std::string path;    // absolute mount path

  bool operator==(const VolumeLocation&) const = default;
};

// spec.checkpoint: where checkpoints go; a group restarted after a failure resumes
// from the latest one (which needs a volume that outlives the pods).
struct CheckpointPolicy {
  VolumeLocation location{"", std::string(kDefaultCheckpointPath)};
  // Steps between checkpoints; absent: the trainer's own (trainer.checkpoint.everySteps).
  std::optional<std::int64_t> interval_steps;

  bool operator==(const CheckpointPolicy&) const = default;
};

// spec.output: where the trained model goes.
struct OutputLocation {
  VolumeLocation location{"", std::string(kDefaultOutputPath)};

  bool operator==(const OutputLocation&) const = default;
};

struct TrainingJobSpec {
  std::int64_t replicas = 1;
  LauncherKind launcher = LauncherKind::kRendezvous;
  Backend backend = Backend::kAuto;
  // spec.trainer as the API server stores it (nulls removed, 4.0 read as 4): the
  // trainer's own parser validates it; the controller hands it to mlscale-train.
  nlohmann::json trainer = nlohmann::json::object();
  // Cluster-only fields; a local run ignores them.
  std::string image = std::string(kDefaultWorkerImage);  // our worker image
  std::optional<UserContainer> container;  // a user image; exclusive with image and trainer
  Resources resources;
  PodTemplateOverlay pod_template;
  RunPolicy run_policy;
  FailurePolicy failure_policy;
  GangPolicy gang;
  CheckpointPolicy checkpoint;
  OutputLocation output;

  // The fields of spec present (and not null) in the manifest, in schema order.
  std::vector<std::string> given;

  bool Given(std::string_view field) const;
  // The names of the cluster-only fields that were given ("image", "container",
  // "resources", "template", "runPolicy", "failurePolicy", "gang", "checkpoint", "output").
  std::vector<std::string> ClusterOnlyFields() const;
  // The image of the worker container: container->image, else `image`.
  const std::string& WorkerImage() const;

  bool operator==(const TrainingJobSpec&) const = default;
};

struct TrainingJob {
  std::string name;        // metadata.name: a DNS-1123 label
  std::string namespace_;  // metadata.namespace; empty when not given
  TrainingJobSpec spec;
};

// Checks spec.trainer. An error's message names the field as "trainer.<path>: ..."
// (it becomes "spec.trainer.<path>: ..."); other messages are prefixed with
// "spec.trainer: ". The trainer library provides one (worker's ParseTrainerConfig);
// the API library does not depend on it.
using TrainerValidator = std::function<Status(const nlohmann::json& trainer)>;

// Builds a TrainingJob from a manifest already read into JSON, checking every field:
// unknown fields in spec are errors (typos), metadata and status are read leniently
// (the API server adds fields there). `validate_trainer` may be empty. Checks that
// need only the manifest are all made here (e.g. the global batch size against the
// workers), so a bad job is refused before any pod starts.
StatusOr<TrainingJob> TrainingJobFromJson(const nlohmann::json& manifest,
                                          const TrainerValidator& validate_trainer);

// Parses a YAML (or JSON) manifest (at most kMaxManifestBytes, manifest.h); the same
// checks as TrainingJobFromJson.
StatusOr<TrainingJob> ParseTrainingJob(std::string_view yaml, const TrainerValidator& validate_trainer);

// Reads (ReadManifestFile, manifest.h) and parses a manifest file; errors are prefixed
// with the file's name.
StatusOr<TrainingJob> LoadTrainingJobFile(const std::string& path, const TrainerValidator& validate_trainer);

}  // namespace mlscale::api
