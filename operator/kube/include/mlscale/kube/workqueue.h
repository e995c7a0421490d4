// A work queue of object keys for controllers, like client-go's rate-limited queue:
// a key queued many times is processed once; a key is processed by one worker at a
// time (added again while in progress, it is requeued when Done); failures requeue
// with per-key exponential backoff, bounded overall by a token bucket; AddAfter delays
// (a key waits in at most one delayed entry, the earliest asked for, as in client-go).
//
// Two priorities, as in controller-runtime's priority queue: a key added at kLow is handed
// out only when no kNormal key waits. For follow-ups that only bring a status up to date
// (a child changed), so that under a backlog new work goes first and a job's successive
// changes collapse into one look. Strict: a low key waits as long as normal keys keep
// coming. A key waiting at kLow and added again at kNormal moves up; added again at kLow
// while waiting at kNormal it stays normal. Delayed and rate-limited keys come back at kNormal.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "mlscale/kube/rate_limiter.h"
#include "mlscale/kube/metrics.h"

namespace mlscale::kube {


struct WorkQueueOptions {
  std::string name = "queue";  // metrics label
  std::chrono::milliseconds base_delay{5};      // first retry of a failing key
  std::chrono::milliseconds max_delay{300'000};  // cap of the per-key backoff
  double overall_qps = 10;  // retries across all keys (client-go's defaults)
  int overall_burst = 100;
};

class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;
  explicit WorkQueue(WorkQueueOptions options = {}, Metrics* metrics = nullptr);
  ~WorkQueue();  // shuts down
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  enum class Priority { kNormal, kLow };
  void Add(const std::string& key, Priority priority = Priority::kNormal);
  void AddAfter(const std::string& key, std::chrono::milliseconds delay);
  // After a failure: delay = max(per-key backoff base*2^failures, overall limiter's wait).
  void AddRateLimited(const std::string& key);
  // Resets the key's failure count (after a success).
  void Forget(const std::string& key);
  int Failures(const std::string& key) const;

  // Blocks until a key is ready (returns it; the caller must call Done) or the queue
  // is shut down and drained of nothing more to hand out (returns nullopt).
  std::optional<std::string> Get();
  void Done(const std::string& key);
  // Wakes all Get()s; queued keys are dropped, no new keys are accepted.
  void ShutDown();
  bool ShuttingDown() const;
  size_t Len() const;  // keys waiting (not in progress, not delayed)
  size_t DelayedLen() const;  // keys waiting for their delay

 private:
  void AddLocked(const std::string& key, Priority priority);
  void PushLocked(const std::string& key);  // to the deque of its priority, counted as waiting
  void DelayLoop(std::stop_token stop);
  void PublishDepthLocked();

  WorkQueueOptions options_;
  Metrics* metrics_;
  RateLimiter overall_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::string> queue_;  // kNormal keys, in order
  // kLow keys, in order; an entry whose key is not in low_ (moved up, or handed out from
  // an earlier entry) is stale and skipped.
  std::deque<std::string> low_queue_;
  std::unordered_set<std::string> dirty_;       // queued or to requeue when done
  std::unordered_set<std::string> low_;         // the dirty keys at kLow
  size_t waiting_ = 0;                          // dirty keys not in progress (Len)
  std::unordered_set<std::string> processing_;
  std::unordered_map<std::string, Clock::time_point> added_at_;  // for the queue-wait metric
  std::unordered_map<std::string, int> failures_;
  std::multimap<Clock::time_point, std::string> delayed_;
  std::unordered_map<std::string, std::multimap<Clock::time_point, std::string>::iterator> delayed_by_key_;
  std::condition_variable_any delayed_changed_;
  bool shutting_down_ = false;
  std::jthread delay_thread_;
};

}  // namespace mlscale::kube
