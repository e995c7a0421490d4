// Dynamic batching for one served model version: requests queue their rows, one thread
// takes what is queued (up to max_batch_size rows, waiting at most max_queue_delay after
// the oldest request arrived for more to come), runs one forward pass for all of it and
// hands each request its slice. Under load a weight matrix is then read once per batch
// instead of once per request.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mlscale/serve/inference_model.h"
#include "mlscale/serve/metrics.h"

namespace mlscale::serve {

struct BatchingOptions {
  int max_batch_size = 1;  // rows per forward pass; 1: no batching (the caller predicts itself)
  std::chrono::microseconds max_queue_delay{500};
  int64_t max_queued_rows = 8192;  // beyond it Submit refuses (the caller answers 503)
  bool enabled() const { return max_batch_size > 1; }
};

class Batcher {
 public:
  // Called on the batcher's thread with this request's rows of the batch result
  // (probabilities: rows x classes; predicted: rows) and how long it waited.
  using Done = std::function<void(const float* probabilities, const int64_t* predicted,
                                  std::chrono::nanoseconds queued)>;

  // `metrics` (batch sizes, queue time) must outlive the Batcher.
  Batcher(std::shared_ptr<const InferenceModel> model, BatchingOptions options, ModelMetrics& metrics);
  // Answers everything still queued, then joins the thread.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues `rows` rows (features: rows x inputs). False, without calling `done`, when the
  // queue holds max_queued_rows already.
  bool Submit(std::vector<float> features, int64_t rows, Done done);

 private:
  struct Pending {
    std::vector<float> features;
    int64_t rows;
    Done done;
    std::chrono::steady_clock::time_point arrived;
  };
  void Run();

  const std::shared_ptr<const InferenceModel> model_;
  const BatchingOptions options_;
  ModelMetrics& metrics_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  int64_t queued_rows_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mlscale::serve
