#include "mlscale/router/stats_window.h"

#include <algorithm>

namespace mlscale::router {

SlidingWindow::SlidingWindow(std::chrono::milliseconds window, int buckets)
    : width_(std::chrono::duration_cast<Clock::duration>(window) / std::max(1, buckets)),
      ring_(size_t(std::max(1, buckets))) {}

SlidingWindow::Bucket& SlidingWindow::BucketAt(int64_t index) {
  Bucket& bucket = ring_[size_t(index % int64_t(ring_.size()))];
  if (bucket.index != index) bucket = Bucket{index, 0, 0};
  return bucket;
}

void SlidingWindow::Advance(Clock::time_point now) {
  if (!started_) {
    started_ = true;
    start_ = last_ = now;
    return;
  }
  if (now <= last_) return;
  if (level_ != 0) {
    // Only the last ring's worth of time can still be read; skip what is older.
    Clock::time_point from = std::max(last_, now - width_ * int64_t(ring_.size()));
    while (from < now) {
      const int64_t index = from.time_since_epoch() / width_;
      const Clock::time_point bucket_end = Clock::time_point((index + 1) * width_);
      const Clock::time_point to = std::min(now, bucket_end);
      BucketAt(index).level_seconds += double(level_) * std::chrono::duration<double>(to - from).count();
      from = to;
    }
  }
  last_ = now;
}

void SlidingWindow::AddLevel(Clock::time_point now, int64_t delta) {
  Advance(now);
  level_ += delta;
}

void SlidingWindow::AddEvents(Clock::time_point now, int64_t count) {
  Advance(now);
  BucketAt(now.time_since_epoch() / width_).events += count;
}

double SlidingWindow::SpanSeconds(Clock::time_point now) const {
  const int64_t current = now.time_since_epoch() / width_;
  const Clock::time_point window_start = Clock::time_point((current - int64_t(ring_.size()) + 1) * width_);
  return std::chrono::duration<double>(now - std::max(window_start, start_)).count();
}

double SlidingWindow::AverageLevel(Clock::time_point now) {
  Advance(now);
  const double span = SpanSeconds(now);
  if (span <= 0) return double(level_);
  const int64_t current = now.time_since_epoch() / width_;
  double sum = 0;
  for (const auto& bucket : ring_) {
    if (bucket.index >= 0 && bucket.index > current - int64_t(ring_.size()) && bucket.index <= current) {
      sum += bucket.level_seconds;
    }
  }
  return sum / span;
}

double SlidingWindow::EventsPerSecond(Clock::time_point now) {
  Advance(now);
  const double span = SpanSeconds(now);
  if (span <= 0) return 0;
  const int64_t current = now.time_since_epoch() / width_;
  int64_t sum = 0;
  for (const auto& bucket : ring_) {
    if (bucket.index >= 0 && bucket.index > current - int64_t(ring_.size()) && bucket.index <= current) {
      sum += bucket.events;
    }
  }
  // A rate over less than one bucket would turn a single request into a spike.
  return double(sum) / std::max(span, std::chrono::duration<double>(width_).count());
}

}  // namespace mlscale::router
