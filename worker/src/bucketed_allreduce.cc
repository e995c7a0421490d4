#include "bucketed_allreduce.h"

namespace mlscale::worker {

BucketedAllReduce::BucketedAllReduce(Communicator& communicator, size_t bucket_elements)
    : communicator_(communicator), plan_(bucket_elements) {
  if (communicator_.size() > 1) thread_ = std::thread([this] { Run(); });
}

BucketedAllReduce::~BucketedAllReduce() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BucketedAllReduce::Start(float* buffer, size_t count) {
  std::lock_guard lock(mutex_);
  buffer_ = buffer;
  plan_.Reset(count);
  status_ = Status::Ok();
  finishing_ = false;
}

void BucketedAllReduce::ReadyFrom(size_t offset) {
  if (communicator_.size() == 1) return;
  bool queued = false;
  {
    std::lock_guard lock(mutex_);
    plan_.ReadyFrom(offset, [&](size_t begin, size_t end) {
      queue_.emplace_back(begin, end);
      ++in_flight_;
      queued = true;
    });
  }
  if (queued) work_.notify_one();
}

Status BucketedAllReduce::Finish() {
  if (communicator_.size() == 1) return Status::Ok();
  std::unique_lock lock(mutex_);
  finishing_ = true;
  plan_.ReadyFrom(0, [&](size_t begin, size_t end) {
    queue_.emplace_back(begin, end);
    ++in_flight_;
  });
  while (in_flight_ > 0) {
    if (reducing_) {
      done_.wait(lock);  // for the communication thread's bucket
    } else {
      ReduceFront(lock);
    }
  }
  return status_;
}

void BucketedAllReduce::ReduceFront(std::unique_lock<std::mutex>& lock) {
  auto [begin, end] = queue_.front();
  queue_.pop_front();
  reducing_ = true;
  Status status = status_;
  lock.unlock();
  // After a failure the remaining buckets are skipped: the step is lost anyway.
  if (status.ok()) status = communicator_.AllReduceSum(buffer_ + begin, end - begin, DataType::kFloat32);
  lock.lock();
  if (status_.ok()) status_ = status;
  reducing_ = false;
  --in_flight_;
}

void BucketedAllReduce::Run() {
  std::unique_lock lock(mutex_);
  while (true) {
    work_.wait(lock, [&] { return stopping_ || (!finishing_ && !reducing_ && !queue_.empty()); });
    if (stopping_) return;
    ReduceFront(lock);
    done_.notify_one();
  }
}

}  // namespace mlscale::worker
