// The children of an InferenceService, built by pure functions (spec in, object out):
//   per revision (a model source and server template, named by their hash) a Deployment of
//   mlscale-serve pods and a Service selecting them (labelled so the EndpointSlices the
//   router watches carry the revision);
//   the router's Deployment "<isvc>-router" and the Service "<isvc>" (the isvc's URL);
//   in the namespace, ServiceAccount and RoleBinding "mlscale-router" (to the ClusterRole of
//   crds/rbac/router-clusterrole.yaml).
// Labels and names are those of notes/CONTRACTS.md ("Router <-> InferenceService controller").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "mlscale/api/inference_service.h"

namespace mlscale::controllers::inference {

using Object = nlohmann::json;

inline constexpr const char* kServiceLabel = "mlscale.io/inference-service";
inline constexpr const char* kRevisionLabel = "mlscale.io/revision";
inline constexpr const char* kComponentLabel = "mlscale.io/component";
inline constexpr const char* kPredictor = "predictor";
inline constexpr const char* kRouter = "router";
inline constexpr const char* kRoleLabel = "mlscale.io/revision-role";  // default | canary
inline constexpr const char* kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr const char* kManagedByValue = "mlscale-operator";
// The hash of what the controller wrote (everything but replicas): a child whose annotation
// matches needs no write.
inline constexpr const char* kSpecHashAnnotation = "mlscale.io/spec-hash";
inline constexpr const char* kRouterAccount = "mlscale-router";  // ServiceAccount, RoleBinding, ClusterRole
inline constexpr int kServerPort = 8080;         // mlscale-serve, on the pod's address
inline constexpr int kRouterPort = 8080;         // mlscale-router --listen
inline constexpr int kRouterMetricsPort = 9090;  // mlscale-router --metrics-listen (/v1/stats)
inline constexpr int kServicePort = 80;          // the URL's port
inline constexpr const char* kModelMountPath = "/mnt/models";
inline constexpr const char* kModelVolume = "mlscale-model";

// What the cluster admin configures (operator flags).
struct ChildOptions {
  std::string serve_command = "mlscale-serve";    // in the worker image's PATH
  std::string router_command = "mlscale-router";
  std::string router_image;                       // "" = the isvc's spec.image
};

// A model source made concrete: what to mount and what to tell mlscale-serve.
struct ResolvedModel {
  std::string name;      // protocol model name (empty for a repository)
  Object volume;         // a core/v1 Volume (named kModelVolume), mounted read-only at kModelMountPath
  std::string path;      // relative to the mount ("" = its root)
  api::ModelLayout layout = api::ModelLayout::kModel;
  std::optional<std::int64_t> version;
  std::string description;  // for status and events: "TrainingJob digits (uid ...)", "volume models:v2"
  bool operator==(const ResolvedModel&) const = default;
};

// Why a model source cannot be served yet (reason CamelCase, message for humans).
struct Unresolved {
  std::string reason;
  std::string message;
};

// Resolves `source` of `service`. A TrainingJob source needs `training_job` (the TrainingJob
// object of that name, nullptr when absent): it must have succeeded and written its model to
// a volume of its own template (spec.output.volume), which the server pods then mount.
// Reasons: TrainingJobNotFound, TrainingJobNotFinished, TrainingJobFailed, ModelNotOnVolume.
struct Resolution {
  std::optional<ResolvedModel> model;
  Unresolved why;  // when !model
};
Resolution ResolveModel(const api::InferenceService& service, const api::ModelSource& source,
                        const Object* training_job);

// A revision: what its pods run, and its name "<isvc>-<8 hex of the hash>".
struct Revision {
  std::string name;
  std::string hash;
  std::string role;  // "default" or "canary"
  ResolvedModel model;
};
// The hash (8 hex characters) of the model and the server template (image, resources,
// template, drain, command): equal inputs give equal revisions, so a canary promoted to the
// default model keeps its pods, and any change makes a new revision.
std::string RevisionHash(const api::InferenceService& service, const ResolvedModel& model, const ChildOptions& options);
Revision MakeRevision(const api::InferenceService& service, const ResolvedModel& model, std::string role,
                      const ChildOptions& options);

// The service as the builders need it: parsed spec plus the object's identity.
struct ServiceRef {
  api::InferenceService service;  // name, namespace, spec
  std::string uid;
};

std::string RouterName(const ServiceRef& ref);  // "<isvc>-router"
// "http://<isvc>.<ns>.svc.cluster.local"
std::string Url(const ServiceRef& ref);
// The model server pods' label selector (the scale subresource's): every revision's.
std::string PredictorSelector(const ServiceRef& ref);

// The revision's Deployment: `replicas` mlscale-serve pods on their own address, port 8080,
// readiness on /v2/health/ready (every second, so a draining server leaves the endpoints at
// once), liveness on /v2/health/live, --drain-seconds from the rollout settings and a
// termination grace period that covers it; the model volume mounted read-only.
Object BuildRevisionDeployment(const ServiceRef& ref, const Revision& revision, std::int32_t replicas,
                               const ChildOptions& options);
// The revision's Service (named like the revision, port 8080, its labels on the
// EndpointSlices the endpointslice controller makes).
Object BuildRevisionService(const ServiceRef& ref, const Revision& revision);
// The router: spec.router.replicas pods of mlscale-router under ServiceAccount mlscale-router.
Object BuildRouterDeployment(const ServiceRef& ref, const ChildOptions& options);
// The Service "<isvc>" (port 80 -> the routers' 8080, metrics 9090).
Object BuildRouterService(const ServiceRef& ref);
Object BuildRouterServiceAccount(const std::string& namespace_name);
Object BuildRouterRoleBinding(const std::string& namespace_name);

// The hash kSpecHashAnnotation carries for `object` (its spec without replicas, labels,
// annotations other than the hash itself).
std::string SpecHash(const Object& object);

}  // namespace mlscale::controllers::inference
