#include "mlscale/controllers/trainingjob/controller.h"

#include <spdlog/spdlog.h>

#include <map>

#include "mlscale/controllers/trainingjob/progress.h"
#include "mlscale/kube/base64.h"
#include "mlscale/kube/errors.h"
#include "mlscale/kube/informer.h"
#include "mlscale/kube/slow_start.h"
#include "mlscale/kube/objects.h"
#include "mlscale/kube/reader.h"
#include "mlscale/worker/config.h"

namespace mlscale::controllers::trainingjob {
namespace {

using Clock = std::chrono::system_clock;
constexpr const char* kOwnerGroup = "mlscale.io";
constexpr const char* kOwnerKind = "TrainingJob";

// Children are watched through one selector, so the caches hold only what we made.
std::string ChildSelector() { return std::string(kManagedByLabel) + "=" + kManagedByValue; }

// The string at `path` in a cached object; "" when any step is missing or not what it should be.
std::string StringAt(const Object& object, std::initializer_list<const char*> path) {
  const Object* at = &object;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return "";
    at = &(*at)[key];
  }
  return at->is_string() ? at->get<std::string>() : "";
}

// Nodes are only looked up by name (does a pod's node still exist?): keep their identity.
void TrimNode(Object& node) {
  node = {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata",
           {{"name", StringAt(node, {"metadata", "name"})},
            {"uid", StringAt(node, {"metadata", "uid"})},
            {"resourceVersion", StringAt(node, {"metadata", "resourceVersion"})}}}};
}

Status ValidateTrainer(const nlohmann::json& trainer) { return worker::ParseTrainerConfig(trainer).status(); }

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

struct TrainingJobController::Scope {
  std::string namespace_name;  // "" = every namespace
  kube::SharedInformer* jobs = nullptr;
  kube::SharedInformer* pods = nullptr;
  kube::SharedInformer* services = nullptr;
  kube::SharedInformer* config_maps = nullptr;
  kube::SharedInformer* secrets = nullptr;
};

kube::Resource TrainingJobs() { return {"mlscale.io", "v1alpha1", "trainingjobs", true, "TrainingJob"}; }

TrainingJobController::TrainingJobController(kube::Manager& manager, ControllerConfig config)
    : manager_(manager), config_(std::move(config)), events_(manager.client(), "mlscale-operator") {}

TrainingJobController::~TrainingJobController() = default;

