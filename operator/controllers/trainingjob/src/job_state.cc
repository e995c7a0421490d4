#include "mlscale/controllers/trainingjob/job_state.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include "mlscale/controllers/trainingjob/children.h"

namespace mlscale::controllers::trainingjob {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using Phase = WorkerObservation::Phase;

// Waiting reasons that no retry fixes: the pod waits for the user (a wrong image name, a
// Secret or ConfigMap that does not exist). After start_timeout the job fails with them.
const std::set<std::string, std::less<>> kCannotStartReasons = {
    "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError"};
// status.reason values the kubelet and the eviction machinery use for disruptions.
const std::set<std::string, std::less<>> kDisruptionReasons = {"Evicted", "Preempting", "NodeLost", "Terminated",
                                                              "NodeShutdown"};

std::string String(const Object& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) return "";
  return object[key].get<std::string>();
}

std::int64_t Integer(const Object& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_number_integer()) return 0;
  return object[key].get<std::int64_t>();
}

// Fields of objects read from outside: a missing field or one of the wrong type reads as empty.
const Object& ObjectField(const Object& parent, const char* key) {
  static const Object kEmpty = Object::object();
  if (!parent.is_object() || !parent.contains(key)) return kEmpty;
  const Object& field = parent[key];
  return field.is_object() ? field : kEmpty;
}

const Object& ArrayField(const Object& parent, const char* key) {
  static const Object kEmpty = Object::array();
  if (!parent.is_object() || !parent.contains(key)) return kEmpty;
  const Object& field = parent[key];
  return field.is_array() ? field : kEmpty;
}

bool ConditionTrue(const Object& status, std::string_view type) {
  for (const Object& condition : ArrayField(status, "conditions")) {
    if (String(condition, "type") == type) return String(condition, "status") == "True";
  }
  return false;
}

std::optional<TimePoint> TimeField(const Object& object, const char* key) { return ParseTime(String(object, key)); }

void SetTimeField(Object& object, const char* key, const std::optional<TimePoint>& time) {
  if (time) {
    object[key] = FormatTime(*time);
  } else {
    object.erase(key);
  }
}

// "created 2 of 4 worker pods again (restart 1)".
Event PodsCreatedEvent(std::int64_t created, std::int64_t total, std::int64_t restart) {
  std::string message = "created " + std::to_string(created);
  if (created < total) message += " of " + std::to_string(total);
  message += " worker pods";
  if (restart > 0) message += " again (restart " + std::to_string(restart) + ")";
  return {"Normal", "PodsCreated", std::move(message)};
}

// The Created condition of a group whose `replicas` pods all exist.
kube::Condition PodsCreated(std::int64_t replicas) {
  return {kCreated, kube::ConditionStatus::kTrue, "PodsCreated",
          "all " + std::to_string(replicas) + " worker pods were created"};
}

milliseconds Until(TimePoint at, TimePoint now) {
  return std::max(milliseconds(0), duration_cast<milliseconds>(at - now)) + milliseconds(1);
}

void RequeueAt(Decision& decision, TimePoint at, TimePoint now) {
  const milliseconds delay = Until(at, now);
  if (!decision.requeue_after || delay < *decision.requeue_after) decision.requeue_after = delay;
}

// A worker's termination message: the result JSON when it is one, else the text (null
// when there is none).
Object ResultFrom(const WorkerObservation& worker) {
  if (worker.message.empty()) return nullptr;
  Object parsed = Object::parse(worker.message, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) return parsed;
  return Object{{"message", worker.message}};
}

std::string Describe(const WorkerObservation& worker) {
  std::string text = worker.name;
  if (worker.exit_code) text += " exited with code " + std::to_string(*worker.exit_code);
  if (!worker.reason.empty()) text += " (" + worker.reason + ")";
  if (!worker.message.empty()) {
    std::string message = worker.message.substr(0, 256);
    text += ": " + message;
  }
  return text;
}

