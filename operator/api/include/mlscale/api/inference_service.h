// InferenceService (mlscale.io/v1alpha1): a model served by mlscale-serve pods behind our
// request router, scaled by replicas or by the KPA-style autoscaler, with canary and
// rollout. Parsed by pure functions shared by the controller and `mlscale validate`; the
// CRD (crds/inferenceservices.mlscale.io.yaml) states the same rules for the API server and
// the corpus test (tests/operator/api/corpus, files named *isvc*) holds the two to one verdict.
//
//   apiVersion: mlscale.io/v1alpha1
//   kind: InferenceService
//   metadata: {name: digits}
//   spec:
//     model:                    # exactly one source:
//       trainingJob: digits     #   a finished TrainingJob's output (its spec.output volume), or
//       volume: models          #   a volume of spec.template.volumes, mounted read-only, with
//       path: digits            #   a path in it ("" = its root; relative, no "..")
//       layout: model           #   model (one model: versioned folder or artifact) | repository
//       name: digits            # the protocol's model name (default metadata.name; not for repository)
//       version: 3              # serve this version only (default: the newest; not for repository)
//     image: ...                # our worker image (default kDefaultWorkerImage)
//     resources: {limits: {cpu: 2, nvidia.com/gpu: 1}}   # per server pod (TrainingJob's rules)
//     template: {...}           # pod overlay of the server pods (TrainingJob's spec.template)
//     replicas: 2               # server pods when autoscaling is off (the scale subresource)
//     autoscaling:              # KPA-style (operator/controllers/inference/autoscaler.h)
//       metric: concurrency     # concurrency | rps
//       target: 10              # per replica (default 70 concurrency, 140 rps: Knative's)
//       minReplicas: 0          # 0: scale to zero
//       maxReplicas: 8          # 0: no bound
//       stableWindowSeconds: 60
//       panicWindowSeconds: 6
//       panicThresholdPercent: 200
//       scaleDownDelaySeconds: 0
//       scaleToZeroGracePeriodSeconds: 30
//       maxScaleUpRate: 1000
//       maxScaleDownRate: 2
//     canary: {model: {...as above...}, trafficPercent: 20}
//     rollout: {progressDeadlineSeconds: 600, drainSeconds: 10, oldRevisionGraceSeconds: 10}
//     router: {replicas: 1, queueLimit: 1000, queueTimeoutSeconds: 60}
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mlscale/api/training_job.h"
#include "mlscale/common/status.h"

namespace mlscale::api {

inline constexpr std::string_view kInferenceServiceKind = "InferenceService";
// Limits of the spec (the CRD states the same).
inline constexpr std::int64_t kMaxServerReplicas = 1000;
inline constexpr std::int64_t kMaxRouterReplicas = 100;
inline constexpr std::int64_t kMaxQueueLimit = 100'000;
inline constexpr std::int64_t kMaxWindowSeconds = 3600;
inline constexpr std::int64_t kMaxModelVersion = 1'000'000'000;
// The fields of spec, in the order of the schema.
inline constexpr std::string_view kInferenceSpecFields[] = {"model",  "image",  "resources", "template", "replicas",
                                                            "autoscaling", "canary", "rollout", "router"};

enum class ModelLayout { kModel, kRepository };
std::string_view ModelLayoutName(ModelLayout layout);  // "model", "repository"

// spec.model / spec.canary.model: where the served model comes from.
struct ModelSource {
  std::string training_job;  // a TrainingJob in the same namespace; exclusive with volume
  std::string volume;        // a volume of spec.template.volumes
  std::string path;          // relative path in the volume ("" = its root)
  ModelLayout layout = ModelLayout::kModel;
  std::string name;               // protocol model name; "" = metadata.name (not for repository)
  std::optional<std::int64_t> version;  // pinned version (not for repository)

  bool FromTrainingJob() const { return !training_job.empty(); }
  bool operator==(const ModelSource&) const = default;
};

struct AutoscalingSpec {
  std::string metric = "concurrency";  // "concurrency" | "rps"
  double target = 70;                  // per replica; default by metric
  std::int64_t min_replicas = 1;
  std::int64_t max_replicas = 0;       // 0: no bound
  std::int64_t stable_window_seconds = 60;
  std::int64_t panic_window_seconds = 6;
  std::int64_t panic_threshold_percent = 200;
  std::int64_t scale_down_delay_seconds = 0;
  std::int64_t scale_to_zero_grace_period_seconds = 30;
  double max_scale_up_rate = 1000;
  double max_scale_down_rate = 2;

  bool operator==(const AutoscalingSpec&) const = default;
};

struct CanarySpec {
  ModelSource model;
  std::int64_t traffic_percent = 0;  // 0..100 of requests to the canary revision
  bool operator==(const CanarySpec&) const = default;
};

struct RolloutSpec {
  // A new revision not ready this long after it was created: RolloutInProgress False,
  // reason ProgressDeadlineExceeded (traffic stays where it is).
  std::int64_t progress_deadline_seconds = 600;
  // After SIGTERM a server keeps serving (not ready) this long, so every router has seen its
  // endpoint go before it stops (mlscale-serve --drain-seconds).
  std::int64_t drain_seconds = 10;
  // A revision that no longer gets traffic is deleted this long after the traffic left it, so
  // every router has switched first.
  std::int64_t old_revision_grace_seconds = 10;
  bool operator==(const RolloutSpec&) const = default;
};

struct RouterSpec {
  std::int64_t replicas = 1;
  std::int64_t queue_limit = 1000;            // requests held while no replica is ready
  std::int64_t queue_timeout_seconds = 60;    // then 503
  bool operator==(const RouterSpec&) const = default;
};

struct InferenceServiceSpec {
  ModelSource model;
  std::string image = std::string(kDefaultWorkerImage);
  Resources resources;
  PodTemplateOverlay pod_template;
  std::int64_t replicas = 1;
  std::optional<AutoscalingSpec> autoscaling;
  std::optional<CanarySpec> canary;
  RolloutSpec rollout;
  RouterSpec router;

  bool operator==(const InferenceServiceSpec&) const = default;
};

struct InferenceService {
  std::string name;
  std::string namespace_;
  InferenceServiceSpec spec;
};

// Builds an InferenceService from a manifest already read into JSON, checking every field;
// errors are InvalidArgument naming the field ("spec.autoscaling.target: ...").
StatusOr<InferenceService> InferenceServiceFromJson(const nlohmann::json& manifest);
// Parses a YAML (or JSON) manifest (manifest.h's limits); the same checks.
StatusOr<InferenceService> ParseInferenceService(std::string_view yaml);
// Reads and parses a manifest file; errors are prefixed with the file's name.
StatusOr<InferenceService> LoadInferenceServiceFile(const std::string& path);

}  // namespace mlscale::api
