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
  if (metrics_ != nullptr) metrics_->Set(kDepthMetric, {{"name", options_.name}}, static_cast<double>(queue_.size()));
}

void WorkQueue::AddLocked(const std::string& key) {
  if (shutting_down_ || dirty_.contains(key)) return;
  dirty_.insert(key);
  added_at_.emplace(key, Clock::now());
  if (metrics_ != nullptr) metrics_->Add(kAddsMetric, {{"name", options_.name}});
  if (processing_.contains(key)) return;  // requeued by Done
  queue_.push_back(key);
  PublishDepthLocked();
  ready_.notify_one();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard lock(mutex_);
  AddLocked(key);
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
  ready_.wait(lock, [this] { return !queue_.empty() || shutting_down_; });
  if (queue_.empty()) return std::nullopt;
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  processing_.insert(key);
  dirty_.erase(key);
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
  if (dirty_.contains(key) && !shutting_down_) {
    queue_.push_back(key);
    PublishDepthLocked();
    ready_.notify_one();
  }
}

void WorkQueue::ShutDown() {
  std::lock_guard lock(mutex_);
  shutting_down_ = true;
  queue_.clear();
  dirty_.clear();
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
  return queue_.size();
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
      AddLocked(key);
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
