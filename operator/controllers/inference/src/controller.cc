#include "mlscale/controllers/inference/controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "mlscale/controllers/inference/served_version.h"
#include "mlscale/controllers/trainingjob/controller.h"
#include "mlscale/kube/errors.h"
#include "mlscale/kube/informer.h"
#include "mlscale/kube/objects.h"
#include "mlscale/kube/patch.h"
#include "mlscale/kube/reader.h"

namespace mlscale::controllers::inference {
namespace {

constexpr const char* kOwnerGroup = "mlscale.io";
constexpr const char* kOwnerKind = "InferenceService";
constexpr const char* kFieldManager = "mlscale-operator";

kube::Resource RoleBindings() {
  return {"rbac.authorization.k8s.io", "v1", "rolebindings", true, "RoleBinding"};
}

std::string StringAt(const Object& object, std::initializer_list<const char*> path) {
  const Object* at = &object;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return "";
    at = &(*at)[key];
  }
  return at->is_string() ? at->get<std::string>() : "";
}

std::int32_t IntAt(const Object& object, std::initializer_list<const char*> path) {
  const Object* at = &object;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return 0;
    at = &(*at)[key];
  }
  return at->is_number_integer() ? at->get<std::int32_t>() : 0;
}

bool PodReady(const Object& pod) {
  if (!pod.contains("status") || !pod["status"].contains("conditions")) return false;
  for (const auto& condition : pod["status"]["conditions"]) {
    if (condition.value("type", "") == "Ready") return condition.value("status", "") == "True";
  }
  return false;
}

// TrimPod, keeping each container's lastState (where a crash's message is).
void TrimServerPod(Object& pod) {
  std::vector<Object> last;
  if (pod.contains("status") && pod["status"].contains("containerStatuses") && pod["status"]["containerStatuses"].is_array()) {
    for (const auto& container : pod["status"]["containerStatuses"]) {
      last.push_back(container.is_object() ? container.value("lastState", Object()) : Object());
    }
  }
  kube::TrimPod(pod);
  if (!pod.contains("status") || !pod["status"].contains("containerStatuses")) return;
  Object& containers = pod["status"]["containerStatuses"];
  for (std::size_t i = 0; i < containers.size() && i < last.size(); ++i) {
    if (!last[i].is_null()) containers[i]["lastState"] = last[i];
  }
}

}  // namespace

struct InferenceServiceController::Scope {
  std::string namespace_name;
  kube::SharedInformer* services = nullptr;
  kube::SharedInformer* deployments = nullptr;
  kube::SharedInformer* kube_services = nullptr;
  kube::SharedInformer* pods = nullptr;
  kube::SharedInformer* training_jobs = nullptr;
};

kube::Resource InferenceServices() { return {"mlscale.io", "v1alpha1", "inferenceservices", true, "InferenceService"}; }

InferenceServiceController::InferenceServiceController(kube::Manager& manager, ControllerConfig config)
    : manager_(manager), config_(std::move(config)), events_(manager.client(), "mlscale-operator") {}

InferenceServiceController::~InferenceServiceController() = default;

