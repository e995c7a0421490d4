// A token bucket: `qps` tokens per second (qps <= 0: unlimited), at most `burst` saved
// up. Thread-safe.
#pragma once

#include <chrono>
#include <mutex>
#include <stop_token>

namespace mlscale::kube {

class RateLimiter {
 public:
  RateLimiter(double qps, int burst);
  // Blocks until a token is available (or `stop` is requested: returns false).
  bool Acquire(std::stop_token stop = {});
  // Takes a token and returns how long the caller must wait before using it (zero when
  // one was available). Never blocks; used where the wait is scheduled elsewhere.
  std::chrono::nanoseconds Reserve();

 private:
  using Clock = std::chrono::steady_clock;
  std::mutex mutex_;
  double qps_;
  double burst_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace mlscale::kube
