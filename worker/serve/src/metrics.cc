#include "mlscale/serve/metrics.h"

#include <charconv>

namespace mlscale::serve {
namespace {

std::string Number(double value) {
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, end);
}

// Label values are model names (folder names) and versions: escape what the text format needs.
std::string Escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::vector<double> SecondsBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::Observe(double value) {
  size_t bucket = 0;
  while (bucket < upper_bounds_.size() && value > upper_bounds_[bucket]) ++bucket;
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
  }
}

void Histogram::Render(const std::string& name, const std::string& labels, std::string& out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    out += name + "_bucket{" + labels + (labels.empty() ? "" : ",") + "le=\"" +
           (i < upper_bounds_.size() ? Number(upper_bounds_[i]) : "+Inf") + "\"} " + std::to_string(cumulative) + "\n";
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + Number(sum_.load(std::memory_order_relaxed)) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_.load(std::memory_order_relaxed)) + "\n";
}

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
        out += "mlscale_serve_requests_total{model=\"" + Escape(model) + "\",code=\"" + std::to_string(code) + "\"} " +
               std::to_string(count) + "\n";
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
      ((*m).*(family.histogram)).Render(family.name, "model=\"" + Escape(model) + "\"", out);
    }
  }
  out += "# HELP mlscale_serve_model_ready 1 for the version of a model being served.\n";
  out += "# TYPE mlscale_serve_model_ready gauge\n";
  for (const auto& [model, m] : models_) {
    if (model.empty()) continue;
    const int64_t version = m->ready_version.load();
    out += "mlscale_serve_model_ready{model=\"" + Escape(model) + "\",version=\"" +
           (version < 0 ? std::string() : std::to_string(version)) + "\"} " + (version < 0 ? "0" : "1") + "\n";
  }
  out += "# HELP mlscale_serve_model_load_failures_total Artifacts refused (corrupt, truncated, mismatched).\n";
  out += "# TYPE mlscale_serve_model_load_failures_total counter\n";
  for (const auto& [model, m] : models_) {
    if (model.empty()) continue;
    out += "mlscale_serve_model_load_failures_total{model=\"" + Escape(model) + "\"} " +
           std::to_string(m->load_failures.load()) + "\n";
  }
  return out;
}

}  // namespace mlscale::serve