StatusOr<std::unique_ptr<InferenceServiceController>> InferenceServiceController::Register(kube::Manager& manager,
                                                                                          ControllerConfig config) {
  if (config.workers < 1) return InvalidArgument("inferenceservice controller: workers must be >= 1");
  std::unique_ptr<InferenceServiceController> self(new InferenceServiceController(manager, std::move(config)));
  InferenceServiceController* raw = self.get();
  // As the sweep controller: an informer of a resource that is not served never syncs, and
  // the manager starts no controller before every cache has. Without the CRD this controller
  // stays off, so an operator hosting every kind still runs TrainingJobs (checked once:
  // restart the operator after installing the CRD). Another error leaves it on.
  StatusOr<bool> installed = kube::CustomResourceDefinitionInstalled(manager.client(), "inferenceservices.mlscale.io");
  if (installed.ok() && !*installed) {
    spdlog::warn("inferenceservice: the CRD inferenceservices.mlscale.io is not installed; the controller is off "
                 "until the operator restarts with it installed");
    return self;
  }
  kube::ControllerOptions options;
  options.name = "inferenceservice";
  options.workers = raw->config_.workers;
  kube::Controller& controller = manager.AddController(
      std::move(options), [raw](const std::string& key, std::stop_token stop) { return raw->Reconcile(key, stop); });
  raw->controller_ = &controller;
  kube::InformerFactory& informers = manager.informers();
  kube::WorkQueue& queue = controller.queue();

  std::vector<std::string> namespaces = raw->config_.namespaces;
  if (namespaces.empty()) namespaces.push_back("");
  for (const std::string& namespace_name : namespaces) {
    auto scope = std::make_unique<Scope>();
    scope->namespace_name = namespace_name;
    scope->services = &informers.Informer(InferenceServices(), namespace_name);
    scope->services->AddHandler(kube::WithPredicate(kube::EnqueueObject(queue), kube::ChangedBeyondStatus));
    kube::InformerOptions ours;
    ours.watch.label_selector = kServiceLabel;  // exists: only what belongs to a service
    scope->deployments = &informers.Informer(kube::resources::Deployments(), namespace_name, ours);
    scope->deployments->AddHandler(kube::EnqueueControllerOwner(queue, kOwnerGroup, kOwnerKind));
    scope->kube_services = &informers.Informer(kube::resources::Services(), namespace_name, ours);
    scope->kube_services->AddHandler(kube::EnqueueControllerOwner(queue, kOwnerGroup, kOwnerKind));
    kube::InformerOptions pods = ours;
    pods.watch.transform = TrimServerPod;
    scope->pods = &informers.Informer(kube::resources::Pods(), namespace_name, pods);
    // Pods belong to ReplicaSets: their service is their label.
    scope->pods->AddHandler(kube::EnqueueMapped(queue, [](const Object& pod) -> std::vector<std::string> {
      const std::string service = StringAt(pod, {"metadata", "labels", kServiceLabel});
      if (service.empty()) return {};
      return {kube::MakeKey(kube::NamespaceOf(pod), service)};
    }));
    scope->training_jobs = &informers.Informer(trainingjob::TrainingJobs(), namespace_name);
    const kube::SharedInformer* services = scope->services;
    // A TrainingJob that finishes (or changes) wakes the services that serve its model.
    scope->training_jobs->AddHandler(kube::EnqueueMapped(queue, [services](const Object& job) {
      std::vector<std::string> keys;
      kube::CacheQuery query;
      query.namespace_name = kube::NamespaceOf(job);
      for (const kube::ObjectPtr& service : kube::CacheReader(services->cache()).List(query)) {
        const Object spec = service->value("spec", Object::object());
        const std::string name = kube::NameOf(job);
        if (StringAt(spec, {"model", "trainingJob"}) == name || StringAt(spec, {"canary", "model", "trainingJob"}) == name) {
          keys.push_back(kube::KeyOf(*service));
        }
      }
      return keys;
    }));
    raw->scopes_.push_back(std::move(scope));
  }
  raw->poller_ = std::make_unique<ScalingPoller>(raw->config_.scaling, [&queue](const std::string& key) { queue.Add(key); });

  kube::Metrics& metrics = manager.metrics();
  metrics.Describe("mlscale_inferenceservice_reconcile_errors_total", "Reconciles of InferenceServices that failed, by step.");
  metrics.Describe("mlscale_inferenceservice_desired_replicas", "Model server replicas asked for, by service and revision.");
  metrics.Describe("mlscale_inferenceservice_scale_events_total", "Replica changes written, by direction (up, down, from_zero).");
  metrics.Describe("mlscale_inferenceservice_rollouts_total", "Revisions that took over all the traffic of their role.");
  return self;
}

const InferenceServiceController::Scope& InferenceServiceController::ScopeFor(const std::string& namespace_name) const {
  for (const auto& scope : scopes_) {
    if (scope->namespace_name == namespace_name || scope->namespace_name.empty()) return *scope;
  }
  return *scopes_.front();
}

