// What the autoscaler reads from the router: a revision's concurrency averaged over time
// and its request rate, both over a sliding window (1 s by default) of fixed buckets.
// Pure (time is passed in) and not thread-safe: the owner locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace mlscale::router {

using Clock = std::chrono::steady_clock;

// The window is `buckets` buckets of `window / buckets` each; a figure covers the bucket
// now being filled and the buckets before it that fit in the window, divided by the time
// they span (so a figure read 10 ms into a bucket is not diluted by an empty remainder).
class SlidingWindow {
 public:
  explicit SlidingWindow(std::chrono::milliseconds window = std::chrono::milliseconds(1000), int buckets = 10);

  // Changes the tracked level (e.g. requests in flight) at `now` by `delta`; the level is
  // integrated over time for AverageLevel().
  void AddLevel(Clock::time_point now, int64_t delta);
  // Counts `count` events (e.g. requests arrived) at `now`, for EventsPerSecond().
  void AddEvents(Clock::time_point now, int64_t count = 1);

  int64_t level() const { return level_; }
  // The time-weighted mean of the level over the window ending at `now`.
  double AverageLevel(Clock::time_point now);
  // Events in the window ending at `now`, per second.
  double EventsPerSecond(Clock::time_point now);

 private:
  struct Bucket {
    int64_t index = -1;        // absolute bucket number (time / width); -1 unused
    double level_seconds = 0;  // integral of the level over the bucket's time
    int64_t events = 0;
  };
  // Integrates the level from last_ to now into the buckets it crosses.
  void Advance(Clock::time_point now);
  Bucket& BucketAt(int64_t index);
  // The time the figures cover: the full buckets of the window before `now`'s bucket plus
  // the part of the current one, but no earlier than the first use.
  double SpanSeconds(Clock::time_point now) const;

  Clock::duration width_;
  std::vector<Bucket> ring_;
  int64_t level_ = 0;
  Clock::time_point last_{};
  Clock::time_point start_{};
  bool started_ = false;
};

}  // namespace mlscale::router
