// Which gradient buckets can be sent once the backward pass has finished everything from
// a given offset to the end of the gradient vector (internal; shared by the CPU and GPU
// backends, C++17 for nvcc). Buckets are cut from the end, in the order backward
// completes them, so every rank sends the same buckets in the same order.
#pragma once

#include <algorithm>
#include <cstddef>

namespace mlscale::worker {

class BucketPlan {
 public:
  explicit BucketPlan(size_t bucket_elements) : bucket_elements_(std::max<size_t>(1, bucket_elements)) {}

  // Starts a step over `count` elements.
  void Reset(size_t count) { next_end_ = count; }

  // Calls on_bucket(begin, end) for each bucket lying wholly in [offset, count) that was
  // not handed out yet.
  template <typename OnBucket>
  void ReadyFrom(size_t offset, OnBucket&& on_bucket) {
    while (next_end_ > 0) {
      const size_t begin = next_end_ > bucket_elements_ ? next_end_ - bucket_elements_ : 0;
      if (begin < offset) return;
      on_bucket(begin, next_end_);
      next_end_ = begin;
    }
  }

 private:
  size_t bucket_elements_;
  size_t next_end_ = 0;
};

}  // namespace mlscale::worker
