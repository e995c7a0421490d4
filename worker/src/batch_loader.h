// Prefetches this rank's batches on a thread of its own so the compute never waits for
// gathering rows (internal).
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "compute_backend.h"
#include "mlscale/worker/dataset.h"

namespace mlscale::worker {

class BatchLoader {
 public:
  // Produces the batches of steps [first_step, end_step) from `data` (which must outlive
  // the loader), holding at most `depth` ready.
  BatchLoader(const Dataset& data, const ShardSampler& sampler, int64_t first_step, int64_t end_step, int depth = 4);
  ~BatchLoader();  // stops and joins the thread
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch, in step order. Call at most end_step - first_step times.
  Batch Next();

 private:
  void Run(int64_t first_step, int64_t end_step);

  const Dataset& data_;
  ShardSampler sampler_;
  const size_t depth_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mlscale::worker
