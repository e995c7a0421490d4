#include "mlscale/serve/metrics.h"

namespace mlscale::serve {
namespace {

std::vector<double> SecondsBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

// `{model="<escaped>"}`
std::string ModelLabel(const std::string& model) { return metrics::RenderLabels({{"model", model}}); }

}  // namespace

ModelMetrics::ModelMetrics()
    : request_seconds(SecondsBuckets()), queue_seconds(SecondsBuckets()),
      batch_size({1, 2, 4, 8, 16, 32, 64, 128, 256}) {}

void ModelMetrics::CountResponse(int status) {
  if (status >= 100 && status < 600) responses[size_t(status)].fetch_add(1, std::memory_order_relaxed);
}

ModelMetrics& ServeMetrics::ForModel(const std::string& model) {
  std::lock_guard lock(mutex_);
  auto& slot = models_[model];
  if (!slot) slot = std::make_unique<ModelMetrics>();
  return *slot;
}

ModelMetrics& ServeMetrics::Lookup(const std::string& model) {
  std::lock_guard lock(mutex_);
  auto it = models_.find(model);
  if (it != models_.end()) return *it->second;
  auto& slot = models_[""];
  if (!slot) slot = std::make_unique<ModelMetrics>();
  return *slot;
}

std::string ServeMetrics::Render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out += "# HELP mlscale_serve_requests_total Requests answered, by model and HTTP status code.\n";
  out += "# TYPE mlscale_serve_requests_total counter\n";
  for (const auto& [model, m] : models_) {
    for (size_t code = 100; code < 600; ++code) {
      uint64_t count = m->responses[code].load(std::memory_order_relaxed);
      if (count > 0) {
        out += "mlscale_serve_requests_total" + metrics::RenderLabels({{"model", model}, {"code", std::to_string(code)}}) +
               " " + std::to_string(count) + "\n";
      }
    }
  }
  out += "# HELP mlscale_serve_requests_in_flight Requests received and not yet answered.\n";
  out += "# TYPE mlscale_serve_requests_in_flight gauge\n";
  out += "mlscale_serve_requests_in_flight " + std::to_string(in_flight.load()) + "\n";
  struct Family {
    const char* name;
    const char* help;
    const Histogram ModelMetrics::*histogram;
  };
  const Family families[] = {
      {"mlscale_serve_request_duration_seconds", "Time from a request's arrival to its response.",
       &ModelMetrics::request_seconds},
      {"mlscale_serve_queue_duration_seconds", "Time an inference waited for its batch.", &ModelMetrics::queue_seconds},
      {"mlscale_serve_batch_size", "Rows per forward pass.", &ModelMetrics::batch_size},
  };
  for (const auto& family : families) {
    out += std::string("# HELP ") + family.name + " " + family.help + "\n";
    out += std::string("# TYPE ") + family.name + " histogram\n";
    for (const auto& [model, m] : models_) {
      if (model.empty()) continue;
      ((*m).*(family.histogram)).Render(family.name, ModelLabel(model), out);
    }
  }
  out += "# HELP mlscale_serve_model_ready 1 for the version of a model being served.\n";
  out += "# TYPE mlscale_serve_model_ready gauge\n";
  for (const auto& [model, m] : models_) {
    if (model.empty()) continue;
    const int64_t version = m->ready_version.load();
    out += "mlscale_serve_model_ready" +
           metrics::RenderLabels({{"model", model}, {"version", version < 0 ? std::string() : std::to_string(version)}}) +
           " " + (version < 0 ? "0" : "1") + "\n";
  }
  out += "# HELP mlscale_serve_model_load_failures_total Artifacts refused (corrupt, truncated, mismatched).\n";
  out += "# TYPE mlscale_serve_model_load_failures_total counter\n";
  for (const auto& [model, m] : models_) {
    if (model.empty()) continue;
    out += "mlscale_serve_model_load_failures_total" + ModelLabel(model) + " " +
           std::to_string(m->load_failures.load()) + "\n";
  }
  return out;
}

}  // namespace mlscale::serve
