#include "mlscale/controllers/inference/service_state.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "mlscale/controllers/trainingjob/job_state.h"

namespace mlscale::controllers::inference {
namespace {

using trainingjob::FormatTime;
using trainingjob::ParseTime;
using kube::ConditionStatus;

const RevisionObservation* Find(const std::vector<RevisionObservation>& revisions, const std::string& name) {
  for (const auto& r : revisions) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

RevisionRecord* FindRecord(std::vector<RevisionRecord>& records, const std::string& name) {
  for (auto& r : records) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::int64_t PercentOf(const std::vector<TrafficEntry>& traffic, const std::string& revision) {
  std::int64_t sum = 0;
  for (const auto& entry : traffic) {
    if (entry.revision == revision) sum += entry.percent;
  }
  return sum;
}

std::chrono::milliseconds Until(TimePoint now, TimePoint then) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(then - now);
  return std::max(left, std::chrono::milliseconds(200));
}

std::string StringAt(const Object& object, std::initializer_list<const char*> path) {
  const Object* at = &object;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return "";
    at = &(*at)[key];
  }
  return at->is_string() ? at->get<std::string>() : "";
}

void RequeueWithin(Plan& plan, std::chrono::milliseconds after) {
  if (!plan.requeue_after || after < *plan.requeue_after) plan.requeue_after = after;
}

}  // namespace

std::pair<std::int32_t, std::int32_t> SplitReplicas(std::int64_t total, std::int64_t canary_percent) {
  if (canary_percent <= 0) return {static_cast<std::int32_t>(total), 0};
  if (canary_percent >= 100) return {0, static_cast<std::int32_t>(total)};
  if (total == 0) return {0, 0};
  std::int64_t canary = std::llround(static_cast<double>(total) * static_cast<double>(canary_percent) / 100.0);
  canary = std::max<std::int64_t>(canary, 1);
  std::int64_t main = std::max<std::int64_t>(total - canary, 1);
  return {static_cast<std::int32_t>(main), static_cast<std::int32_t>(canary)};
}

std::vector<TrafficEntry> Redistribute(const std::vector<TrafficEntry>& entries, std::int64_t percent) {
  std::vector<TrafficEntry> out = entries;
  const std::int64_t total = std::accumulate(entries.begin(), entries.end(), std::int64_t{0},
                                             [](std::int64_t sum, const TrafficEntry& e) { return sum + e.percent; });
  if (out.empty() || percent <= 0) return out;
  std::vector<std::pair<double, std::size_t>> remainders;
  std::int64_t given = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    // Equal shares when the old entries carried nothing.
    double exact = total > 0 ? static_cast<double>(percent) * static_cast<double>(entries[i].percent) / static_cast<double>(total)
                             : static_cast<double>(percent) / static_cast<double>(out.size());
    std::int64_t whole = static_cast<std::int64_t>(std::floor(exact));
    out[i].percent += whole;
    given += whole;
    remainders.emplace_back(exact - static_cast<double>(whole), i);
  }
  std::stable_sort(remainders.begin(), remainders.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t k = 0; given < percent; ++k, ++given) out[remainders[k % remainders.size()].second].percent += 1;
  return out;
}