WorkerCounts Count(const std::vector<WorkerObservation>& workers, std::int64_t replicas) {
  WorkerCounts counts;
  counts.total = replicas;
  for (const WorkerObservation& worker : workers) {
    if (worker.rank < 0 || worker.rank >= replicas) continue;
    switch (worker.phase) {
      case Phase::kPodPending: ++counts.pending; break;
      case Phase::kPodRunning: ++counts.running; break;
      case Phase::kPodSucceeded: ++counts.succeeded; break;
      case Phase::kPodFailed: ++counts.failed; break;
    }
    if (worker.ready) ++counts.ready;
  }
  return counts;
}

class Step {
 public:
  Step(const api::TrainingJobSpec& spec, const JobStatus& previous, const std::vector<WorkerObservation>& workers,
       TimePoint now, const DecideOptions& options)
      : spec_(spec), workers_(workers), now_(now), options_(options) {
    decision_.status = previous;
    decision_.status.workers = Count(workers, spec.replicas);
  }

  Decision Run() {
    JobStatus& status = decision_.status;
    if (status.state == kSucceeded || status.state == kFailed) {
      Finished();
      return std::move(decision_);
    }
    if (spec_.run_policy.suspend) {
      Suspend();
      return std::move(decision_);
    }
    if (status.state == kSuspended) {
      decision_.conditions.push_back({kSuspended, kube::ConditionStatus::kFalse, "Resumed", "the job was resumed"});
      decision_.events.push_back({"Normal", "Resumed", "the job was resumed; workers resume from the latest checkpoint"});
      status.state = kPending;
      status.reason.clear();
      status.message.clear();
    }
    if (DeadlinePassed()) return std::move(decision_);
    if (status.state == kRestarting) {
      Restarting();
      return std::move(decision_);
    }
    Active();
    return std::move(decision_);
  }

 private:
  // Deletes a pod (once, whatever asks for it).
  void Delete(const WorkerObservation& worker) {
    if (worker.deleting) return;
    if (std::find(decision_.delete_pods.begin(), decision_.delete_pods.end(), worker.name) == decision_.delete_pods.end()) {
      decision_.delete_pods.push_back(worker.name);
    }
  }

  void DeleteAll() {
    for (const WorkerObservation& worker : workers_) Delete(worker);
  }

  // Stops the pods still pending or running (the job has ended).
  void StopUnfinished() {
    for (const WorkerObservation& worker : workers_) {
      if (worker.phase == Phase::kPodPending || worker.phase == Phase::kPodRunning) Delete(worker);
    }
  }

  // cleanPodPolicy after the end: Running deletes the pods still running (finished pods
  // keep their logs), All deletes every pod, None keeps them.
  void CleanUp() {
    switch (spec_.run_policy.clean_pod_policy) {
      case api::CleanPodPolicy::kNone: break;
      case api::CleanPodPolicy::kRunning: StopUnfinished(); break;
      case api::CleanPodPolicy::kAll: DeleteAll(); break;
    }
  }

  void Finished() {
    CleanUp();
    const JobStatus& status = decision_.status;
    if (spec_.run_policy.ttl_seconds_after_finished && status.completion_time) {
      const TimePoint at = *status.completion_time + std::chrono::seconds(*spec_.run_policy.ttl_seconds_after_finished);
      if (now_ >= at) {
        decision_.delete_job = true;
      } else {
        RequeueAt(decision_, at, now_);
      }
    }
  }

  void Finish(const char* state, const std::string& reason, const std::string& message) {
    JobStatus& status = decision_.status;
    status.state = state;
    status.reason = reason;
    status.message = message;
    status.completion_time = now_;
    const bool succeeded = std::string_view(state) == kSucceeded;
    decision_.conditions.push_back({state, kube::ConditionStatus::kTrue, reason, message});
    decision_.conditions.push_back({kRunning, kube::ConditionStatus::kFalse, reason, message});
    decision_.conditions.push_back({kRestarting, kube::ConditionStatus::kFalse, reason, message});
    decision_.events.push_back({succeeded ? "Normal" : "Warning", reason, message});
    // The pods as they will be after CleanUp: counted from the observed ones.
    Finished();
  }

