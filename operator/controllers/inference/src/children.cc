#include "mlscale/controllers/inference/children.h"

#include "mlscale/common/hash.h"
#include "mlscale/kube/names.h"

namespace mlscale::controllers::inference {
namespace {

std::string StringAt(const Object& object, std::initializer_list<const char*> path) {
  const Object* at = &object;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return "";
    at = &(*at)[key];
  }
  return at->is_string() ? at->get<std::string>() : "";
}

Object OwnerReference(const ServiceRef& ref) {
  return {{"apiVersion", "mlscale.io/v1alpha1"}, {"kind", "InferenceService"}, {"name", ref.service.name},
          {"uid", ref.uid},                      {"controller", true},         {"blockOwnerDeletion", true}};
}

Object Metadata(const ServiceRef& ref, const std::string& name, Object labels) {
  return {{"name", name},
          {"namespace", ref.service.namespace_},
          {"labels", std::move(labels)},
          {"ownerReferences", Object::array({OwnerReference(ref)})}};
}

Object BaseLabels(const ServiceRef& ref, const char* component) {
  return {{kServiceLabel, ref.service.name}, {kComponentLabel, component}, {kManagedByLabel, kManagedByValue}};
}

Object RevisionLabels(const ServiceRef& ref, const Revision& revision) {
  Object labels = BaseLabels(ref, kPredictor);
  labels[kRevisionLabel] = revision.name;
  labels[kRoleLabel] = revision.role;
  return labels;
}

Object PodIpEnv() { return {{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}}; }

// Adds `hash` of everything but replicas as the annotation (the write is skipped when the
// live object carries the same).
Object Stamped(Object object) {
  object["metadata"]["annotations"][kSpecHashAnnotation] = SpecHash(object);
  return object;
}

// The overlay's pod-level fields (what TrainingJob's template allows) on `pod_spec`.
void ApplyOverlay(const api::PodTemplateOverlay& overlay, Object& pod_spec) {
  if (!overlay.node_selector.empty()) pod_spec["nodeSelector"] = overlay.node_selector;
  if (!overlay.affinity.is_null()) pod_spec["affinity"] = overlay.affinity;
  if (overlay.tolerations.is_array() && !overlay.tolerations.empty()) pod_spec["tolerations"] = overlay.tolerations;
  if (!overlay.priority_class_name.empty()) pod_spec["priorityClassName"] = overlay.priority_class_name;
  if (!overlay.scheduler_name.empty()) pod_spec["schedulerName"] = overlay.scheduler_name;
}

Object PodMetadata(const api::PodTemplateOverlay& overlay, const Object& labels) {
  Object metadata = {{"labels", labels}};
  for (const auto& [key, value] : overlay.labels) {
    if (!metadata["labels"].contains(key)) metadata["labels"][key] = value;  // ours win: selectors depend on them
  }
  if (!overlay.annotations.empty()) metadata["annotations"] = overlay.annotations;
  return metadata;
}

Object NonRoot() {
  return {{"runAsNonRoot", true}, {"allowPrivilegeEscalation", false}, {"capabilities", {{"drop", {"ALL"}}}}};
}

}  // namespace