StatusOr<std::unique_ptr<TrainingJobController>> TrainingJobController::Register(kube::Manager& manager,
                                                                                ControllerConfig config) {
  if (config.workers < 1) return InvalidArgument("trainingjob controller: workers must be >= 1");
  std::unique_ptr<TrainingJobController> self(new TrainingJobController(manager, std::move(config)));
  TrainingJobController* raw = self.get();
  kube::Client& client = manager.client();
  raw->gang_ = std::make_unique<GangDiscovery>(raw->config_.gang, [&client](const std::string& crd) {
    return kube::CustomResourceDefinitionInstalled(client, crd);
  });
  kube::ControllerOptions options;
  options.name = "trainingjob";
  options.workers = raw->config_.workers;
  kube::Controller& controller = manager.AddController(
      std::move(options),
      [raw](const std::string& key, std::stop_token stop) { return raw->Reconcile(key, stop); });
  raw->controller_ = &controller;
  kube::InformerFactory& informers = manager.informers();
  kube::WorkQueue& queue = controller.queue();

  std::vector<std::string> namespaces = raw->config_.namespaces;
  if (namespaces.empty()) namespaces.push_back("");
  for (const std::string& namespace_name : namespaces) {
    auto scope = std::make_unique<Scope>();
    scope->namespace_name = namespace_name;
    kube::InformerOptions jobs;
    jobs.packed = true;
    scope->jobs = &informers.Informer(TrainingJobs(), namespace_name, jobs);
    // Our own status writes come back as updates: only spec/metadata changes wake us.
    scope->jobs->AddHandler(kube::WithPredicate(kube::EnqueueObject(queue), kube::ChangedBeyondStatus));

    // The caches keep only what this controller reads, packed (kube::InformerOptions::packed):
    // at thousands of jobs they are most of the operator's memory.
    kube::InformerOptions children;
    children.watch.label_selector = ChildSelector();
    children.packed = true;
    kube::InformerOptions pods = children;
    pods.watch.transform = ProjectWorkerPod;
    scope->pods = &informers.Informer(kube::resources::Pods(), namespace_name, pods);
    // Expectations first, so the owner's reconcile sees its creation observed.
    scope->pods->AddHandler(kube::ObserveChildren(raw->expectations_, kOwnerGroup, kOwnerKind));
    // A child's change mostly brings the job's status up to date: at low priority, behind
    // new jobs (and spec changes) waiting for their pods, so a backlog creates pods first and
    // each job's changes meanwhile collapse into one status write.
    constexpr auto kLow = kube::WorkQueue::Priority::kLow;
    scope->pods->AddHandler(kube::EnqueueControllerOwner(queue, kOwnerGroup, kOwnerKind, kLow));
    // Services and ConfigMaps are only checked for existence; of Secrets only the token is read.
    kube::InformerOptions existence = children;
    existence.watch.transform = kube::KeepMetadataOnly;
    kube::InformerOptions secrets = children;
    secrets.watch.transform = ProjectTokenSecret;
    scope->services = &informers.Informer(kube::resources::Services(), namespace_name, existence);
    scope->config_maps = &informers.Informer(kube::resources::ConfigMaps(), namespace_name, existence);
    scope->secrets = &informers.Informer(kube::resources::Secrets(), namespace_name, secrets);
    for (kube::SharedInformer* informer : {scope->services, scope->config_maps, scope->secrets}) {
      informer->AddHandler(kube::EnqueueControllerOwner(queue, kOwnerGroup, kOwnerKind, kLow));
    }
    raw->scopes_.push_back(std::move(scope));
  }
  kube::InformerOptions nodes;
  nodes.watch.transform = TrimNode;
  raw->nodes_ = &informers.Informer(kube::resources::Nodes(), "", nodes);

  ProgressPoller::Options poller;
  poller.writes_per_second = raw->config_.status_writes_per_second;
  poller.min_interval = raw->config_.progress_interval;
  raw->poller_ = std::make_unique<ProgressPoller>(poller, [&queue](const std::string& key) {
    queue.Add(key, kube::WorkQueue::Priority::kLow);
  });

  kube::Metrics& metrics = manager.metrics();
  metrics.Describe("mlscale_trainingjob_outcomes_total", "TrainingJobs that finished, by outcome and reason.");
  metrics.Describe("mlscale_trainingjob_restarts_total", "Group restarts, by reason (WorkerFailed, WorkerDisrupted, GangTimeout).");
  metrics.Describe("mlscale_trainingjob_all_pods_created_seconds",
                   "From the job's creation (or a restart's start) to every worker pod created.");
  metrics.Describe("mlscale_trainingjob_time_to_running_seconds", "From the group's creation to all workers running.");
  metrics.Describe("mlscale_trainingjob_reconcile_errors_total", "Reconciles of TrainingJobs that failed, by step.");
  return self;
}

const TrainingJobController::Scope& TrainingJobController::ScopeFor(const std::string& namespace_name) const {
  for (const auto& scope : scopes_) {
    if (scope->namespace_name == namespace_name || scope->namespace_name.empty()) return *scope;
  }
  return *scopes_.front();  // unreachable: keys only come from the scopes' informers
}

StatusOr<std::vector<TrainingJobController::Creation>> TrainingJobController::MissingSupportingChildren(
    const Scope& scope, const JobRef& job, const ChildOptions& children) {
  const std::string& ns = job.job.namespace_;
  std::vector<Creation> missing;
  if (!scope.secrets->cache().Get(kube::MakeKey(ns, TokenSecretName(job)))) {
    StatusOr<std::string> token = NewToken();
    if (!token.ok()) return token.status();
    missing.push_back({kube::resources::Secrets(), BuildTokenSecret(job, *token)});
  }
  if (!scope.config_maps->cache().Get(kube::MakeKey(ns, TrainerConfigMapName(job))) && !job.job.spec.container) {
    missing.push_back({kube::resources::ConfigMaps(), BuildTrainerConfigMap(job)});
  }
  if (job.job.spec.launcher == api::LauncherKind::kMpi && !job.job.spec.container) {
    if (!scope.config_maps->cache().Get(kube::MakeKey(ns, HostfileConfigMapName(job)))) {
      missing.push_back({kube::resources::ConfigMaps(), BuildHostfileConfigMap(job)});
    }
    if (!scope.secrets->cache().Get(kube::MakeKey(ns, SshSecretName(job)))) {
      StatusOr<std::string> key = NewSshPrivateKey();
      if (!key.ok()) return key.status();
      missing.push_back({kube::resources::Secrets(), BuildSshSecret(job, *key)});
    }
  }
  if (children.gang.flavour != GangFlavour::kNone) {
    // Not cached (few jobs change it): create-if-absent costs one request per group.
    missing.push_back({PodGroupResource(children.gang.flavour), BuildPodGroup(job, children.gang.flavour)});
  }
  if (NeedsService(job.job.spec) && !scope.services->cache().Get(kube::MakeKey(ns, ServiceName(job)))) {
    missing.push_back({kube::resources::Services(), BuildService(job)});
  }
  return missing;
}

