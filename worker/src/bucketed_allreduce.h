// Averages a gradient vector across ranks in buckets while the backward pass is still
// running (internal, CPU). The backward pass completes the vector from its end towards
// its start (see ParameterLayout); each time it reports a new "ready from" offset, the
// buckets wholly behind it are handed to a communication thread. The buckets that are
// still waiting when the backward pass ends are reduced by the thread that calls Finish,
// which would otherwise only wait: no hand-over to the communication thread and back.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "bucket_plan.h"
#include "mlscale/worker/communicator.h"

namespace mlscale::worker {

class BucketedAllReduce {
 public:
  // Buckets hold `bucket_elements` floats. With one rank nothing is sent.
  BucketedAllReduce(Communicator& communicator, size_t bucket_elements);
  ~BucketedAllReduce();  // joins the communication thread
  BucketedAllReduce(const BucketedAllReduce&) = delete;
  BucketedAllReduce& operator=(const BucketedAllReduce&) = delete;

  // Starts a step on `buffer` (`count` floats, summed in place).
  void Start(float* buffer, size_t count);
  // Elements [offset, count) will not change any more; their buckets go to the
  // communication thread.
  void ReadyFrom(size_t offset);
  // Every element is final: reduces the buckets not yet taken (on this thread), waits for
  // the one in flight; the first error of any of them.
  Status Finish();

 private:
  void Run();
  // Takes the queue's first bucket and reduces it (with `lock` released meanwhile). One
  // bucket at a time over both threads, in queue order: every rank issues the same
  // collectives in the same order.
  void ReduceFront(std::unique_lock<std::mutex>& lock);

  Communicator& communicator_;
  BucketPlan plan_;
  float* buffer_ = nullptr;
  std::mutex mutex_;
  std::condition_variable work_;  // for the communication thread: a bucket or stopping
  std::condition_variable done_;  // for Finish: the communication thread finished a bucket
  std::deque<std::pair<size_t, size_t>> queue_;
  size_t in_flight_ = 0;  // buckets queued or being reduced
  bool reducing_ = false;  // a bucket is being reduced (by either thread)
  bool finishing_ = false;  // Finish takes the buckets left; the communication thread takes no more
  Status status_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mlscale::worker
