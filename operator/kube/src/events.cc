#include "mlscale/kube/events.h"

#include <spdlog/spdlog.h>

#include <random>

#include "mlscale/kube/errors.h"
#include "mlscale/kube/time_format.h"

namespace mlscale::kube {

EventRecorder::EventRecorder(Client& client, std::string component)
    : client_(client), component_(std::move(component)) {}

void EventRecorder::Record(const Object& involved, const std::string& type, const std::string& reason,
                           const std::string& message) {
  const Resource events = resources::Events();
  std::string namespace_name = NamespaceOf(involved);
  if (namespace_name.empty()) namespace_name = "default";  // events on cluster-scoped objects
  const std::string dedup_key = UidOf(involved) + "\x1f" + type + "\x1f" + reason + "\x1f" + message;
  const std::string now = TimeNow();

  std::lock_guard lock(mutex_);
  auto found = recorded_.find(dedup_key);
  if (found != recorded_.end()) {
    Recorded& recorded = found->second;
    StatusOr<Object> patched = client_.Patch(
        events, recorded.namespace_name, recorded.name, PatchType::kMerge,
        {{"count", recorded.count + 1}, {"lastTimestamp", now}});
    if (patched.ok()) {
      ++recorded.count;
      return;
    }
    if (!IsNotFound(patched.status())) {
      spdlog::warn("events: updating {}: {}", recorded.name, patched.status().ToString());
      return;
    }
    recorded_.erase(found);  // the Event expired (TTL): write a new one
  }
  thread_local std::mt19937_64 random(std::random_device{}());
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(random()));
  const std::string name = NameOf(involved) + "." + suffix;
  Object event = {{"apiVersion", "v1"},
                  {"kind", "Event"},
                  {"metadata", {{"name", name}, {"namespace", namespace_name}}},
                  {"involvedObject",
                   {{"apiVersion", involved.value("apiVersion", "")},
                    {"kind", involved.value("kind", "")},
                    {"namespace", NamespaceOf(involved)},
                    {"name", NameOf(involved)},
                    {"uid", UidOf(involved)},
                    {"resourceVersion", ResourceVersionOf(involved)}}},
                  {"type", type},
                  {"reason", reason},
                  {"message", message},
                  {"source", {{"component", component_}}},
                  {"reportingComponent", component_},
                  {"firstTimestamp", now},
                  {"lastTimestamp", now},
                  {"count", 1}};
  StatusOr<Object> created = client_.Create(events, namespace_name, event);
  if (!created.ok()) {
    spdlog::warn("events: recording {} on {}: {}", reason, KeyOf(involved), created.status().ToString());
    return;
  }
  constexpr size_t kMaxRemembered = 4096;  // bounds memory; forgetting only costs a duplicate Event
  if (recorded_.size() >= kMaxRemembered) recorded_.clear();
  recorded_[dedup_key] = Recorded{namespace_name, name, 1};
}

}  // namespace mlscale::kube