Status TrainingJobController::WriteStatus(const Object& job, const Decision& decision) {
  Object updated = job;
  Object& status = updated["status"];
  trainingjob::WriteStatus(decision.status, status);
  for (const kube::Condition& condition : decision.conditions) {
    // A condition that never held is not written as False: the list says what happened.
    if (condition.status == kube::ConditionStatus::kFalse && !kube::FindCondition(updated, condition.type)) continue;
    StatusOr<bool> changed = kube::SetCondition(updated, condition);
    if (!changed.ok()) return changed.status();
  }
  updated["status"]["observedGeneration"] = kube::GenerationOf(updated);
  if (updated["status"] == job.value("status", Object())) return Status::Ok();
  StatusOr<Object> written = kube::UpdateStatus(manager_.client(), TrainingJobs(), std::move(updated));
  return written.status();
}

bool TrainingJobController::Act(const std::string& key, const JobRef& job, const Decision& decision,
                                const Object& original, std::vector<Creation> supporting, const ChildOptions& children,
                                Status& error) {
  kube::Client& client = manager_.client();
  const std::string& ns = job.job.namespace_;
  kube::DeleteOptions background;
  background.propagation = kube::PropagationPolicy::kBackground;
  if (!decision.delete_pods.empty()) {
    std::vector<std::string> keys;
    for (const std::string& name : decision.delete_pods) keys.push_back(kube::MakeKey(ns, name));
    expectations_.ExpectDeletions(key, keys);
    for (const std::string& name : decision.delete_pods) {
      Status deleted = client.Delete(kube::resources::Pods(), ns, name, background);
      if (!deleted.ok()) {
        expectations_.DeletionObserved(key, kube::MakeKey(ns, name));  // it will never be seen
        if (!kube::IsNotFound(deleted) && error.ok()) error = deleted.WithContext("deleting pod " + name);
      }
    }
  }
  bool all_created = true;
  if (!supporting.empty() || !decision.create_ranks.empty()) {
    // The supporting children first (the Secret the pods read leads), then the pods, in one
    // slow start: for a new job of 4 workers, 3 round trips instead of 6.
    std::vector<Creation> creations = std::move(supporting);
    const size_t first_pod = creations.size();
    std::vector<std::string> keys;
    for (std::int64_t rank : decision.create_ranks) {
      creations.push_back({kube::resources::Pods(), BuildWorkerPod(job, rank, children)});
      keys.push_back(kube::MakeKey(ns, PodName(job, rank)));
    }
    expectations_.ExpectCreations(key, keys);
    std::vector<char> existed(creations.size(), 0);  // one element per thread
    const std::vector<Status> results = kube::SlowStartBatch(creations.size(), [&](size_t i) -> Status {
      const Creation& creation = creations[i];
      StatusOr<Object> created = client.Create(creation.resource, ns, creation.object);
      if (created.ok()) return Status::Ok();
      // AlreadyExists: made before (e.g. by a previous process); the cache will show it.
      existed[i] = kube::IsAlreadyExists(created.status());
      if (existed[i]) return Status::Ok();
      return created.status().WithContext("creating " + creation.resource.plural + " " + kube::KeyOf(creation.object));
    });
    for (size_t i = 0; i < creations.size(); ++i) {
      const bool pod = i >= first_pod;
      // A pod made before, or never made: the watch will not deliver it as this creation.
      if (pod && (!results[i].ok() || existed[i])) expectations_.CreationObserved(key, keys[i - first_pod]);
      if (results[i].ok()) continue;
      if (pod) all_created = false;
      // A PodGroup whose CRD went away since it was looked up: look again on the next reconcile.
      if (!pod && kube::IsNotFound(results[i]) && creations[i].resource.plural == "podgroups") gang_->Invalidate();
      if (error.ok()) error = results[i];
    }
    if (!decision.create_ranks.empty() && all_created) {
      const JobStatus& status = decision.status;
      const bool first_group = status.restarts + status.disruptions == 0;
      std::optional<TimePoint> since = first_group ? ParseTime(StringAt(original, {"metadata", "creationTimestamp"}))
                                                   : status.restart_time;
      if (since) {
        manager_.metrics().Observe("mlscale_trainingjob_all_pods_created_seconds", {}, Seconds(Clock::now() - *since));
      }
    }
  }
  if (decision.delete_job) {
    kube::DeleteOptions this_job = background;
    this_job.precondition_uid = job.uid;  // never a job of the same name made since
    Status deleted = client.Delete(TrainingJobs(), ns, job.job.name, this_job);
    if (!deleted.ok() && !kube::IsNotFound(deleted) && error.ok()) error = deleted.WithContext("deleting the finished job (TTL)");
  }
  return all_created;
}

