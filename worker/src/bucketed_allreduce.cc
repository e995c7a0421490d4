#include "bucketed_allreduce.h"

#include <algorithm>

namespace mlscale::worker {

BucketedAllReduce::BucketedAllReduce(Communicator& communicator, size_t bucket_elements)
    : communicator_(communicator), bucket_elements_(std::max<size_t>(1, bucket_elements)) {
  if (communicator_.size() > 1) thread_ = std::thread([this] { Run(); });
}

BucketedAllReduce::~BucketedAllReduce() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BucketedAllReduce::Start(float* buffer, size_t count) {
  std::lock_guard lock(mutex_);
  buffer_ = buffer;
  count_ = count;
  next_bucket_end_ = count;
  status_ = Status::Ok();
}

void BucketedAllReduce::ReadyFrom(size_t offset) {
  if (communicator_.size() == 1) return;
  {
    std::lock_guard lock(mutex_);
    while (next_bucket_end_ > 0) {
      size_t begin = next_bucket_end_ > bucket_elements_ ? next_bucket_end_ - bucket_elements_ : 0;
      if (begin < offset) break;
      queue_.emplace_back(begin, next_bucket_end_);
      ++in_flight_;
      next_bucket_end_ = begin;
    }
  }
  changed_.notify_all();
}

Status BucketedAllReduce::Finish() {
  ReadyFrom(0);
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return in_flight_ == 0; });
  return status_;
}

void BucketedAllReduce::Run() {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;
    auto [begin, end] = queue_.front();
    queue_.pop_front();
    Status status = status_;
    lock.unlock();
    // After a failure the remaining buckets are skipped: the step is lost anyway.
    if (status.ok()) status = communicator_.AllReduceSum(buffer_ + begin, end - begin, DataType::kFloat32);
    lock.lock();
    if (status_.ok()) status_ = status;
    --in_flight_;
    changed_.notify_all();
  }
}

}  // namespace mlscale::worker
