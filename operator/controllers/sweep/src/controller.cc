#include "mlscale/controllers/sweep/controller.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "mlscale/controllers/trainingjob/controller.h"
#include "mlscale/kube/errors.h"
#include "mlscale/kube/informer.h"
#include "mlscale/kube/objects.h"
#include "mlscale/kube/reader.h"
#include "mlscale/kube/resource.h"
#include "mlscale/worker/config.h"

namespace mlscale::controllers::sweep {
namespace {

using Clock = std::chrono::system_clock;
constexpr const char* kOwnerGroup = "mlscale.io";
constexpr const char* kOwnerKind = "HyperparameterSweep";
// A look again when a wait has no event of its own to end it (expectations, a suggestion).
constexpr std::chrono::milliseconds kRecheck{2000};
// A look again once the cache has caught up with the sweep: its own status write is a
// watch event away (status-only changes enqueue nothing, so it must ask).
constexpr std::chrono::milliseconds kFreshRead{100};

Status ValidateTrainer(const nlohmann::json& trainer) { return worker::ParseTrainerConfig(trainer).status(); }

// The sweep a trial belongs to, from its label (the owner reference says the same; the
// label also maps trials whose owner reference someone removed, for the event).
std::vector<std::string> SweepOfTrial(const Object& job) {
  const Object* labels = nullptr;
  if (auto metadata = job.find("metadata"); metadata != job.end() && metadata->contains("labels")) {
    labels = &(*metadata)["labels"];
  }
  if (labels == nullptr || !labels->is_object()) return {};
  auto it = labels->find(kSweepNameLabel);
  if (it == labels->end() || !it->is_string()) return {};
  return {kube::MakeKey(kube::NamespaceOf(job), it->get<std::string>())};
}

}  // namespace

struct SweepController::Scope {
  std::string namespace_name;  // "" = every namespace
  kube::SharedInformer* sweeps = nullptr;
  kube::SharedInformer* trials = nullptr;
};

kube::Resource HyperparameterSweeps() {
  return {"mlscale.io", "v1alpha1", "hyperparametersweeps", true, "HyperparameterSweep"};
}

SweepController::SweepController(kube::Manager& manager, ControllerConfig config)
    : manager_(manager), config_(std::move(config)), events_(manager.client(), "mlscale-operator") {}

SweepController::~SweepController() = default;

StatusOr<std::unique_ptr<SweepController>> SweepController::Register(kube::Manager& manager, ControllerConfig config) {
  if (config.workers < 1) return InvalidArgument("sweep controller: workers must be >= 1");
  std::unique_ptr<SweepController> self(new SweepController(manager, std::move(config)));
  SweepController* raw = self.get();
  // An informer of a resource that is not served never syncs, and the manager starts no
  // controller before every cache has: without the CRD this controller stays off, so an
  // operator hosting every kind still runs TrainingJobs (checked once: restart the
  // operator after installing the CRD). Another error (e.g. no permission to read CRDs)
  // leaves it on.
  StatusOr<bool> installed = kube::CustomResourceDefinitionInstalled(manager.client(), "hyperparametersweeps.mlscale.io");
  if (installed.ok() && !*installed) {
    spdlog::warn("hyperparametersweep: the CRD hyperparametersweeps.mlscale.io is not installed; the controller is off "
                 "until the operator restarts with it installed");
    return self;
  }
  kube::ControllerOptions options;
  options.name = "hyperparametersweep";
  options.workers = raw->config_.workers;
  kube::Controller& controller = manager.AddController(
      std::move(options), [raw](const std::string& key, std::stop_token stop) { return raw->Reconcile(key, stop); });
  raw->controller_ = &controller;
  kube::WorkQueue& queue = controller.queue();
  kube::Metrics& metrics = manager.metrics();
  raw->suggester_ = std::make_unique<Suggester>(
      [&queue](const std::string& key) { queue.Add(key); },
      [&metrics](double seconds) { metrics.Observe("mlscale_sweep_suggestion_seconds", {}, seconds); });

  kube::InformerFactory& informers = manager.informers();
  std::vector<std::string> namespaces = raw->config_.namespaces;
  if (namespaces.empty()) namespaces.push_back("");
  for (const std::string& namespace_name : namespaces) {
    auto scope = std::make_unique<Scope>();
    scope->namespace_name = namespace_name;
    scope->sweeps = &informers.Informer(HyperparameterSweeps(), namespace_name);
    scope->sweeps->AddHandler(kube::WithPredicate(kube::EnqueueObject(queue), kube::ChangedBeyondStatus));
    kube::InformerOptions trials;
    trials.watch.label_selector = kSweepNameLabel;  // only trials: the label exists
    scope->trials = &informers.Informer(trainingjob::TrainingJobs(), namespace_name, trials);
    // Expectations first, so the sweep's reconcile sees its creation observed.
    scope->trials->AddHandler(kube::ObserveChildren(raw->expectations_, kOwnerGroup, kOwnerKind));
    scope->trials->AddHandler(kube::EnqueueMapped(queue, SweepOfTrial));
    raw->scopes_.push_back(std::move(scope));
  }
  metrics.Describe("mlscale_sweep_trials_total", "Trials of HyperparameterSweeps by what happened to them (Created, "
                                                 "Succeeded, Failed, EarlyStopped).");
  metrics.Describe("mlscale_sweep_running_trials", "Trials of each sweep running now.");
  metrics.Describe("mlscale_sweep_suggestion_seconds", "Wall time of one hpo::Suggest call (off the reconcile workers).");
  metrics.Describe("mlscale_sweep_outcomes_total", "HyperparameterSweeps that finished, by outcome and reason.");
  metrics.Describe("mlscale_sweep_reconcile_errors_total", "Reconciles of HyperparameterSweeps that failed, by step.");
  return self;
}

const SweepController::Scope& SweepController::ScopeFor(const std::string& namespace_name) const {
  for (const auto& scope : scopes_) {
    if (scope->namespace_name == namespace_name || scope->namespace_name.empty()) return *scope;
  }
  return *scopes_.front();  // unreachable: keys only come from the scopes' informers
}

Status SweepController::WriteStatus(const Object& sweep, const Plan& plan, std::int64_t max_trials) {
  Object updated = sweep;
  sweep::WriteStatus(plan.status, max_trials, updated["status"]);
  for (const kube::Condition& condition : plan.conditions) {
    // A condition that never held is not written as False: the list says what happened.
    if (condition.status == kube::ConditionStatus::kFalse && !kube::FindCondition(updated, condition.type)) continue;
    StatusOr<bool> changed = kube::SetCondition(updated, condition);
    if (!changed.ok()) return changed.status();
  }
  updated["status"]["observedGeneration"] = kube::GenerationOf(updated);
  if (updated["status"] == sweep.value("status", Object())) return Status::Ok();
  StatusOr<Object> written = kube::UpdateStatus(manager_.client(), HyperparameterSweeps(), std::move(updated));
  if (!written.ok()) return written.status();
  own_writes_.Wrote(kube::KeyOf(sweep), kube::ResourceVersionOf(sweep));
  return Status::Ok();
}

StatusOr<kube::ReconcileResult> SweepController::StatusWriteFailed(const std::string& key, const Status& failed) {
  if (!kube::IsConflict(failed)) {
    manager_.metrics().Add("mlscale_sweep_reconcile_errors_total", {{"step", "status"}});
    return failed;
  }
  // Someone else changed the sweep since the cached copy was read: nothing failed, the
  // status is computed again from the fresh object.
  spdlog::debug("sweep {}: changed since it was read; its status is computed again", key);
  return kube::ReconcileResult{kFreshRead};
}

Status SweepController::CreateTrials(const std::string& key, const api::HyperparameterSweep& sweep,
                                     const Object& object, const std::vector<hpo::Assignment>& assignments,
                                     Plan& plan) {
  std::vector<Object> jobs;
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < assignments.size(); ++i) {
    const std::int64_t index = plan.next_index + static_cast<std::int64_t>(i);
    StatusOr<Object> job = BuildTrial(sweep, object, index, assignments[i], ValidateTrainer);
    if (!job.ok()) return job.status();
    keys.push_back(kube::KeyOf(*job));
    jobs.push_back(std::move(*job));
  }
  expectations_.ExpectCreations(key, keys);
  Status error;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    StatusOr<Object> created = manager_.client().Create(trainingjob::TrainingJobs(), sweep.namespace_, jobs[i]);
    if (!created.ok()) {
      expectations_.CreationObserved(key, keys[i]);  // no event will come for this one
      // AlreadyExists: made before (by a process that died before its status write).
      if (!kube::IsAlreadyExists(created.status()) && error.ok()) {
        error = created.status().WithContext("creating trial " + kube::NameOf(jobs[i]));
      }
      continue;
    }
    ++plan.status.trials.created;
    ++plan.status.trials.running;
    manager_.metrics().Add("mlscale_sweep_trials_total", {{"state", "Created"}});
    events_.Record(object, "Normal", "TrialCreated",
                   "trial " + kube::NameOf(jobs[i]) + ": " + hpo::AssignmentKey(assignments[i]));
  }
  return error;
}