  void Suspend() {
    JobStatus& status = decision_.status;
    if (status.state != kSuspended) {
      decision_.events.push_back({"Normal", kSuspended, "the job is suspended: its pods are deleted"});
    }
    status.state = kSuspended;
    status.reason = kSuspended;
    status.message = "spec.runPolicy.suspend is true";
    // The deadline counts from the resume, as for a batch Job.
    status.start_time.reset();
    status.group_created_time.reset();
    status.restart_time.reset();
    decision_.conditions.push_back({kSuspended, kube::ConditionStatus::kTrue, kSuspended, "the job is suspended: its pods are deleted"});
    decision_.conditions.push_back({kRunning, kube::ConditionStatus::kFalse, kSuspended, "the job is suspended"});
    DeleteAll();
  }

  bool DeadlinePassed() {
    const JobStatus& status = decision_.status;
    if (!spec_.run_policy.active_deadline_seconds || !status.start_time) return false;
    const TimePoint at = *status.start_time + std::chrono::seconds(*spec_.run_policy.active_deadline_seconds);
    if (now_ < at) {
      RequeueAt(decision_, at, now_);
      return false;
    }
    Finish(kFailed, "DeadlineExceeded",
           "the job ran longer than spec.runPolicy.activeDeadlineSeconds (" +
               std::to_string(*spec_.run_policy.active_deadline_seconds) + " s)");
    // A deadline stops the job: every pod still running is stopped whatever cleanPodPolicy says.
    StopUnfinished();
    return true;
  }

  // Waits until the old group is gone and the backoff has elapsed, then creates the new group.
  void Restarting() {
    JobStatus& status = decision_.status;
    DeleteAll();
    if (!workers_.empty()) return;  // deletion events wake us
    const TimePoint began = status.restart_time.value_or(now_);
    const TimePoint at = began + RestartBackoff(status.restarts + status.disruptions, options_);
    if (now_ < at) {
      RequeueAt(decision_, at, now_);
      return;
    }
    // Written before the pods are created (controller.h says why), so said before too.
    decision_.events.push_back({"Normal", "CreatingGroup",
                                "creating the worker group again (restart " +
                                    std::to_string(status.restarts + status.disruptions) + ")"});
    status.state = kPending;
    CreateGroup();
  }

  void CreateGroup() {
    JobStatus& status = decision_.status;
    for (std::int64_t rank = 0; rank < spec_.replicas; ++rank) decision_.create_ranks.push_back(rank);
    status.group_created_time = now_;
    if (!status.start_time) status.start_time = now_;
  }

  // Restarts the group: counted against backoffLimit unless it was a disruption.
  void Restart(bool counted, const std::string& reason, const std::string& message) {
    JobStatus& status = decision_.status;
    if (counted && status.restarts >= spec_.run_policy.backoff_limit) {
      Finish(kFailed, "BackoffLimitExceeded",
             message + "; the group was restarted " + std::to_string(status.restarts) +
                 " time(s), spec.runPolicy.backoffLimit is " + std::to_string(spec_.run_policy.backoff_limit));
      StopUnfinished();  // the failed group is not left running
      return;
    }
    if (counted) {
      ++status.restarts;
    } else {
      ++status.disruptions;
    }
    status.state = kRestarting;
    status.reason = reason;
    status.message = message;
    status.restart_time = now_;
    status.group_created_time.reset();
    status.progress = nullptr;
    decision_.conditions.push_back({kRestarting, kube::ConditionStatus::kTrue, reason, message});
    decision_.conditions.push_back({kRunning, kube::ConditionStatus::kFalse, kRestarting, message});
    decision_.events.push_back({"Warning", reason, message + "; restarting the whole group"});
    DeleteAll();
  }

  // Whether some worker failed with a known finishedAt strictly before `at`; a tie, or an
  // unknown time on either side, leaves rank 0's success standing.
  static bool FailedBefore(const std::map<std::int64_t, const WorkerObservation*>& by_rank,
                           const std::optional<TimePoint>& at) {
    if (!at) return false;
    for (const auto& [rank, worker] : by_rank) {
      if (worker->phase == Phase::kPodFailed && worker->finished && *worker->finished < *at) return true;
    }
    return false;
  }