Resolution ResolveModel(const api::InferenceService& service, const api::ModelSource& source,
                        const Object* training_job) {
  Resolution resolution;
  ResolvedModel model;
  model.name = source.layout == api::ModelLayout::kRepository ? "" : (source.name.empty() ? service.name : source.name);
  model.layout = source.layout;
  model.version = source.version;
  if (!source.FromTrainingJob()) {
    for (const auto& volume : service.spec.pod_template.volumes) {
      if (volume.value("name", "") != source.volume) continue;
      model.volume = volume;
      model.volume["name"] = kModelVolume;
    }
    if (model.volume.is_null()) {  // the parser refuses this; kept total for a hand-made spec
      resolution.why = {"VolumeNotFound", "volume " + source.volume + " is not in spec.template.volumes"};
      return resolution;
    }
    model.path = source.path;
    model.description = "volume " + source.volume + (source.path.empty() ? "" : ":" + source.path);
    resolution.model = std::move(model);
    return resolution;
  }
  const std::string& job_name = source.training_job;
  if (training_job == nullptr) {
    resolution.why = {"TrainingJobNotFound", "TrainingJob " + job_name + " does not exist in namespace " + service.namespace_};
    return resolution;
  }
  const std::string state = StringAt(*training_job, {"status", "state"});
  if (state == "Failed") {
    resolution.why = {"TrainingJobFailed", "TrainingJob " + job_name + " failed (" +
                                               StringAt(*training_job, {"status", "reason"}) + "): it has no model"};
    return resolution;
  }
  if (state != "Succeeded") {
    resolution.why = {"TrainingJobNotFinished", "waiting for TrainingJob " + job_name + " to succeed (it is " +
                                                    (state.empty() ? std::string("not started") : state) + ")"};
    return resolution;
  }
  // The model is where the job's spec.output put it: a volume of its template, else an
  // emptyDir that went away with its pods.
  auto parsed = api::TrainingJobFromJson(*training_job, nullptr);
  const std::string output_volume = parsed.ok() ? parsed->spec.output.location.volume : "";
  if (output_volume.empty()) {
    resolution.why = {"ModelNotOnVolume", "TrainingJob " + job_name +
                                              " wrote its model to its pods' own storage (spec.output has no volume): "
                                              "give it spec.output.volume (e.g. a PersistentVolumeClaim) and run it again"};
    return resolution;
  }
  for (const auto& volume : parsed->spec.pod_template.volumes) {
    if (volume.value("name", "") != output_volume) continue;
    model.volume = volume;
    model.volume["name"] = kModelVolume;
  }
  model.description = "TrainingJob " + job_name + " (uid " + StringAt(*training_job, {"metadata", "uid"}) + ")";
  resolution.model = std::move(model);
  return resolution;
}

std::string SpecHash(const Object& object) {
  Object hashed = {{"spec", object.value("spec", Object::object())},
                   {"labels", object["metadata"].value("labels", Object::object())}};
  hashed["spec"].erase("replicas");
  return HexDigits(Fnv1a64(hashed.dump()), 16);
}

std::string RevisionHash(const api::InferenceService& service, const ResolvedModel& model, const ChildOptions& options) {
  const auto& spec = service.spec;
  Object input = {{"model",
                   {{"name", model.name},
                    {"volume", model.volume},
                    {"path", model.path},
                    {"layout", api::ModelLayoutName(model.layout)},
                    {"version", model.version ? Object(*model.version) : Object()},
                    {"source", model.description}}},
                  {"image", spec.image},
                  {"limits", spec.resources.limits},
                  {"requests", spec.resources.requests},
                  {"labels", spec.pod_template.labels},
                  {"annotations", spec.pod_template.annotations},
                  {"nodeSelector", spec.pod_template.node_selector},
                  {"affinity", spec.pod_template.affinity},
                  {"tolerations", spec.pod_template.tolerations},
                  {"volumes", spec.pod_template.volumes},
                  {"volumeMounts", spec.pod_template.volume_mounts},
                  {"env", spec.pod_template.env},
                  {"serviceAccountName", spec.pod_template.service_account_name},
                  {"priorityClassName", spec.pod_template.priority_class_name},
                  {"schedulerName", spec.pod_template.scheduler_name},
                  {"drainSeconds", spec.rollout.drain_seconds},
                  {"command", options.serve_command}};
  return HexDigits(Fnv1a64(input.dump()), 8);
}

Revision MakeRevision(const api::InferenceService& service, const ResolvedModel& model, std::string role,
                      const ChildOptions& options) {
  Revision revision;
  revision.hash = RevisionHash(service, model, options);
  revision.name = kube::ChildName(service.name, revision.hash);
  revision.role = std::move(role);
  revision.model = model;
  return revision;
}

std::string RouterName(const ServiceRef& ref) { return kube::ChildName(ref.service.name, "router"); }

std::string Url(const ServiceRef& ref) {
  return "http://" + ref.service.name + "." + ref.service.namespace_ + ".svc.cluster.local";
}