Plan PlanService(const PlanInput& input) {
  Plan plan;
  plan.records = input.records;
  const auto& rollout = input.service->service.spec.rollout;

  // What each revision has done so far.
  for (const auto& target : input.targets) {
    RevisionRecord* record = FindRecord(plan.records, target.revision.name);
    if (record == nullptr) {
      plan.records.push_back({target.revision.name, target.revision.role, target.revision.model.description, "",
                              false, input.now, std::nullopt});
      plan.events.push_back({"Normal", "RevisionCreated",
                             "revision " + target.revision.name + " (" + target.revision.role + ") serves " +
                                 target.revision.model.description});
      record = &plan.records.back();
    }
    record->role = target.revision.role;
    record->retired.reset();
    if (!record->created) record->created = input.now;
  }
  for (const auto& observed : input.revisions) {
    RevisionRecord* record = FindRecord(plan.records, observed.name);
    if (record != nullptr && !observed.served_version.empty()) record->model_version = observed.served_version;
    if (record != nullptr && observed.ready_replicas > 0 && !record->ever_ready) {
      record->ever_ready = true;
      plan.events.push_back({"Normal", "RevisionReady", "revision " + observed.name + " has a ready model server"});
    }
  }
  auto routable = [&](const std::string& name) {
    const RevisionObservation* observed = Find(input.revisions, name);
    if (observed == nullptr) return false;
    if (observed->ready_replicas > 0) return true;
    for (const auto& r : plan.records) {
      if (r.name == name) return r.ever_ready;
    }
    return false;
  };

  if (input.targets.empty()) {
    // A source cannot be resolved: keep what serves (traffic, revisions) as it is.
    plan.traffic = input.traffic;
    for (const auto& observed : input.revisions) plan.replicas[observed.name] = observed.spec_replicas;
  } else {
    std::set<std::string> target_names;
    std::int64_t waiting = 0;  // percent of targets not routable yet
    std::vector<TrafficEntry> traffic;
    for (const auto& target : input.targets) {
      target_names.insert(target.revision.name);
      plan.replicas[target.revision.name] = target.replicas;
      if (target.percent == 0) continue;
      if (routable(target.revision.name)) {
        traffic.push_back({target.revision.name, target.percent});
      } else {
        waiting += target.percent;
      }
    }
    // The revisions that served before (old ones, or a target that already had traffic) take
    // the waiting share, in proportion to what they had.
    std::vector<TrafficEntry> previous;
    for (const auto& entry : input.traffic) {
      if (entry.percent > 0 && routable(entry.revision)) previous.push_back(entry);
    }
    if (waiting > 0 && !previous.empty()) {
      std::vector<TrafficEntry> shares = Redistribute(previous, waiting);
      for (std::size_t i = 0; i < shares.size(); ++i) {
        const std::int64_t share = shares[i].percent - previous[i].percent;
        if (share <= 0) continue;
        auto it = std::find_if(traffic.begin(), traffic.end(),
                               [&](const TrafficEntry& e) { return e.revision == shares[i].revision; });
        if (it != traffic.end()) {
          it->percent += share;
        } else {
          traffic.push_back({shares[i].revision, share});
        }
      }
    } else if (waiting > 0) {
      // Nothing served before: route to the targets anyway (the router holds requests until
      // a replica is ready), so the first requests are not refused.
      traffic.clear();
      for (const auto& target : input.targets) {
        if (target.percent > 0) traffic.push_back({target.revision.name, target.percent});
      }
    }
    plan.traffic = std::move(traffic);

    // Retire what has no traffic and is no target; delete it after the grace.
    for (const auto& observed : input.revisions) {
      if (target_names.contains(observed.name)) continue;
      if (PercentOf(plan.traffic, observed.name) > 0) {
        plan.replicas[observed.name] = observed.spec_replicas;
        continue;
      }
      RevisionRecord* record = FindRecord(plan.records, observed.name);
      if (record == nullptr) {
        plan.records.push_back({observed.name, observed.role, "", "", false, std::nullopt, input.now});
        record = &plan.records.back();
      }
      if (!record->retired) {
        record->retired = input.now;
        plan.events.push_back({"Normal", "RevisionRetired", "revision " + observed.name + " has no traffic: deleted in " +
                                                                std::to_string(rollout.old_revision_grace_seconds) + " s"});
      }
      const TimePoint delete_at = *record->retired + std::chrono::seconds(rollout.old_revision_grace_seconds);
      if (input.now >= delete_at) {
        plan.delete_revisions.push_back(observed.name);
      } else {
        plan.replicas[observed.name] = observed.spec_replicas;
        RequeueWithin(plan, Until(input.now, delete_at));
      }
    }
    // Records of revisions that are gone and no target are dropped.
    std::erase_if(plan.records, [&](const RevisionRecord& r) {
      return !target_names.contains(r.name) && Find(input.revisions, r.name) == nullptr;
    });
  }

  // Conditions (observedGeneration is the reconciler's).
  std::optional<std::string> failure;     // a target's server crash
  std::optional<std::string> not_ready;   // a target still loading
  bool deadline_exceeded = false;
  for (const auto& target : input.targets) {
    if (routable(target.revision.name)) continue;
    const RevisionObservation* observed = Find(input.revisions, target.revision.name);
    if (observed != nullptr && !observed->failure.empty()) failure = target.revision.name + ": " + observed->failure;
    const RevisionRecord* record = nullptr;
    for (const auto& r : plan.records) {
      if (r.name == target.revision.name) record = &r;
    }
    if (record != nullptr && record->created) {
      const TimePoint deadline = *record->created + std::chrono::seconds(rollout.progress_deadline_seconds);
      if (input.now >= deadline) {
        deadline_exceeded = true;
      } else {
        RequeueWithin(plan, Until(input.now, deadline));
      }
    }
    if (!not_ready) not_ready = target.revision.name;
  }
  kube::Condition model_loaded{kModelLoaded, ConditionStatus::kTrue, "Loaded", "every revision has a ready model server"};
  if (input.unresolved) {
    model_loaded = {kModelLoaded, ConditionStatus::kFalse, input.unresolved->reason, input.unresolved->message};
  } else if (failure) {
    model_loaded = {kModelLoaded, ConditionStatus::kFalse, "ServerFailed", *failure};
  } else if (not_ready) {
    model_loaded = {kModelLoaded, ConditionStatus::kFalse, deadline_exceeded ? "ProgressDeadlineExceeded" : "Loading",
                    "revision " + *not_ready + " has no ready model server" +
                        (deadline_exceeded ? " after " + std::to_string(rollout.progress_deadline_seconds) + " s" : "")};
  }
  plan.conditions.push_back(model_loaded);

  bool traffic_routable = !plan.traffic.empty();
  for (const auto& entry : plan.traffic) traffic_routable = traffic_routable && routable(entry.revision);
  kube::Condition ready{kReady, ConditionStatus::kTrue, "Serving", "the routers forward requests to ready revisions"};
  if (input.router_ready == 0) {
    ready = {kReady, ConditionStatus::kFalse, "RouterNotReady", "no router replica is ready"};
  } else if (!traffic_routable) {
    ready = model_loaded.status == ConditionStatus::kFalse
                ? kube::Condition{kReady, ConditionStatus::kFalse, model_loaded.reason, model_loaded.message}
                : kube::Condition{kReady, ConditionStatus::kFalse, "RevisionNotReady", "no revision has a ready model server"};
  }
  plan.conditions.push_back(ready);

  bool retiring = false;
  for (const auto& record : plan.records) retiring = retiring || record.retired.has_value();
  kube::Condition rolling{kRolloutInProgress, ConditionStatus::kFalse, "RolloutComplete",
                          "the traffic is on the revisions the spec asks for"};
  if (input.unresolved) {
    rolling = {kRolloutInProgress, ConditionStatus::kFalse, "ModelNotResolved", input.unresolved->message};
  } else if (deadline_exceeded) {
    rolling = {kRolloutInProgress, ConditionStatus::kFalse, "ProgressDeadlineExceeded",
               "revision " + not_ready.value_or("") + " was not ready within " +
                   std::to_string(rollout.progress_deadline_seconds) + " s; the traffic stays where it was"};
  } else if (not_ready) {
    rolling = {kRolloutInProgress, ConditionStatus::kTrue, "WaitingForRevision",
               "waiting for revision " + *not_ready + " to be ready"};
  } else if (retiring) {
    rolling = {kRolloutInProgress, ConditionStatus::kTrue, "DrainingOldRevision",
               "old revisions drain before they are deleted"};
  }
  plan.conditions.push_back(rolling);
  return plan;
}

