// TrainingJob (mlscale.io/v1alpha1): a data-parallel training run of `replicas` workers.
// The manifest is parsed into typed structs by pure functions, used by the local CLI
// (`mlscale run -f`) and by the Kubernetes controller alike.
//
//   apiVersion: mlscale.io/v1alpha1
//   kind: TrainingJob
//   metadata: {name: digits}
//   spec:
//     replicas: 4              # workers (default 1)
//     launcher: rendezvous     # or mpi
//     backend: cpu             # auto | cpu | gpu
//     trainer: {...}           # passed to the trainer as is (mlscale-train --config)
//     image: ...               # cluster only: image, resources, template
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"

namespace mlscale::api {

inline constexpr std::string_view kApiVersion = "mlscale.io/v1alpha1";
inline constexpr std::string_view kTrainingJobKind = "TrainingJob";
// The most workers one job may ask for.
inline constexpr std::int64_t kMaxReplicas = 4096;

// How the workers find each other: our own rendezvous (every worker runs
// mlscale-launch) or mpirun over a hostfile (as Kubeflow's MPI Operator does).
enum class LauncherKind { kRendezvous, kMpi };
// The compute backend of the trainer; auto picks the GPU when one is visible.
enum class Backend { kAuto, kCpu, kGpu };

std::string_view LauncherKindName(LauncherKind kind);  // "rendezvous", "mpi"
std::string_view BackendName(Backend backend);          // "auto", "cpu", "gpu"

struct TrainingJobSpec {
  std::int64_t replicas = 1;
  LauncherKind launcher = LauncherKind::kRendezvous;
  Backend backend = Backend::kAuto;
  // spec.trainer, exactly as written: the trainer's own parser validates it.
  nlohmann::json trainer = nlohmann::json::object();
  // Cluster-only fields; a local run ignores them. Empty/null when absent.
  std::string image;
  nlohmann::json resources;  // a Kubernetes ResourceRequirements object
  nlohmann::json pod_template;  // spec.template: a Kubernetes PodTemplateSpec

  // The names of the cluster-only fields that are set ("image", "resources", "template").
  std::vector<std::string> ClusterOnlyFields() const;
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
// (the API server adds fields there). `validate_trainer` may be empty.
StatusOr<TrainingJob> TrainingJobFromJson(const nlohmann::json& manifest,
                                          const TrainerValidator& validate_trainer);

// Parses a YAML (or JSON) manifest; the same checks as TrainingJobFromJson.
StatusOr<TrainingJob> ParseTrainingJob(std::string_view yaml, const TrainerValidator& validate_trainer);

}  // namespace mlscale::api