void TrainingJobController::RecordOutcome(const Object& job, const JobStatus& before, const Decision& decision) {
  for (const Event& event : decision.events) events_.Record(job, event.type, event.reason, event.message);
  const JobStatus& after = decision.status;
  kube::Metrics& metrics = manager_.metrics();
  if (after.state != before.state && (after.state == kSucceeded || after.state == kFailed)) {
    metrics.Add("mlscale_trainingjob_outcomes_total", {{"outcome", after.state}, {"reason", after.reason}});
  }
  if (after.restarts + after.disruptions > before.restarts + before.disruptions) {
    metrics.Add("mlscale_trainingjob_restarts_total", {{"reason", after.reason}});
  }
  if (after.state == kRunning && before.state != kRunning && after.group_created_time) {
    metrics.Observe("mlscale_trainingjob_time_to_running_seconds", {}, Seconds(Clock::now() - *after.group_created_time));
  }
}

void TrainingJobController::TrackProgress(const std::string& key, const Scope& scope, const JobRef& job,
                                          const JobStatus& status, const std::vector<kube::ObjectPtr>& pods) {
  if (status.state != kRunning) {
    poller_->Untrack(key);
    return;
  }
  const std::string rank0 = PodName(job, 0);
  std::string address;
  for (const kube::ObjectPtr& pod : pods) {
    if (kube::NameOf(*pod) == rank0) address = StringAt(*pod, {"status", "podIP"});
  }
  kube::ObjectPtr secret = scope.secrets->cache().Get(kube::MakeKey(job.job.namespace_, TokenSecretName(job)));
  std::optional<std::string> token;
  if (secret) token = kube::Base64Decode(StringAt(*secret, {"data", kTokenKey}));
  if (token && token->empty()) token.reset();
  if (address.empty() || !token) {
    poller_->Untrack(key);
    return;
  }
  poller_->Track(key, address, kProgressPort, *token);
}