std::string ServerPodFailure(const Object& pod) {
  if (!pod.is_object() || !pod.contains("status") || !pod["status"].is_object() ||
      !pod["status"].contains("containerStatuses") || !pod["status"]["containerStatuses"].is_array()) {
    return "";
  }
  for (const auto& container : pod["status"]["containerStatuses"]) {
    if (!container.is_object()) continue;
    const Object state = container.contains("state") && container["state"].is_object() ? container["state"] : Object::object();
    const Object last =
        container.contains("lastState") && container["lastState"].is_object() ? container["lastState"] : Object::object();
    const bool restarted = container.contains("restartCount") && container["restartCount"].is_number_integer() &&
                           container["restartCount"].get<std::int64_t>() > 0;
    std::string reason = StringAt(state, {"waiting", "reason"});
    const bool failing = reason == "CrashLoopBackOff" || reason == "ErrImagePull" || reason == "ImagePullBackOff" ||
                         reason == "CreateContainerConfigError" ||
                         (restarted && last.contains("terminated"));
    if (!failing) continue;
    if (reason.empty()) reason = "Restarting";
    std::string message = StringAt(last, {"terminated", "message"});
    if (message.empty()) message = StringAt(state, {"waiting", "message"});
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    if (message.size() > 512) message = "..." + message.substr(message.size() - 512);
    std::string exit_code;
    if (last.contains("terminated") && last["terminated"].is_object()) exit_code = " (exit " + std::to_string((last["terminated"].contains("exitCode") && last["terminated"]["exitCode"].is_number_integer() ? last["terminated"]["exitCode"].get<int>() : 0)) + ")";
    return "server container " + reason + exit_code + (message.empty() ? "" : ": " + message);
  }
  return "";
}