std::string PredictorSelector(const ServiceRef& ref) {
  return std::string(kServiceLabel) + "=" + ref.service.name + "," + kComponentLabel + "=" + kPredictor;
}

Object BuildRevisionDeployment(const ServiceRef& ref, const Revision& revision, std::int32_t replicas,
                               const ChildOptions& options) {
  const auto& spec = ref.service.spec;
  const auto& overlay = spec.pod_template;
  const ResolvedModel& model = revision.model;
  const std::string model_dir =
      std::string(kModelMountPath) + (model.path.empty() ? "" : "/" + model.path);
  Object args = {"--address", "$(POD_IP)", "--port", std::to_string(kServerPort), "--drain-seconds",
                 std::to_string(spec.rollout.drain_seconds), "--drain-timeout-seconds", "30"};
  if (model.layout == api::ModelLayout::kRepository) {
    args.insert(args.end(), {"--model-repository", model_dir});
  } else {
    args.insert(args.end(), {"--model", model.name + "=" + model_dir});
    if (model.version) args.insert(args.end(), {"--pin", model.name + "=" + std::to_string(*model.version)});
  }
  Object env = Object::array({PodIpEnv()});
  for (const auto& variable : overlay.env) env.push_back(variable);
  Object mounts = overlay.volume_mounts.is_array() ? overlay.volume_mounts : Object::array();
  mounts.push_back({{"name", kModelVolume}, {"mountPath", kModelMountPath}, {"readOnly", true}});
  Object volumes = overlay.volumes.is_array() ? overlay.volumes : Object::array();
  volumes.push_back(model.volume);
  auto probe = [](const char* path, int period, int failures) {
    return Object{{"httpGet", {{"path", path}, {"port", kServerPort}}},
                  {"periodSeconds", period},
                  {"failureThreshold", failures},
                  {"timeoutSeconds", 1}};
  };
  Object container = {{"name", "server"},
                      {"image", spec.image},
                      {"command", {options.serve_command}},
                      {"args", std::move(args)},
                      {"env", std::move(env)},
                      {"ports", {{{"name", "http"}, {"containerPort", kServerPort}}}},
                      // Every second, one failure: a draining server (503) leaves the endpoints at once.
                      {"readinessProbe", probe("/v2/health/ready", 1, 1)},
                      {"livenessProbe", probe("/v2/health/live", 10, 3)},
                      {"volumeMounts", std::move(mounts)},
                      // A server that cannot start says why in its log: that becomes the reason.
                      {"terminationMessagePolicy", "FallbackToLogsOnError"},
                      {"securityContext", NonRoot()}};
  Object resources = Object::object();
  if (!spec.resources.limits.empty()) resources["limits"] = spec.resources.limits;
  if (!spec.resources.requests.empty()) resources["requests"] = spec.resources.requests;
  if (!resources.empty()) container["resources"] = std::move(resources);
  Object pod_spec = {{"containers", Object::array({std::move(container)})},
                     {"volumes", std::move(volumes)},
                     // The drain, then requests in flight (mlscale-serve --drain-timeout-seconds 30), then a margin.
                     {"terminationGracePeriodSeconds", spec.rollout.drain_seconds + 35},
                     {"automountServiceAccountToken", false}};
  if (!overlay.service_account_name.empty()) pod_spec["serviceAccountName"] = overlay.service_account_name;
  ApplyOverlay(overlay, pod_spec);
  const Object labels = RevisionLabels(ref, revision);
  Object selector = {{kServiceLabel, ref.service.name}, {kRevisionLabel, revision.name}};
  Object deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", Metadata(ref, revision.name, labels)},
      {"spec",
       {{"replicas", replicas},
        {"selector", {{"matchLabels", selector}}},
        // A new pod must be ready before an old one goes (replicas of one revision are alike).
        {"strategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxUnavailable", 0}, {"maxSurge", 1}}}}},
        {"template", {{"metadata", PodMetadata(overlay, labels)}, {"spec", std::move(pod_spec)}}}}}};
  return Stamped(std::move(deployment));
}