Status SweepController::Patch(const std::string& namespace_name, const std::string& trial, const Object& patch) {
  StatusOr<Object> patched =
      manager_.client().Patch(trainingjob::TrainingJobs(), namespace_name, trial, kube::PatchType::kMerge, patch);
  if (patched.ok() || kube::IsNotFound(patched.status())) return Status::Ok();
  return patched.status().WithContext("patching trial " + trial);
}

void SweepController::ReportTrials(const std::string& key, const Object& sweep, const std::vector<Trial>& trials) {
  std::lock_guard lock(phases_mutex_);
  auto [seen, first_look] = phases_.try_emplace(key);
  for (const Trial& trial : trials) {
    auto [it, added] = seen->second.try_emplace(trial.uid, trial.phase);
    const TrialPhase before = it->second;
    it->second = trial.phase;
    if ((added && first_look) || (!added && before == trial.phase)) continue;
    switch (trial.phase) {
      case TrialPhase::kSucceeded:
        events_.Record(sweep, "Normal", "TrialSucceeded", "trial " + trial.name + ": " + std::to_string(*trial.value));
        break;
      case TrialPhase::kFailed: events_.Record(sweep, "Warning", "TrialFailed", "trial " + trial.name + ": " + trial.message); break;
      case TrialPhase::kEarlyStopped:
        events_.Record(sweep, "Normal", "TrialEarlyStopped", "trial " + trial.name + ": " + trial.message);
        break;
      case TrialPhase::kActive:
      case TrialPhase::kStopping: continue;
    }
    manager_.metrics().Add("mlscale_sweep_trials_total", {{"state", std::string(TrialPhaseName(trial.phase))}});
  }
}