std::vector<TrafficEntry> ReadTraffic(const Object& status) {
  std::vector<TrafficEntry> traffic;
  if (!status.is_object() || !status.contains("traffic") || !status["traffic"].is_array()) return traffic;
  for (const auto& entry : status["traffic"]) {
    if (!entry.is_object() || !entry.contains("revision") || !entry["revision"].is_string() || !entry.contains("percent") ||
        !entry["percent"].is_number_integer()) {
      continue;
    }
    traffic.push_back({entry["revision"].get<std::string>(), entry["percent"].get<std::int64_t>()});
  }
  return traffic;
}

std::vector<RevisionRecord> ReadRecords(const Object& status) {
  std::vector<RevisionRecord> records;
  if (!status.is_object() || !status.contains("revisions") || !status["revisions"].is_array()) return records;
  for (const auto& entry : status["revisions"]) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string()) continue;
    RevisionRecord record;
    record.name = entry["name"].get<std::string>();
    record.role = entry.value("role", "");
    record.model = entry.value("model", "");
    record.model_version = entry.value("modelVersion", "");
    record.ever_ready = entry.value("everReady", false);
    if (entry.contains("createdTime") && entry["createdTime"].is_string()) record.created = ParseTime(entry["createdTime"].get<std::string>());
    if (entry.contains("retiredTime") && entry["retiredTime"].is_string()) record.retired = ParseTime(entry["retiredTime"].get<std::string>());
    records.push_back(std::move(record));
  }
  return records;
}

Object StatusJson(const PlanInput& input, const Plan& plan) {
  const ServiceRef& ref = *input.service;
  std::int64_t replicas = 0, ready = 0, desired = 0;
  for (const auto& observed : input.revisions) {
    replicas += observed.replicas;
    ready += observed.ready_replicas;
  }
  for (const auto& [name, count] : plan.replicas) {
    bool deleted = std::find(plan.delete_revisions.begin(), plan.delete_revisions.end(), name) != plan.delete_revisions.end();
    if (!deleted) desired += count;
  }
  Object status = Object::object();
  status["url"] = Url(ref);
  status["replicas"] = replicas;
  status["readyReplicas"] = ready;
  status["desiredReplicas"] = desired;
  status["readyDesired"] = std::to_string(ready) + "/" + std::to_string(desired);
  status["selector"] = PredictorSelector(ref);
  Object traffic = Object::array();
  for (const auto& entry : plan.traffic) traffic.push_back({{"revision", entry.revision}, {"percent", entry.percent}});
  status["traffic"] = std::move(traffic);
  std::int64_t canary_percent = 0;
  for (const auto& target : input.targets) {
    if (target.revision.role == "canary") canary_percent += PercentOf(plan.traffic, target.revision.name);
    if (target.revision.role == "default") {
      for (const auto& r : plan.records) {
        if (r.name == target.revision.name && r.ever_ready) status["latestReadyRevision"] = r.name;
      }
    }
  }
  status["canaryTrafficPercent"] = canary_percent;
  if (input.metric) {
    char text[64];
    std::snprintf(text, sizeof text, "%.1f %s", input.metric->value, input.metric->name.c_str());
    status["observedMetric"] = {{"name", input.metric->name}, {"value", input.metric->value}, {"text", text}};
  }
  Object revisions = Object::array();
  for (const auto& record : plan.records) {
    Object entry = {{"name", record.name},       {"role", record.role},
                    {"model", record.model},     {"modelVersion", record.model_version},
                    {"everReady", record.ever_ready}, {"trafficPercent", PercentOf(plan.traffic, record.name)}};
    if (record.created) entry["createdTime"] = FormatTime(*record.created);
    if (record.retired) entry["retiredTime"] = FormatTime(*record.retired);
    if (const RevisionObservation* observed = Find(input.revisions, record.name)) {
      entry["replicas"] = observed->replicas;
      entry["readyReplicas"] = observed->ready_replicas;
    }
    if (auto it = plan.replicas.find(record.name); it != plan.replicas.end()) entry["desiredReplicas"] = it->second;
    revisions.push_back(std::move(entry));
  }
  status["revisions"] = std::move(revisions);
  return status;
}

}  // namespace mlscale::controllers::inference