StatusOr<kube::ReconcileResult> TrainingJobController::Reconcile(const std::string& key, std::stop_token stop) {
  auto [namespace_name, name] = kube::SplitKey(key);
  const Scope& scope = ScopeFor(namespace_name);
  kube::ObjectPtr cached = scope.jobs->cache().Get(key);
  if (!cached) {
    expectations_.Forget(key);
    poller_->Untrack(key);
    return kube::ReconcileResult{};
  }
  const Object& object = *cached;
  if (kube::IsBeingDeleted(object)) {
    poller_->Untrack(key);
    return kube::ReconcileResult{};  // the garbage collector deletes the children
  }
  const JobStatus before = ReadStatus(object.value("status", Object::object()));

  StatusOr<api::TrainingJob> parsed = api::TrainingJobFromJson(object, ValidateTrainer);
  if (!parsed.ok()) {
    // The CRD's schema refuses almost everything the parser does; what is left (a trainer
    // config the schema cannot judge) fails the job once, with the parser's words.
    if (before.state == kFailed) return kube::ReconcileResult{};
    Decision failed;
    failed.status = before;
    failed.status.state = kFailed;
    failed.status.reason = "InvalidSpec";
    failed.status.message = parsed.status().message();
    failed.status.completion_time = Clock::now();
    failed.conditions.push_back({kFailed, kube::ConditionStatus::kTrue, "InvalidSpec", parsed.status().message()});
    failed.events.push_back({"Warning", "InvalidSpec", parsed.status().message()});
    if (Status s = WriteStatus(object, failed); !s.ok()) return s;
    RecordOutcome(object, before, failed);
    return kube::ReconcileResult{};
  }
  JobRef job{std::move(*parsed), kube::UidOf(object)};
  job.job.namespace_ = namespace_name;

  // Until the cache has seen our last creations and deletions, counting pods would be wrong.
  if (!expectations_.Satisfied(key)) return kube::ReconcileResult{std::chrono::milliseconds(1000)};

  kube::CacheQuery query;
  query.namespace_name = namespace_name;
  query.owner_uid = job.uid;
  query.controlled_only = true;
  const std::vector<kube::ObjectPtr> pods = kube::CacheReader(scope.pods->cache()).List(query);
  std::vector<WorkerObservation> workers;
  workers.reserve(pods.size());
  const bool nodes_known = nodes_->HasSynced();
  for (const kube::ObjectPtr& pod : pods) {
    const std::string node = StringAt(*pod, {"spec", "nodeName"});
    const bool node_exists = !nodes_known || node.empty() || nodes_->cache().Get(node) != nullptr;
    workers.push_back(ObserveWorker(*pod, node_exists));
  }

  Decision decision = Decide(job.job.spec, before, workers, Clock::now(), config_.decide);
  if (decision.status.state == kRunning) {
    if (std::optional<ProgressReading> reading = poller_->Latest(key); reading && reading->progress.is_object()) {
      Object progress = reading->progress;
      if (!reading->time.empty()) progress["time"] = reading->time;
      // The printer column's percent of the steps done.
      if (progress.contains("step") && progress.contains("totalSteps") && progress["step"].is_number_integer() &&
          progress["totalSteps"].is_number_integer() && progress["totalSteps"].get<std::int64_t>() > 0) {
        progress["percent"] = progress["step"].get<std::int64_t>() * 100 / progress["totalSteps"].get<std::int64_t>();
      }
      decision.status.progress = std::move(progress);
    }
  }
  if (stop.stop_requested()) return kube::ReconcileResult{};

  const bool active = decision.status.state != kSucceeded && decision.status.state != kFailed &&
                      decision.status.state != kSuspended;
  ChildOptions children = config_.children;
  std::vector<Creation> supporting;
  if (active && !decision.create_ranks.empty()) {
    children.gang = gang_->Current();
    StatusOr<std::vector<Creation>> missing = MissingSupportingChildren(scope, job, children);
    if (!missing.ok()) {
      manager_.metrics().Add("mlscale_trainingjob_reconcile_errors_total", {{"step", "children"}});
      return missing.status();
    }
    supporting = std::move(*missing);
  }
  // A decision that deletes (a counted restart, a failure, the TTL) is written before
  // acting, so it is recorded once. One that only creates a group is not written on the
  // path to the pods at all: the pods' watch events bring the job back (at low priority)
  // and that look, seeing them, writes the status once (pending, Created; the times come
  // from the pods, Decide says so) and records the PodsCreated event with it (MarkPodsCreated).
  // Under a backlog the pods of the next jobs go first, with no write of ours between them.
  // Should a creation fail, what was decided is written after.
  // Not after a restart: should that write fail (a conflict, a crash), the next look would
  // still read Restarting and delete the new group, so leaving Restarting is written first.
  // A conflict means the job changed: compute again from the fresh object.
  const bool write_after = !decision.create_ranks.empty() && decision.delete_pods.empty() && !decision.delete_job &&
                           before.state != kRestarting;
  auto write_status = [&]() -> Status {
    if (Status s = WriteStatus(object, decision); !s.ok()) {
      if (!kube::IsConflict(s)) manager_.metrics().Add("mlscale_trainingjob_reconcile_errors_total", {{"step", "status"}});
      return s;
    }
    RecordOutcome(object, before, decision);
    return Status::Ok();
  };
  if (!write_after) {
    if (Status s = write_status(); !s.ok()) return s;
  }
  Status error;
  const bool all_created = Act(key, job, decision, object, std::move(supporting), children, error);
  if (write_after && all_created) {
    MarkPodsCreated(decision, before);
    RecordOutcome(object, before, decision);
  } else if (write_after) {
    if (Status s = write_status(); !s.ok() && error.ok()) return s;
  }
  if (!error.ok()) {
    manager_.metrics().Add("mlscale_trainingjob_reconcile_errors_total", {{"step", "children"}});
    return error;
  }
  TrackProgress(key, scope, job, decision.status, pods);
  return kube::ReconcileResult{decision.requeue_after};
}

}  // namespace mlscale::controllers::trainingjob
