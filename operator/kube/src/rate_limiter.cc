#include "mlscale/kube/rate_limiter.h"

#include <algorithm>
#include <condition_variable>
#include <thread>

namespace mlscale::kube {

RateLimiter::RateLimiter(double qps, int burst)
    : qps_(qps > 0 ? qps : 1e9), burst_(std::max(1, burst)), tokens_(burst_), last_(Clock::now()) {}

std::chrono::nanoseconds RateLimiter::Reserve() {
  std::lock_guard lock(mutex_);
  Clock::time_point now = Clock::now();
  tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * qps_);
  last_ = now;
  tokens_ -= 1.0;  // may go negative: the deficit is the reservation's wait
  if (tokens_ >= 0) return std::chrono::nanoseconds(0);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(-tokens_ / qps_));
}

bool RateLimiter::Acquire(std::stop_token stop) {
  std::chrono::nanoseconds wait = Reserve();
  if (wait.count() == 0) return true;
  // Sleep interruptibly so that shutdown is not delayed by a long queue of waiters.
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait_for(lock, stop, wait, [] { return false; });
  return !stop.stop_requested();
}

}  // namespace mlscale::kube