StatusOr<kube::ReconcileResult> SweepController::Reconcile(const std::string& key, std::stop_token stop) {
  auto [namespace_name, name] = kube::SplitKey(key);
  const Scope& scope = ScopeFor(namespace_name);
  kube::ObjectPtr cached = scope.sweeps->cache().Get(key);
  if (!cached || kube::IsBeingDeleted(*cached)) {
    // The garbage collector deletes the trials (owner references).
    expectations_.Forget(key);
    suggester_->Forget(key);
    own_writes_.Forget(key);
    std::lock_guard lock(phases_mutex_);
    phases_.erase(key);
    return kube::ReconcileResult{};
  }
  const Object& object = *cached;
  // A status computed from the copy our last write replaced would be refused (409).
  if (own_writes_.CacheBehind(key, kube::ResourceVersionOf(object))) return kube::ReconcileResult{kFreshRead};
  const SweepStatus before = ReadStatus(object.value("status", Object::object()));
  const auto now = Clock::now();

  StatusOr<api::HyperparameterSweep> parsed = api::SweepFromJson(object, ValidateTrainer);
  if (!parsed.ok()) {
    // The CRD's schema and CEL refuse most of what the parser does; the rest (a placeholder
    // naming no parameter, a value of the wrong type for its field) fails the sweep here.
    Plan failed = InvalidSpec(before, parsed.status().message(), now);
    if (Status s = WriteStatus(object, failed, 0); !s.ok()) return StatusWriteFailed(key, s);
    for (const TrialEvent& event : failed.events) events_.Record(object, event.type, event.reason, event.message);
    return kube::ReconcileResult{};
  }
  api::HyperparameterSweep& sweep = *parsed;
  sweep.namespace_ = namespace_name;
  const api::SweepSpec& spec = sweep.spec;

  // Until the cache has seen our last creations, counting trials could reuse an index.
  if (!expectations_.Satisfied(key)) return kube::ReconcileResult{kRecheck};

  kube::CacheQuery query;
  query.namespace_name = namespace_name;
  query.owner_uid = kube::UidOf(object);
  query.controlled_only = true;
  std::vector<Trial> trials;
  for (const kube::ObjectPtr& job : kube::CacheReader(scope.trials->cache()).List(query)) {
    trials.push_back(ObserveTrial(spec, *job));
  }
  ReportTrials(key, object, trials);

  Plan plan = Decide(spec, before, trials, /*exhausted=*/false, now);
  std::optional<std::chrono::milliseconds> requeue;
  std::vector<hpo::Assignment> assignments;
  if (plan.create > 0) {
    std::optional<Suggester::Result> suggested = suggester_->Get(
        key, spec.sampler, spec.space, SamplerHistory(trials, /*with_intermediate=*/false),
        static_cast<int>(plan.create));
    if (!suggested) {
      requeue = kRecheck;  // the Suggester enqueues the sweep when its answer is ready
    } else if (!suggested->ok()) {
      manager_.metrics().Add("mlscale_sweep_reconcile_errors_total", {{"step", "suggest"}});
      return suggested->status().WithContext("suggesting trials");
    } else if ((*suggested)->empty()) {
      plan = Decide(spec, before, trials, /*exhausted=*/true, now);
    } else {
      assignments = std::move(**suggested);
    }
  }
  if (stop.stop_requested()) return kube::ReconcileResult{};

  Status error;
  if (!assignments.empty()) {
    if (assignments.size() > static_cast<std::size_t>(plan.create)) assignments.resize(plan.create);
    Status created = CreateTrials(key, sweep, object, assignments, plan);
    if (!created.ok()) {
      manager_.metrics().Add("mlscale_sweep_reconcile_errors_total", {{"step", "create"}});
      if (created.code() == StatusCode::kInvalidArgument) {
        // The template with this assignment is refused: the spec is wrong, not the cluster.
        plan = InvalidSpec(before, created.message(), now);
      } else {
        error = created;
      }
    }
  }
  for (const StopRequest& request : plan.stop) {
    Status stopped = Patch(namespace_name, request.trial, StopPatch(request.message));
    if (!stopped.ok()) {
      if (error.ok()) error = stopped;
      continue;
    }
    spdlog::info("sweep {}: stopping trial {}: {}", key, request.trial, request.message);
  }
  for (const RecordRequest& request : plan.record) {
    if (Status recorded = Patch(namespace_name, request.trial, RecordPatch(request.values)); !recorded.ok() && error.ok()) {
      error = recorded;
    }
  }
  if (Status s = WriteStatus(object, plan, spec.max_trials); !s.ok()) {
    StatusOr<kube::ReconcileResult> retry = StatusWriteFailed(key, s);
    return error.ok() ? retry : StatusOr<kube::ReconcileResult>(error);
  }
  for (const TrialEvent& event : plan.events) events_.Record(object, event.type, event.reason, event.message);
  if (plan.status.state != before.state && (plan.status.state == kStateSucceeded || plan.status.state == kStateFailed)) {
    manager_.metrics().Add("mlscale_sweep_outcomes_total", {{"outcome", plan.status.state}, {"reason", plan.status.reason}});
  }
  manager_.metrics().Set("mlscale_sweep_running_trials", {{"sweep", key}},
                         static_cast<double>(plan.status.trials.running));
  if (!error.ok()) return error;
  return kube::ReconcileResult{requeue};
}

}  // namespace mlscale::controllers::sweep