Status InferenceServiceController::EnsureRouterAccount(const std::string& namespace_name) {
  {
    std::lock_guard lock(accounts_mutex_);
    if (std::find(accounts_made_.begin(), accounts_made_.end(), namespace_name) != accounts_made_.end()) return Status::Ok();
  }
  kube::Client& client = manager_.client();
  for (auto [resource, object] : {std::pair{kube::resources::ServiceAccounts(), BuildRouterServiceAccount(namespace_name)},
                                  std::pair{RoleBindings(), BuildRouterRoleBinding(namespace_name)}}) {
    StatusOr<Object> created = client.Create(resource, namespace_name, object);
    if (!created.ok() && !kube::IsAlreadyExists(created.status())) {
      return created.status().WithContext("creating " + resource.plural + " " + kRouterAccount);
    }
  }
  std::lock_guard lock(accounts_mutex_);
  accounts_made_.push_back(namespace_name);
  return Status::Ok();
}

Status InferenceServiceController::ApplyChild(const kube::Resource& resource, const kube::SharedInformer& informer,
                                              const Object& object) {
  kube::ObjectPtr cached = informer.cache().Get(kube::KeyOf(object));
  if (cached) {
    const bool same_spec = StringAt(*cached, {"metadata", "annotations", kSpecHashAnnotation}) ==
                           StringAt(object, {"metadata", "annotations", kSpecHashAnnotation});
    const bool same_replicas = !object["spec"].contains("replicas") ||
                               IntAt(*cached, {"spec", "replicas"}) == object["spec"]["replicas"].get<std::int32_t>();
    if (same_spec && same_replicas) return Status::Ok();
  }
  kube::ApplyOptions apply;
  apply.field_manager = kFieldManager;
  apply.force = true;
  StatusOr<Object> applied = kube::Apply(manager_.client(), resource, object, apply);
  if (!applied.ok()) return applied.status().WithContext("applying " + resource.plural + " " + kube::KeyOf(object));
  return Status::Ok();
}

Status InferenceServiceController::WriteStatus(const Object& original, Object status,
                                               const std::vector<kube::Condition>& conditions) {
  Object updated = original;
  Object previous = original.value("status", Object::object());
  Object merged = status;
  if (previous.contains("conditions")) merged["conditions"] = previous["conditions"];
  updated["status"] = std::move(merged);
  for (kube::Condition condition : conditions) {
    condition.observed_generation = kube::GenerationOf(updated);
    StatusOr<bool> changed = kube::SetCondition(updated, condition);
    if (!changed.ok()) return changed.status();
  }
  updated["status"]["observedGeneration"] = kube::GenerationOf(updated);
  if (updated["status"] == previous) return Status::Ok();
  StatusOr<Object> written = kube::UpdateStatus(manager_.client(), InferenceServices(), std::move(updated));
  return written.status();
}