Object BuildRevisionService(const ServiceRef& ref, const Revision& revision) {
  Object service = {{"apiVersion", "v1"},
                    {"kind", "Service"},
                    {"metadata", Metadata(ref, revision.name, RevisionLabels(ref, revision))},
                    {"spec",
                     {{"selector", {{kServiceLabel, ref.service.name}, {kRevisionLabel, revision.name}}},
                      {"ports", {{{"name", "http"}, {"port", kServerPort}, {"targetPort", kServerPort}}}}}}};
  return Stamped(std::move(service));
}

Object BuildRouterDeployment(const ServiceRef& ref, const ChildOptions& options) {
  const auto& spec = ref.service.spec;
  const Object labels = BaseLabels(ref, kRouter);
  Object container = {
      {"name", "router"},
      {"image", options.router_image.empty() ? spec.image : options.router_image},
      {"command", {options.router_command}},
      {"args",
       {"--inference-service", ref.service.name, "--namespace", ref.service.namespace_, "--listen",
        "$(POD_IP):" + std::to_string(kRouterPort), "--metrics-listen", "$(POD_IP):" + std::to_string(kRouterMetricsPort),
        "--queue-limit", std::to_string(spec.router.queue_limit), "--queue-timeout-ms",
        std::to_string(spec.router.queue_timeout_seconds * 1000)}},
      {"env", Object::array({PodIpEnv()})},
      {"ports",
       {{{"name", "http"}, {"containerPort", kRouterPort}}, {{"name", "metrics"}, {"containerPort", kRouterMetricsPort}}}},
      {"readinessProbe", {{"httpGet", {{"path", "/readyz"}, {"port", kRouterMetricsPort}}}, {"periodSeconds", 1}}},
      {"livenessProbe",
       {{"httpGet", {{"path", "/healthz"}, {"port", kRouterMetricsPort}}}, {"periodSeconds", 10}, {"failureThreshold", 3}}},
      {"securityContext", NonRoot()}};
  Object pod_spec = {{"containers", Object::array({std::move(container)})},
                     {"serviceAccountName", kRouterAccount},
                     {"terminationGracePeriodSeconds", 30}};
  ApplyOverlay(spec.pod_template, pod_spec);  // the same placement as the servers
  Object deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", Metadata(ref, RouterName(ref), labels)},
      {"spec",
       {{"replicas", spec.router.replicas},
        {"selector", {{"matchLabels", {{kServiceLabel, ref.service.name}, {kComponentLabel, kRouter}}}}},
        {"strategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxUnavailable", 0}, {"maxSurge", 1}}}}},
        {"template", {{"metadata", {{"labels", labels}}}, {"spec", std::move(pod_spec)}}}}}};
  return Stamped(std::move(deployment));
}

Object BuildRouterService(const ServiceRef& ref) {
  Object service = {{"apiVersion", "v1"},
                    {"kind", "Service"},
                    {"metadata", Metadata(ref, ref.service.name, BaseLabels(ref, kRouter))},
                    {"spec",
                     {{"selector", {{kServiceLabel, ref.service.name}, {kComponentLabel, kRouter}}},
                      {"ports",
                       {{{"name", "http"}, {"port", kServicePort}, {"targetPort", kRouterPort}},
                        {{"name", "metrics"}, {"port", kRouterMetricsPort}, {"targetPort", kRouterMetricsPort}}}}}}};
  return Stamped(std::move(service));
}

Object BuildRouterServiceAccount(const std::string& namespace_name) {
  return {{"apiVersion", "v1"},
          {"kind", "ServiceAccount"},
          {"metadata",
           {{"name", kRouterAccount}, {"namespace", namespace_name}, {"labels", {{kManagedByLabel, kManagedByValue}}}}}};
}

Object BuildRouterRoleBinding(const std::string& namespace_name) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "RoleBinding"},
          {"metadata",
           {{"name", kRouterAccount}, {"namespace", namespace_name}, {"labels", {{kManagedByLabel, kManagedByValue}}}}},
          {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "ClusterRole"}, {"name", kRouterAccount}}},
          {"subjects", {{{"kind", "ServiceAccount"}, {"name", kRouterAccount}, {"namespace", namespace_name}}}}};
}

}  // namespace mlscale::controllers::inference
