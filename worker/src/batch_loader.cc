#include "batch_loader.h"

#include <algorithm>

namespace mlscale::worker {

BatchLoader::BatchLoader(const Dataset& data, const ShardSampler& sampler, int64_t first_step, int64_t end_step,
                         int depth)
    : data_(data), sampler_(sampler), depth_(size_t(std::max(depth, 1))) {
  thread_ = std::thread([this, first_step, end_step] { Run(first_step, end_step); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

Batch BatchLoader::Next() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty(); });
  Batch batch = std::move(ready_.front());
  ready_.pop_front();
  changed_.notify_all();
  return batch;
}

void BatchLoader::Run(int64_t first_step, int64_t end_step) {
  std::vector<int64_t> indices;
  const int64_t f = data_.features;
  for (int64_t step = first_step; step < end_step; ++step) {
    Batch batch;
    batch.step = step;
    batch.global_size = sampler_.GlobalBatchSize(step);
    sampler_.RankBatch(step, indices, batch.positions);
    batch.x.resize(indices.size() * size_t(f));
    batch.y.resize(indices.size());
    for (size_t k = 0; k < indices.size(); ++k) {
      std::copy_n(data_.x.begin() + indices[k] * f, f, batch.x.begin() + int64_t(k) * f);
      batch.y[k] = data_.y[size_t(indices[k])];
    }
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return stopping_ || ready_.size() < depth_; });
    if (stopping_) return;
    ready_.push_back(std::move(batch));
    changed_.notify_all();
  }
}

}  // namespace mlscale::worker
