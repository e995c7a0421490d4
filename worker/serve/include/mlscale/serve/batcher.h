// Dynamic batching for one served model version: requests queue their rows, a thread
// takes what is queued (up to max_batch_size rows, waiting at most max_queue_delay after
// the oldest request arrived for more to come), runs one forward pass for all of it and
// hands each request its slice. Under load a weight matrix is then read once per batch
// instead of once per request.
//
// The wait for more rows is only worth it when more are coming: requests announce
// themselves (Arrival) as soon as they are routed to the model, before their body is
// parsed, and the batcher stops waiting once no announced request is still on its way.
// So a lone client pays no queue delay, and a busy model still fills its batches.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "mlscale/serve/inference_model.h"
#include "mlscale/serve/metrics.h"

namespace mlscale::serve {

struct BatchingOptions {
  int max_batch_size = 1;  // rows per forward pass; 1: no batching (the caller predicts itself)
  std::chrono::microseconds max_queue_delay{500};
  int64_t max_queued_rows = 8192;  // beyond it Submit refuses (the caller answers 503)
  int threads = 1;  // batches computed at once (each thread takes the next batch while others compute)
  bool enabled() const { return max_batch_size > 1; }
};

class Batcher {
 public:
  // Called on a batcher thread with this request's rows of the batch result
  // (probabilities: rows x classes; predicted: rows) and how long it waited.
  using Done = std::function<void(const float* probabilities, const int64_t* predicted,
                                  std::chrono::nanoseconds queued)>;

  // `metrics` (batch sizes, queue time) must outlive the Batcher.
  Batcher(std::shared_ptr<const InferenceModel> model, BatchingOptions options, ModelMetrics& metrics);
  // Answers everything still queued, then joins the threads.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // A request on its way to Submit (or not: a malformed one). Move-only; ends at Submit or
  // when destroyed.
  class Arrival {
   public:
    explicit Arrival(Batcher& batcher);
    Arrival(Arrival&& other) noexcept : batcher_(std::exchange(other.batcher_, nullptr)) {}
    Arrival& operator=(Arrival&&) = delete;
    ~Arrival() { End(); }
    void End();

   private:
    Batcher* batcher_;
  };
  Arrival Announce() { return Arrival(*this); }

  // Queues `rows` rows (features: rows x inputs) and ends `arrival`. False, without calling
  // `done`, when the queue holds max_queued_rows already.
  bool Submit(std::vector<float> features, int64_t rows, Done done, Arrival& arrival);

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
  int64_t arriving_ = 0;  // announced, not yet submitted
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace mlscale::serve
