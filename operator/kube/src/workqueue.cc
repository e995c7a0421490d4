#include "mlscale/kube/workqueue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "mlscale/kube/metrics.h"

namespace mlscale::kube {
namespace {
constexpr const char* kDepthMetric = "mlscale_kube_workqueue_depth";
constexpr const char* kAddsMetric = "mlscale_kube_workqueue_adds_total";
constexpr const char* kRetriesMetric = "mlscale_kube_workqueue_retries_total";
constexpr const char* kWaitMetric = "mlscale_kube_workqueue_queue_duration_seconds";
}  // namespace

WorkQueue::WorkQueue(WorkQueueOptions options, Metrics* metrics)
    : options_(std::move(options)), metrics_(metrics), overall_(options_.overall_qps, options_.overall_burst) {
  if (metrics_ != nullptr) {
    metrics_->Describe(kDepthMetric, "Keys waiting in the work queue.");
    metrics_->Describe(kAddsMetric, "Keys added to the work queue.");
    metrics_->Describe(kRetriesMetric, "Keys requeued with backoff after a failure.");
    metrics_->Describe(kWaitMetric, "Seconds a key waited in the queue before a worker took it.");
  }
  delay_thread_ = std::jthread([this](std::stop_token stop) { DelayLoop(stop); });
}

WorkQueue::~WorkQueue() {
  ShutDown();
  delay_thread_.request_stop();
  delayed_changed_.notify_all();
}

void WorkQueue::PublishDepthLocked() {
  if (metrics_ != nullptr) metrics_->Set(kDepthMetric, {{"name", options_.name}}, static_cast<double>(waiting_));
}

void WorkQueue::PushLocked(const std::string& key) {
  (low_.contains(key) ? low_queue_ : queue_).push_back(key);
  ++waiting_;
  PublishDepthLocked();
  ready_.notify_one();
}

void WorkQueue::AddLocked(const std::string& key, Priority priority) {
  if (shutting_down_) return;
  if (dirty_.contains(key)) {
    if (priority == Priority::kNormal && low_.erase(key) > 0 && !processing_.contains(key)) {
      queue_.push_back(key);  // moved up; its entry in low_queue_ is now stale
      ready_.notify_one();
    }
    return;
  }
  dirty_.insert(key);
  if (priority == Priority::kLow) low_.insert(key);
  added_at_.emplace(key, Clock::now());
  if (metrics_ != nullptr) metrics_->Add(kAddsMetric, {{"name", options_.name}});
  if (processing_.contains(key)) return;  // requeued by Done
  PushLocked(key);
}

void WorkQueue::Add(const std::string& key, Priority priority) {
  std::lock_guard lock(mutex_);
  AddLocked(key, priority);
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::milliseconds delay) {
  if (delay.count() <= 0) return Add(key);
  std::lock_guard lock(mutex_);
  if (shutting_down_) return;
  const Clock::time_point ready_at = Clock::now() + delay;
  auto existing = delayed_by_key_.find(key);
  if (existing != delayed_by_key_.end()) {
    if (existing->second->first <= ready_at) return;  // an earlier look is already due
    delayed_.erase(existing->second);
    delayed_by_key_.erase(existing);
  }
  delayed_by_key_.emplace(key, delayed_.emplace(ready_at, key));
  delayed_changed_.notify_all();
}

void WorkQueue::AddRateLimited(const std::string& key) {
  std::chrono::milliseconds per_key;
  {
    std::lock_guard lock(mutex_);
    int failures = failures_[key]++;
    double delay = static_cast<double>(options_.base_delay.count()) * std::pow(2.0, std::min(failures, 40));
    per_key = std::chrono::milliseconds(
        static_cast<int64_t>(std::min(delay, static_cast<double>(options_.max_delay.count()))));
    if (metrics_ != nullptr) metrics_->Add(kRetriesMetric, {{"name", options_.name}});
  }
  auto overall = std::chrono::duration_cast<std::chrono::milliseconds>(overall_.Reserve());
  AddAfter(key, std::max(per_key, overall));
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard lock(mutex_);
  failures_.erase(key);
}

int WorkQueue::Failures(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock lock(mutex_);
  std::string key;
  while (true) {
    ready_.wait(lock, [this] { return !queue_.empty() || !low_queue_.empty() || shutting_down_; });
    if (!queue_.empty()) {
      key = std::move(queue_.front());
      queue_.pop_front();
      break;
    }
    if (low_queue_.empty()) return std::nullopt;  // shut down
    key = std::move(low_queue_.front());
    low_queue_.pop_front();
    // Live only while the key waits at kLow and nobody has it.
    if (low_.contains(key) && !processing_.contains(key)) {
      low_.erase(key);
      break;
    }
  }
  processing_.insert(key);
  dirty_.erase(key);
  --waiting_;
  auto added = added_at_.find(key);
  if (added != added_at_.end()) {
    const double waited = std::chrono::duration<double>(Clock::now() - added->second).count();
    if (metrics_ != nullptr) metrics_->Observe(kWaitMetric, {{"name", options_.name}}, waited);
    spdlog::trace("queue {}: {} waited {:.1f} ms", options_.name, key, waited * 1000);
    added_at_.erase(added);
  }
  PublishDepthLocked();
  return key;
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard lock(mutex_);
  processing_.erase(key);
  if (dirty_.contains(key) && !shutting_down_) PushLocked(key);
}

void WorkQueue::ShutDown() {
  std::lock_guard lock(mutex_);
  shutting_down_ = true;
  queue_.clear();
  low_queue_.clear();
  dirty_.clear();
  low_.clear();
  waiting_ = 0;
  delayed_.clear();
  delayed_by_key_.clear();
  PublishDepthLocked();
  ready_.notify_all();
  delayed_changed_.notify_all();
}

bool WorkQueue::ShuttingDown() const {
  std::lock_guard lock(mutex_);
  return shutting_down_;
}

size_t WorkQueue::Len() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

size_t WorkQueue::DelayedLen() const {
  std::lock_guard lock(mutex_);
  return delayed_.size();
}

void WorkQueue::DelayLoop(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    Clock::time_point now = Clock::now();
    while (!delayed_.empty() && delayed_.begin()->first <= now) {
      std::string key = std::move(delayed_.begin()->second);
      delayed_.erase(delayed_.begin());
      delayed_by_key_.erase(key);
      AddLocked(key, Priority::kNormal);
    }
    if (delayed_.empty()) {
      delayed_changed_.wait(lock, stop, [this] { return !delayed_.empty(); });
    } else {
      Clock::time_point next = delayed_.begin()->first;
      delayed_changed_.wait_until(lock, stop, next, [this, next] {
        return !delayed_.empty() && delayed_.begin()->first < next;
      });
    }
  }
}

}  // namespace mlscale::kube