  void Active() {
    JobStatus& status = decision_.status;
    std::map<std::int64_t, const WorkerObservation*> by_rank;
    for (const WorkerObservation& worker : workers_) {
      if (worker.rank < 0 || worker.rank >= spec_.replicas || by_rank.contains(worker.rank)) {
        Delete(worker);  // not one of ours any more
        continue;
      }
      by_rank[worker.rank] = &worker;
    }

    // Rank 0 decides success (as Kubeflow's master replica does): the others finish with it,
    // unless one failed before rank 0 finished: then the group restarts however late this
    // look comes (a slow look can see rank 0 done after a worker's failure).
    if (auto it = by_rank.find(0); it != by_rank.end() && it->second->phase == Phase::kPodSucceeded &&
                                   !FailedBefore(by_rank, it->second->finished)) {
      status.result = ResultFrom(*it->second);
      status.progress = nullptr;
      Finish(kSucceeded, "JobSucceeded", "rank 0 completed training");
      return;
    }

    // Disruptions first: an evicted or deleted worker takes its peers down with it.
    for (const auto& [rank, worker] : by_rank) {
      if (worker->disrupted || (worker->deleting && worker->phase != Phase::kPodFailed)) {
        Restart(false, "WorkerDisrupted", Describe(*worker) + " was disrupted (eviction, preemption, deletion or node loss)");
        return;
      }
    }
    std::vector<const WorkerObservation*> failed;
    bool still_running = false;
    for (const auto& [rank, worker] : by_rank) {
      if (worker->phase == Phase::kPodFailed) failed.push_back(worker);
      if (worker->phase == Phase::kPodPending || worker->phase == Phase::kPodRunning) still_running = true;
    }
    if (!failed.empty()) {
      TimePoint first = now_;
      for (const WorkerObservation* worker : failed) first = std::min(first, worker->finished.value_or(now_));
      const WorkerObservation* retryable = nullptr;
      const WorkerObservation* permanent = nullptr;
      for (const WorkerObservation* worker : failed) {
        if (worker->finished.value_or(now_) > first + kFailureWave) continue;  // a consequence
        const bool fails = worker->exit_code && spec_.failure_policy.Classify(*worker->exit_code) == api::FailureAction::kFail;
        if (fails && permanent == nullptr) permanent = worker;
        if (!fails && retryable == nullptr) retryable = worker;
      }
      if (retryable != nullptr) {
        Restart(true, "WorkerFailed", Describe(*retryable));
        return;
      }
      if (still_running && now_ < first + kFailureSettle) {
        RequeueAt(decision_, first + kFailureSettle, now_);
        return;
      }
      if (permanent == nullptr) permanent = failed.front();
      Finish(kFailed, "PermanentFailure", Describe(*permanent) + " (spec.failurePolicy: this exit code fails the job)");
      StopUnfinished();
      return;
    }
    const bool group_started = status.state == kRunning;
    if (group_started && std::ssize(by_rank) < spec_.replicas) {
      for (std::int64_t rank = 0; rank < spec_.replicas; ++rank) {
        if (!by_rank.contains(rank)) {
          Restart(false, "WorkerDisrupted", "worker " + std::to_string(rank) + " disappeared while the group was running");
          return;
        }
      }
    }

    // A pod that waits for something only the user can fix fails the job after a bounded wait.
    for (const auto& [rank, worker] : by_rank) {
      if (worker->phase != Phase::kPodPending || !kCannotStartReasons.contains(worker->reason) || !worker->created) continue;
      const TimePoint at = *worker->created + options_.start_timeout;
      if (now_ >= at) {
        Finish(kFailed, "WorkerCannotStart",
               worker->name + " could not start within " +
                   std::to_string(duration_cast<std::chrono::seconds>(options_.start_timeout).count()) +
                   " s: " + worker->reason + (worker->message.empty() ? "" : ": " + worker->message.substr(0, 256)));
        DeleteAll();
        return;
      }
      RequeueAt(decision_, at, now_);
    }

    if (by_rank.empty() && status.state != kRunning) {
      status.state = kPending;
      CreateGroup();
      return;
    }
    // Creation interrupted (e.g. the operator restarted midway): finish it, same names.
    for (std::int64_t rank = 0; rank < spec_.replicas; ++rank) {
      if (!by_rank.contains(rank)) decision_.create_ranks.push_back(rank);
    }
    if (!status.group_created_time || !status.start_time) {
      // The look that created the group wrote nothing (the controller leaves the status to
      // the look that sees the pods): they say when the group was made.
      TimePoint made = now_;
      for (const auto& [rank, worker] : by_rank) made = std::min(made, worker->created.value_or(now_));
      if (!status.group_created_time) {
        status.group_created_time = made;
        // Nor did it say so: the look that first records the whole group does (MarkPodsCreated).
        if (decision_.create_ranks.empty()) {
          decision_.events.push_back(PodsCreatedEvent(std::ssize(by_rank), spec_.replicas, status.restarts + status.disruptions));
        }
      }
      if (!status.start_time) status.start_time = made;
    }
    if (status.state.empty()) status.state = kPending;
    if (decision_.create_ranks.empty()) decision_.conditions.push_back(PodsCreated(spec_.replicas));

    std::int64_t running = 0;
    for (const auto& [rank, worker] : by_rank) {
      if (worker->phase == Phase::kPodRunning || worker->phase == Phase::kPodSucceeded) ++running;
    }
    if (running == spec_.replicas) {
      if (status.state != kRunning) {
        decision_.events.push_back({"Normal", "Running", "all " + std::to_string(spec_.replicas) + " workers are running"});
        decision_.conditions.push_back({kRestarting, kube::ConditionStatus::kFalse, "Running", "the group is running"});
      }
      status.state = kRunning;
      status.reason.clear();
      status.message.clear();
      decision_.conditions.push_back({kRunning, kube::ConditionStatus::kTrue, "AllWorkersRunning",
                                      "all " + std::to_string(spec_.replicas) + " workers are running"});
      return;
    }
    // Gang: not every worker placed on a node within the timeout releases them all (no
    // half-placed job holds GPUs) and tries again with backoff. Once all are bound they
    // hold what they need; starting them is the kubelet's (start_timeout covers what
    // never starts). The clock starts when the last pod was created, so neither a backlog
    // in this operator nor a slow API server counts against the group.
    std::int64_t scheduled = 0;
    TimePoint clock_from = *status.group_created_time;
    for (const auto& [rank, worker] : by_rank) {
      if (worker->scheduled || worker->phase != Phase::kPodPending) ++scheduled;
      if (decision_.create_ranks.empty() && worker->created) clock_from = std::max(clock_from, *worker->created);
    }
    if (scheduled == spec_.replicas) return;
    const TimePoint gang_at = clock_from + std::chrono::seconds(spec_.gang.timeout_seconds);
    if (now_ >= gang_at) {
      std::string waiting;
      for (std::int64_t rank = 0; rank < spec_.replicas; ++rank) {
        auto it = by_rank.find(rank);
        if (it != by_rank.end() && (it->second->scheduled || it->second->phase != Phase::kPodPending)) continue;
        if (!waiting.empty()) waiting += ", ";
        if (it == by_rank.end()) {
          waiting += "worker " + std::to_string(rank) + " not created";
        } else {
          waiting += it->second->name + " " + (it->second->reason.empty() ? "Pending" : it->second->reason);
        }
        if (waiting.size() > 300) {
          waiting += ", ...";
          break;
        }
      }
      Restart(true, "GangTimeout",
              "only " + std::to_string(scheduled) + " of " + std::to_string(spec_.replicas) +
                  " workers were placed on a node " + std::to_string(spec_.gang.timeout_seconds) +
                  " s after the group's last pod was created (" + waiting + "); every pod was released");
      return;
    }
    RequeueAt(decision_, gang_at, now_);
  }