StatusOr<kube::ReconcileResult> InferenceServiceController::Reconcile(const std::string& key, std::stop_token stop) {
  auto [namespace_name, name] = kube::SplitKey(key);
  const Scope& scope = ScopeFor(namespace_name);
  kube::ObjectPtr cached = scope.services->cache().Get(key);
  if (!cached || kube::IsBeingDeleted(*cached)) {
    poller_->Untrack(key);
    return kube::ReconcileResult{};  // the garbage collector deletes the children
  }
  const Object& object = *cached;
  kube::Metrics& metrics = manager_.metrics();
  auto failed = [&](const char* step, Status status) -> StatusOr<kube::ReconcileResult> {
    if (!kube::IsConflict(status)) metrics.Add("mlscale_inferenceservice_reconcile_errors_total", {{"step", step}});
    return status;
  };

  StatusOr<api::InferenceService> parsed = api::InferenceServiceFromJson(object);
  if (!parsed.ok()) {
    // The CRD refuses what the parser does; this is for an object stored before a stricter parser.
    poller_->Untrack(key);
    Status s = WriteStatus(object, object.value("status", Object::object()),
                           {{kReady, kube::ConditionStatus::kFalse, "InvalidSpec", parsed.status().message()}});
    events_.Warning(object, "InvalidSpec", parsed.status().message());
    if (!s.ok()) return failed("status", s);
    return kube::ReconcileResult{};
  }
  ServiceRef ref{std::move(*parsed), kube::UidOf(object)};
  ref.service.namespace_ = namespace_name;
  const api::InferenceServiceSpec& spec = ref.service.spec;
  if (Status s = EnsureRouterAccount(namespace_name); !s.ok()) return failed("router-account", s);

  // The model sources, made concrete.
  auto job_object = [&](const api::ModelSource& source) -> kube::ObjectPtr {
    if (!source.FromTrainingJob()) return nullptr;
    return scope.training_jobs->cache().Get(kube::MakeKey(namespace_name, source.training_job));
  };
  kube::ObjectPtr main_job = job_object(spec.model);
  Resolution main = ResolveModel(ref.service, spec.model, main_job.get());
  std::optional<Resolution> canary;
  kube::ObjectPtr canary_job;
  if (spec.canary) {
    canary_job = job_object(spec.canary->model);
    canary = ResolveModel(ref.service, spec.canary->model, canary_job.get());
  }

  PlanInput input;
  input.service = &ref;
  input.now = Clock::now();
  const Object previous_status = object.value("status", Object::object());
  input.traffic = ReadTraffic(previous_status);
  input.records = ReadRecords(previous_status);

  // What runs: the revisions' Deployments, their pods, the routers.
  kube::CacheQuery owned;
  owned.namespace_name = namespace_name;
  owned.owner_uid = ref.uid;
  owned.controlled_only = true;
  kube::CacheQuery labelled;
  labelled.namespace_name = namespace_name;
  labelled.selector = kube::LabelSelector::FromLabels({{kServiceLabel, ref.service.name}});
  const std::vector<kube::ObjectPtr> pods = kube::CacheReader(scope.pods->cache()).List(labelled);
  std::vector<std::string> router_addresses;
  for (const kube::ObjectPtr& pod : pods) {
    if (StringAt(*pod, {"metadata", "labels", kComponentLabel}) != kRouter || !PodReady(*pod)) continue;
    ++input.router_ready;
    if (std::string ip = StringAt(*pod, {"status", "podIP"}); !ip.empty()) router_addresses.push_back(ip);
  }
  for (const kube::ObjectPtr& deployment : kube::CacheReader(scope.deployments->cache()).List(owned)) {
    if (StringAt(*deployment, {"metadata", "labels", kComponentLabel}) != kPredictor) continue;
    RevisionObservation observed;
    observed.name = kube::NameOf(*deployment);
    observed.role = StringAt(*deployment, {"metadata", "labels", kRoleLabel});
    observed.spec_replicas = IntAt(*deployment, {"spec", "replicas"});
    observed.replicas = IntAt(*deployment, {"status", "replicas"});
    observed.ready_replicas = IntAt(*deployment, {"status", "readyReplicas"});
    for (const kube::ObjectPtr& pod : pods) {
      if (StringAt(*pod, {"metadata", "labels", kRevisionLabel}) != observed.name) continue;
      if (std::string failure = ServerPodFailure(*pod); !failure.empty()) observed.failure = failure;
    }
    input.revisions.push_back(std::move(observed));
  }
  // The model version each revision's ready pods serve (a few pods each: they load the same
  // folder; more than one answer shows a version change in progress).
  auto read_served_versions = [&](const std::string& revision, const std::string& model_name) {
    std::vector<std::string> versions;
    bool all_answered = true;
    int asked = 0;
    for (const kube::ObjectPtr& pod : pods) {
      if (asked == 3) break;
      if (StringAt(*pod, {"metadata", "labels", kRevisionLabel}) != revision ||
          StringAt(*pod, {"metadata", "labels", kComponentLabel}) != kPredictor || !PodReady(*pod)) {
        continue;
      }
      const std::string ip = StringAt(*pod, {"status", "podIP"});
      if (ip.empty()) continue;
      ++asked;
      StatusOr<std::string> version = FetchServedVersion(ip, kServerPort, model_name, config_.served_version_deadline);
      if (version.ok()) {
        versions.push_back(std::move(*version));
      } else {
        all_answered = false;
        spdlog::debug("inferenceservice {}: revision {}: served version: {}", key, revision, version.status().ToString());
      }
    }
    return std::pair{CombineServedVersions(std::move(versions)), all_answered};
  };
  std::optional<std::chrono::milliseconds> look_again;  // when to read the versions again
  auto again_after = [&look_again](std::chrono::milliseconds after) {
    look_again = look_again ? std::min(*look_again, after) : after;
  };
  auto observed_of = [&](const std::string& revision) -> const RevisionObservation* {
    for (const auto& r : input.revisions) {
      if (r.name == revision) return &r;
    }
    return nullptr;
  };

  // The targets and their replicas.
  if (!main.model) {
    input.unresolved = main.why;
  } else if (canary && !canary->model) {
    input.unresolved = Unresolved{canary->why.reason, "canary: " + canary->why.message};
  } else {
    const std::int64_t canary_percent = spec.canary ? spec.canary->traffic_percent : 0;
    TargetRevision default_target{MakeRevision(ref.service, *main.model, "default", config_.children),
                                  100 - canary_percent, 0};
    input.targets.push_back(default_target);
    if (canary) {
      Revision revision = MakeRevision(ref.service, *canary->model, "canary", config_.children);
      if (revision.name == default_target.revision.name) {
        input.targets.front().percent = 100;  // the same model and template: one revision
      } else {
        input.targets.push_back({std::move(revision), canary_percent, 0});
      }
    }
    auto [main_replicas, canary_replicas] = SplitReplicas(spec.replicas, input.targets.size() > 1 ? canary_percent : 0);
    for (TargetRevision& target : input.targets) {
      const RevisionObservation* observed = observed_of(target.revision.name);
      if (!spec.autoscaling) {
        target.replicas = target.revision.role == "canary" ? canary_replicas : main_replicas;
        continue;
      }
      std::optional<ScalingPoller::Decision> decision = poller_->Latest(key, target.revision.name);
      if (decision) {
        target.replicas = decision->replicas;
      } else if (observed != nullptr) {
        target.replicas = observed->spec_replicas;
      } else {
        // Knative's initial scale 1; a new default revision starts as large as the one it
        // replaces, so the traffic it takes over finds the same capacity.
        std::int32_t initial = std::max<std::int32_t>(1, static_cast<std::int32_t>(spec.autoscaling->min_replicas));
        if (target.revision.role == "default") {
          for (const auto& r : input.revisions) {
            if (r.role == "default") initial = std::max(initial, r.spec_replicas);
          }
        }
        if (spec.autoscaling->max_replicas > 0) initial = std::min<std::int32_t>(initial, spec.autoscaling->max_replicas);
        target.replicas = initial;
      }
    }
    if (spec.autoscaling) {
      ObservedMetric metric{spec.autoscaling->metric, 0};
      bool any = false;
      for (const TargetRevision& target : input.targets) {
        if (auto decision = poller_->Latest(key, target.revision.name)) {
          metric.value += decision->observed;
          any = true;
        }
      }
      if (any) input.metric = metric;
    }
  }

  for (const TargetRevision& target : input.targets) {
    for (RevisionObservation& observed : input.revisions) {
      if (observed.name != target.revision.name || observed.ready_replicas == 0) continue;
      auto [served, all_answered] = read_served_versions(observed.name, target.revision.model.name);
      observed.served_version = std::move(served);
      // A pod that did not answer yet is asked again soon; unpinned, a server loads the
      // newest version it finds, so the status looks again now and then.
      if (!all_answered) again_after(std::chrono::seconds(2));
      if (!target.revision.model.version) again_after(config_.served_version_interval);
    }
  }

  Plan plan = PlanService(input);
  if (look_again) plan.requeue_after = plan.requeue_after ? std::min(*plan.requeue_after, *look_again) : *look_again;
  if (stop.stop_requested()) return kube::ReconcileResult{};

  // Children: the router, then each target revision (retiring ones are left as they are).
  if (Status s = ApplyChild(kube::resources::Deployments(), *scope.deployments, BuildRouterDeployment(ref, config_.children));
      !s.ok()) {
    return failed("router", s);
  }
  if (Status s = ApplyChild(kube::resources::Services(), *scope.kube_services, BuildRouterService(ref)); !s.ok()) {
    return failed("router", s);
  }
  for (const TargetRevision& target : input.targets) {
    const std::int32_t replicas = plan.replicas.at(target.revision.name);
    const RevisionObservation* observed = observed_of(target.revision.name);
    Object deployment = BuildRevisionDeployment(ref, target.revision, replicas, config_.children);
    if (Status s = ApplyChild(kube::resources::Deployments(), *scope.deployments, deployment); !s.ok()) {
      return failed("revision", s);
    }
    if (Status s = ApplyChild(kube::resources::Services(), *scope.kube_services, BuildRevisionService(ref, target.revision));
        !s.ok()) {
      return failed("revision", s);
    }
    metrics.Set("mlscale_inferenceservice_desired_replicas", {{"service", key}, {"revision", target.revision.name}},
                replicas);
    if (observed != nullptr && observed->spec_replicas != replicas) {
      const char* direction = replicas > observed->spec_replicas ? (observed->spec_replicas == 0 ? "from_zero" : "up") : "down";
      metrics.Add("mlscale_inferenceservice_scale_events_total", {{"direction", direction}});
      events_.Normal(object, "Scaled",
                     "revision " + target.revision.name + ": " + std::to_string(observed->spec_replicas) + " -> " +
                         std::to_string(replicas) + " replicas");
    }
  }
  kube::DeleteOptions background;
  background.propagation = kube::PropagationPolicy::kBackground;
  for (const std::string& revision : plan.delete_revisions) {
    for (const kube::Resource& resource : {kube::resources::Deployments(), kube::resources::Services()}) {
      Status deleted = manager_.client().Delete(resource, namespace_name, revision, background);
      if (!deleted.ok() && !kube::IsNotFound(deleted)) return failed("delete", deleted.WithContext("deleting " + revision));
    }
    metrics.Set("mlscale_inferenceservice_desired_replicas", {{"service", key}, {"revision", revision}}, 0);
    events_.Normal(object, "RevisionDeleted", "revision " + revision + " drained and deleted");
  }

  const std::vector<TrafficEntry> before = input.traffic;
  if (Status s = WriteStatus(object, StatusJson(input, plan), plan.conditions); !s.ok()) return failed("status", s);
  for (const Plan::Event& event : plan.events) events_.Record(object, event.type, event.reason, event.message);
  if (plan.traffic != before) {
    std::string split;
    for (const auto& entry : plan.traffic) split += (split.empty() ? "" : ", ") + entry.revision + " " + std::to_string(entry.percent) + "%";
    events_.Normal(object, "TrafficChanged", "traffic: " + (split.empty() ? std::string("none") : split));
    for (const TargetRevision& target : input.targets) {
      bool had_all = false, has_all = false;
      for (const auto& e : before) had_all = had_all || (e.revision == target.revision.name && e.percent == target.percent);
      for (const auto& e : plan.traffic) has_all = has_all || (e.revision == target.revision.name && e.percent == target.percent);
      if (has_all && !had_all && target.percent > 0) metrics.Add("mlscale_inferenceservice_rollouts_total", {});
    }
  }

  if (spec.autoscaling && !input.targets.empty()) {
    std::vector<ScalingPoller::RevisionInput> revisions;
    for (const TargetRevision& target : input.targets) {
      const RevisionObservation* observed = observed_of(target.revision.name);
      revisions.push_back({target.revision.name, observed ? observed->ready_replicas : 0, plan.replicas.at(target.revision.name)});
    }
    poller_->Track(key, std::move(router_addresses), *spec.autoscaling, std::move(revisions));
  } else {
    poller_->Untrack(key);
  }
  return kube::ReconcileResult{plan.requeue_after};
}

}  // namespace mlscale::controllers::inference
