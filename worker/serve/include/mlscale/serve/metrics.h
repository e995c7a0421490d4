// What mlscale-serve counts, in the Prometheus text format at /metrics:
//   mlscale_serve_requests_total{model,code}            counter
//   mlscale_serve_requests_in_flight                    gauge
//   mlscale_serve_request_duration_seconds{model}       histogram (receipt -> response handed over)
//   mlscale_serve_queue_duration_seconds{model}         histogram (waiting for a batch)
//   mlscale_serve_batch_size{model}                     histogram (rows per forward pass)
//   mlscale_serve_model_ready{model,version}            gauge
//   mlscale_serve_model_load_failures_total{model}      counter
// Recording is lock-free (atomics in a per-model record found once per request, the
// histograms common/metrics' lock-free Histogram), since it runs on every request of the
// data path; the map of models is locked only to add one. Rendered with common/metrics'
// text-format pieces, as the operator's registry is.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mlscale/metrics/registry.h"

namespace mlscale::serve {

using metrics::Histogram;

struct ModelMetrics {
  ModelMetrics();
  void CountResponse(int status);  // 100..599
  std::array<std::atomic<uint64_t>, 600> responses{};
  Histogram request_seconds, queue_seconds, batch_size;
  std::atomic<uint64_t> load_failures = 0;
  std::atomic<int64_t> ready_version = -1;  // -1: not ready
};

class ServeMetrics {
 public:
  // The record of `model` ("" for requests that name none), created on first use; lives
  // as long as this object.
  ModelMetrics& ForModel(const std::string& model);
  // The record of `model` if ForModel created one, else that of "": names taken from
  // request paths never create records (no unbounded label sets).
  ModelMetrics& Lookup(const std::string& model);
  std::atomic<int64_t> in_flight = 0;
  std::string Render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<ModelMetrics>> models_;
};

}  // namespace mlscale::serve