  const api::TrainingJobSpec& spec_;
  const std::vector<WorkerObservation>& workers_;
  TimePoint now_;
  const DecideOptions& options_;
  Decision decision_;
};

// Copies the fields of `from` named in `fields` that exist into `to`.
void CopyFields(const Object& from, Object& to, std::initializer_list<const char*> fields) {
  if (!from.is_object()) return;
  for (const char* field : fields) {
    if (auto it = from.find(field); it != from.end()) to[field] = *it;
  }
}

// The container ObserveWorker reads: the worker container, else the first.
const Object* WorkerContainerStatus(const Object& status) {
  const Object* container = nullptr;
  for (const Object& candidate : ArrayField(status, "containerStatuses")) {
    if (!candidate.is_object()) continue;
    if (container == nullptr || String(candidate, "name") == kWorkerContainer) container = &candidate;
  }
  return container;
}


}  // namespace

WorkerObservation ObserveWorker(const Object& pod, bool node_exists) {
  WorkerObservation worker;
  const Object& metadata = ObjectField(pod, "metadata");
  const Object& status = ObjectField(pod, "status");
  worker.name = String(metadata, "name");
  const std::string rank = String(ObjectField(metadata, "labels"), kReplicaIndexLabel);
  if (!rank.empty() && rank.size() <= 9 && std::all_of(rank.begin(), rank.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    worker.rank = std::stoll(rank);
  }
  const std::string phase = String(status, "phase");
  if (phase == "Running") worker.phase = Phase::kPodRunning;
  if (phase == "Succeeded") worker.phase = Phase::kPodSucceeded;
  if (phase == "Failed") worker.phase = Phase::kPodFailed;
  worker.ready = ConditionTrue(status, "Ready");
  worker.deleting = metadata.contains("deletionTimestamp") && !metadata["deletionTimestamp"].is_null();
  worker.pod_ip = String(status, "podIP");
  worker.created = TimeField(metadata, "creationTimestamp");
  worker.reason = String(status, "reason");
  worker.message = String(status, "message");
  const std::string node = String(ObjectField(pod, "spec"), "nodeName");
  worker.scheduled = !node.empty();
  worker.disrupted = ConditionTrue(status, "DisruptionTarget") || kDisruptionReasons.contains(worker.reason) ||
                     (!node.empty() && !node_exists);

  if (const Object* container = WorkerContainerStatus(status); container != nullptr) {
    const Object& state = ObjectField(*container, "state");
    if (const Object& terminated = ObjectField(state, "terminated"); !terminated.empty()) {
      if (terminated.contains("exitCode") && terminated["exitCode"].is_number_integer()) {
        worker.exit_code = terminated["exitCode"].get<int>();
      }
      if (worker.reason.empty()) worker.reason = String(terminated, "reason");
      worker.finished = TimeField(terminated, "finishedAt");
      if (const std::string message = String(terminated, "message"); !message.empty()) worker.message = message;
    } else if (const Object& waiting = ObjectField(state, "waiting"); !waiting.empty()) {
      worker.reason = String(waiting, "reason");
      worker.message = String(waiting, "message");
    }
  }
  return worker;
}

void ProjectWorkerPod(Object& pod) {
  if (!pod.is_object()) return;
  Object projected = Object::object();
  CopyFields(pod, projected, {"apiVersion", "kind"});
  Object metadata = Object::object();
  CopyFields(ObjectField(pod, "metadata"), metadata,
             {"name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences", "deletionTimestamp",
              "creationTimestamp"});
  projected["metadata"] = std::move(metadata);
  Object spec = Object::object();
  CopyFields(ObjectField(pod, "spec"), spec, {"nodeName"});
  projected["spec"] = std::move(spec);

  const Object& status = ObjectField(pod, "status");
  Object kept = Object::object();
  CopyFields(status, kept, {"phase", "reason", "message", "podIP"});
  Object conditions = Object::array();
  for (const Object& condition : ArrayField(status, "conditions")) {
    const std::string type = String(condition, "type");
    if (type != "Ready" && type != "DisruptionTarget") continue;
    Object entry = Object::object();
    CopyFields(condition, entry, {"type", "status"});
    conditions.push_back(std::move(entry));
  }
  if (!conditions.empty()) kept["conditions"] = std::move(conditions);
  if (const Object* container = WorkerContainerStatus(status); container != nullptr) {
    const Object& state = ObjectField(*container, "state");
    Object kept_state = Object::object();
    if (const Object& terminated = ObjectField(state, "terminated"); !terminated.empty()) {
      CopyFields(terminated, kept_state["terminated"], {"exitCode", "reason", "message", "finishedAt"});
      // An empty object reads as "not terminated": keep it terminated.
      if (kept_state["terminated"].empty()) kept_state["terminated"]["reason"] = "";
    } else if (const Object& waiting = ObjectField(state, "waiting"); !waiting.empty()) {
      CopyFields(waiting, kept_state["waiting"], {"reason", "message"});
      if (kept_state["waiting"].empty()) kept_state["waiting"]["reason"] = "";
    }
    Object entry = Object::object();
    CopyFields(*container, entry, {"name"});
    entry["state"] = std::move(kept_state);
    kept["containerStatuses"] = Object::array({std::move(entry)});
  }
  projected["status"] = std::move(kept);
  pod = std::move(projected);
}

JobStatus ReadStatus(const Object& status) {
  JobStatus job_status;
  if (!status.is_object()) return job_status;
  job_status.state = String(status, "state");
  job_status.reason = String(status, "reason");
  job_status.message = String(status, "message");
  job_status.restarts = Integer(status, "restarts");
  job_status.disruptions = Integer(status, "disruptions");
  job_status.start_time = TimeField(status, "startTime");
  job_status.completion_time = TimeField(status, "completionTime");
  job_status.group_created_time = TimeField(status, "groupCreatedTime");
  job_status.restart_time = TimeField(status, "lastRestartTime");
  const Object& workers = ObjectField(status, "workers");
  job_status.workers.total = Integer(workers, "total");
  job_status.workers.pending = Integer(workers, "pending");
  job_status.workers.running = Integer(workers, "running");
  job_status.workers.ready = Integer(workers, "ready");
  job_status.workers.succeeded = Integer(workers, "succeeded");
  job_status.workers.failed = Integer(workers, "failed");
  if (status.contains("progress") && status["progress"].is_object()) job_status.progress = status["progress"];
  if (status.contains("result") && status["result"].is_object()) job_status.result = status["result"];
  return job_status;
}

void WriteStatus(const JobStatus& job_status, Object& status) {
  if (!status.is_object()) status = Object::object();
  auto set_string = [&](const char* key, const std::string& value) {
    if (value.empty()) {
      status.erase(key);
    } else {
      status[key] = value;
    }
  };
  set_string("state", job_status.state);
  set_string("reason", job_status.reason);
  set_string("message", job_status.message);
  status["restarts"] = job_status.restarts;
  status["disruptions"] = job_status.disruptions;
  SetTimeField(status, "startTime", job_status.start_time);
  SetTimeField(status, "completionTime", job_status.completion_time);
  SetTimeField(status, "groupCreatedTime", job_status.group_created_time);
  SetTimeField(status, "lastRestartTime", job_status.restart_time);
  const WorkerCounts& w = job_status.workers;
  status["workers"] = {{"total", w.total}, {"pending", w.pending}, {"running", w.running},
                       {"ready", w.ready},  {"succeeded", w.succeeded}, {"failed", w.failed}};
  status["workersReady"] = std::to_string(w.ready) + "/" + std::to_string(w.total);  // the printer column
  if (job_status.progress.is_object()) {
    status["progress"] = job_status.progress;
  } else {
    status.erase("progress");
  }
  if (job_status.result.is_object()) {
    status["result"] = job_status.result;
  } else {
    status.erase("result");
  }
}

void MarkPodsCreated(Decision& decision, const JobStatus& previous) {
  if (decision.create_ranks.empty()) return;
  JobStatus& status = decision.status;
  const std::int64_t created = std::ssize(decision.create_ranks);
  status.workers.pending += created;
  decision.conditions.push_back(PodsCreated(status.workers.total));
  // A group no status records yet is announced by the look that records it (Decide).
  if (!previous.group_created_time) return;
  decision.events.push_back(PodsCreatedEvent(created, status.workers.total, status.restarts + status.disruptions));
}

Decision Decide(const api::TrainingJobSpec& spec, const JobStatus& previous,
                const std::vector<WorkerObservation>& workers, TimePoint now, const DecideOptions& options) {
  return Step(spec, previous, workers, now, options).Run();
}

std::chrono::milliseconds RestartBackoff(std::int64_t attempt, const DecideOptions& options) {
  milliseconds delay = options.restart_backoff;
  for (std::int64_t i = 1; i < attempt && delay < options.max_restart_backoff; ++i) delay *= 2;
  return std::min(delay, options.max_restart_backoff);
}

}  // namespace mlscale::controllers::trainingjob
