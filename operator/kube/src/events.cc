#include "mlscale/kube/events.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "mlscale/kube/errors.h"
#include "mlscale/kube/time_format.h"

namespace mlscale::kube {
namespace {
constexpr const char* kDroppedMetric = "mlscale_kube_events_dropped_total";
constexpr size_t kMaxRemembered = 4096;  // bounds memory; forgetting only costs a duplicate Event
}  // namespace

SimilarEventAggregator::Result SimilarEventAggregator::Aggregate(const std::string& similar_key,
                                                                const std::string& message,
                                                                std::chrono::steady_clock::time_point now) {
  auto [it, inserted] = records_.try_emplace(similar_key);
  Record& record = it->second;
  // As client-go: the window runs from the last similar event, so a steady trickle keeps
  // being combined, and a quiet spell longer than the interval starts afresh.
  if (!inserted && now - record.last > options_.max_interval) record.messages.clear();
  record.last = now;
  record.messages.insert(message);
  if (record.messages.size() < options_.max_events) {
    if (records_.size() > kMaxRemembered) records_.clear();  // forgetting only delays combining
    return {false, message};
  }
  // Do not let the set grow beyond the threshold (client-go pops any one).
  record.messages.erase(record.messages.begin());
  return {true, kCombinedPrefix + message};
}

EventRecorder::EventRecorder(Client& client, std::string component, EventRecorderOptions options, Metrics* metrics)
    : client_(client), component_(std::move(component)), options_(options), metrics_(metrics),
      similar_(options.similar) {
  if (metrics_ != nullptr) {
    metrics_->Describe(kDroppedMetric, "Events not written, by reason (queue_full, rate_limited).");
  }
  writer_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

EventRecorder::~EventRecorder() {
  Flush(options_.flush_on_destroy);
  writer_.request_stop();
  changed_.notify_all();
}

void EventRecorder::Drop(const char* reason) {
  if (metrics_ != nullptr) metrics_->Add(kDroppedMetric, {{"reason", reason}});
}

bool EventRecorder::AllowLocked(const std::string& uid) {
  auto now = std::chrono::steady_clock::now();
  auto [it, inserted] = buckets_.try_emplace(uid, Bucket{static_cast<double>(options_.per_object_burst), now});
  Bucket& bucket = it->second;
  if (!inserted && options_.per_object_refill.count() > 0) {
    double refill = std::chrono::duration<double>(now - bucket.refilled) /
                    std::chrono::duration<double>(options_.per_object_refill);
    bucket.tokens = std::min<double>(options_.per_object_burst, bucket.tokens + refill);
    bucket.refilled = now;
  }
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  if (buckets_.size() > kMaxRemembered) buckets_.clear();  // forgetting only lets a burst through again
  return true;
}

void EventRecorder::Record(const Object& involved, const std::string& type, const std::string& reason,
                           const std::string& message) {
  const std::string similar_key = UidOf(involved) + "\x1f" + type + "\x1f" + reason;
  const std::string now = TimeNow();
  std::lock_guard lock(mutex_);
  // Combined events all share one key (the similarity key), so they become one Event
  // whose count grows; the message is the latest one combined.
  const SimilarEventAggregator::Result similar =
      similar_.Aggregate(similar_key, message, std::chrono::steady_clock::now());
  const std::string key = similar.combined ? similar_key : similar_key + "\x1f" + message;
  if (auto waiting = pending_.find(key); waiting != pending_.end()) {
    // The same event is still queued: aggregate, no new entry, no token spent.
    ++waiting->second.count;
    waiting->second.last_timestamp = now;
    waiting->second.message = similar.message;
    return;
  }
  if (!AllowLocked(UidOf(involved))) return Drop("rate_limited");
  if (pending_.size() >= options_.queue_size) return Drop("queue_full");
  std::string namespace_name = NamespaceOf(involved);
  if (namespace_name.empty()) namespace_name = "default";  // events on cluster-scoped objects
  Pending pending{{{"apiVersion", involved.value("apiVersion", "")},
                   {"kind", involved.value("kind", "")},
                   {"namespace", NamespaceOf(involved)},
                   {"name", NameOf(involved)},
                   {"uid", UidOf(involved)},
                   {"resourceVersion", ResourceVersionOf(involved)}},
                  namespace_name, type, reason, similar.message, 1, now, now};
  pending_.emplace(key, std::move(pending));
  order_.push_back(key);
  changed_.notify_all();
}

bool EventRecorder::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [this] { return order_.empty() && !writing_; });
}

void EventRecorder::Run(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, stop, [this] { return !order_.empty(); });
    if (stop.stop_requested()) return;  // the destructor flushed what it could
    std::string key = std::move(order_.front());
    order_.pop_front();
    auto node = pending_.extract(key);
    writing_ = true;
    lock.unlock();
    Write(key, std::move(node.mapped()), stop);
    lock.lock();
    writing_ = false;
    changed_.notify_all();
  }
}

void EventRecorder::Write(const std::string& key, Pending pending, std::stop_token stop) {
  const Resource events = resources::Events();
  // Bounded, so a stalled API server cannot hold the recorder (and Flush) forever.
  const CallOptions call = CallOptions::Within(std::chrono::seconds(10), std::move(stop));
  auto found = written_.find(key);
  if (found != written_.end()) {
    Written& written = found->second;
    StatusOr<Object> patched = client_.Patch(
        events, pending.namespace_name, written.name, PatchType::kMerge,
        {{"count", written.count + pending.count},
         {"lastTimestamp", pending.last_timestamp},
         {"message", pending.message}},  // a combined Event shows the latest message
        {}, call);
    if (patched.ok()) {
      written.count += pending.count;
      return;
    }
    if (!IsNotFound(patched.status())) {
      spdlog::warn("events: updating {}: {}", written.name, patched.status().ToString());
      return;
    }
    written_.erase(found);  // the Event expired (TTL): write a new one
  }
  thread_local std::mt19937_64 random(std::random_device{}());
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(random()));
  const std::string name = pending.involved.value("name", "") + "." + suffix;
  Object event = {{"apiVersion", "v1"},
                  {"kind", "Event"},
                  {"metadata", {{"name", name}, {"namespace", pending.namespace_name}}},
                  {"involvedObject", pending.involved},
                  {"type", pending.type},
                  {"reason", pending.reason},
                  {"message", pending.message},
                  {"source", {{"component", component_}}},
                  {"reportingComponent", component_},
                  {"firstTimestamp", pending.first_timestamp},
                  {"lastTimestamp", pending.last_timestamp},
                  {"count", pending.count}};
  StatusOr<Object> created = client_.Create(events, pending.namespace_name, event, call);
  if (!created.ok()) {
    spdlog::warn("events: recording {} on {}/{}: {}", pending.reason, pending.namespace_name,
                 pending.involved.value("name", ""), created.status().ToString());
    return;
  }
  if (written_.size() >= kMaxRemembered) written_.clear();
  written_[key] = Written{name, pending.count};
}

}  // namespace mlscale::kube
