#include "mlscale/serve/batcher.h"

#include <algorithm>

namespace mlscale::serve {

Batcher::Batcher(std::shared_ptr<const InferenceModel> model, BatchingOptions options, ModelMetrics& metrics)
    : model_(std::move(model)), options_(options), metrics_(metrics) {
  for (int i = 0; i < std::max(1, options_.threads); ++i) threads_.emplace_back([this] { Run(); });
}

Batcher::~Batcher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& thread : threads_) thread.join();
}

Batcher::Arrival::Arrival(Batcher& batcher) : batcher_(&batcher) {
  std::lock_guard lock(batcher.mutex_);
  ++batcher.arriving_;
}

void Batcher::Arrival::End() {
  if (batcher_ == nullptr) return;
  bool last;
  {
    std::lock_guard lock(batcher_->mutex_);
    last = --batcher_->arriving_ == 0;
  }
  if (last) batcher_->wake_.notify_one();
  batcher_ = nullptr;
}

bool Batcher::Submit(std::vector<float> features, int64_t rows, Done done, Arrival& arrival) {
  bool queued = false;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && queued_rows_ < options_.max_queued_rows) {
      queued_rows_ += rows;
      queue_.push_back({std::move(features), rows, std::move(done), std::chrono::steady_clock::now()});
      queued = true;
    }
  }
  arrival.End();
  wake_.notify_one();
  return queued;
}

void Batcher::Run() {
  const int64_t classes = model_->classes();
  std::vector<Pending> batch;
  std::vector<float> features, probabilities;
  std::vector<int64_t> predicted;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left to answer
      // Wait for a full batch while more rows are on their way, at most max_queue_delay
      // after the oldest arrival.
      const auto deadline = queue_.front().arrived + options_.max_queue_delay;
      wake_.wait_until(lock, deadline,
                       [&] { return stopping_ || arriving_ == 0 || queued_rows_ >= options_.max_batch_size; });
      int64_t rows = 0;
      batch.clear();
      while (!queue_.empty() && (batch.empty() || rows + queue_.front().rows <= options_.max_batch_size)) {
        rows += queue_.front().rows;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_rows_ -= rows;
    }
    const auto started = std::chrono::steady_clock::now();
    int64_t rows = 0;
    features.clear();
    for (const Pending& p : batch) {
      features.insert(features.end(), p.features.begin(), p.features.end());
      rows += p.rows;
    }
    model_->Predict(features.data(), rows, probabilities, predicted);
    metrics_.batch_size.Observe(double(rows));
    int64_t offset = 0;
    for (Pending& p : batch) {
      const auto queued = started - p.arrived;
      metrics_.queue_seconds.Observe(std::chrono::duration<double>(queued).count());
      p.done(probabilities.data() + offset * classes, predicted.data() + offset, queued);
      offset += p.rows;
    }
  }
}

}  // namespace mlscale::serve
