#include "mlscale/metrics/registry.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace mlscale::metrics {
namespace {

// Inserts `extra` (e.g. le="0.1") into an already rendered label set.
std::string WithLabel(const std::string& rendered, const std::string& extra) {
  if (rendered.empty()) return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
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

std::string RenderLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (const auto& [name, value] : labels) {
    if (out.size() > 1) out += ",";
    out += name + "=\"" + EscapeLabelValue(value) + "\"";
  }
  return out + "}";
}

std::string FormatNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // The shorter of %.15g and %.17g that reads back exactly ("0.0025", not "0.0025000000000000001").
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.15g", value);
  if (std::strtod(buffer, nullptr) != value) std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

std::vector<double> DefaultSecondsBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60};
}

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
    const std::string bound = i < upper_bounds_.size() ? FormatNumber(upper_bounds_[i]) : "+Inf";
    out += name + "_bucket" + WithLabel(labels, "le=\"" + bound + "\"") + " " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum" + labels + " " + FormatNumber(sum_.load(std::memory_order_relaxed)) + "\n";
  out += name + "_count" + labels + " " + std::to_string(count_.load(std::memory_order_relaxed)) + "\n";
}

Registry::Family& Registry::FamilyFor(const std::string& name, Type type) {
  Family& family = families_[name];
  if (family.values.empty() && family.histograms.empty()) family.type = type;
  return family;
}

void Registry::Describe(const std::string& name, const std::string& help) {
  std::lock_guard lock(mutex_);
  families_[name].help = help;
}

void Registry::Add(const std::string& name, const Labels& labels, double delta) {
  std::lock_guard lock(mutex_);
  FamilyFor(name, Type::kCounter).values[RenderLabels(labels)] += delta;
}

void Registry::Set(const std::string& name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  FamilyFor(name, Type::kGauge).values[RenderLabels(labels)] = value;
}

void Registry::Observe(const std::string& name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  std::unique_ptr<Histogram>& histogram = FamilyFor(name, Type::kHistogram).histograms[RenderLabels(labels)];
  if (!histogram) histogram = std::make_unique<Histogram>(DefaultSecondsBuckets());
  histogram->Observe(value);
}

double Registry::Value(const std::string& name, const Labels& labels) const {
  std::lock_guard lock(mutex_);
  auto family = families_.find(name);
  if (family == families_.end()) return 0;
  auto series = family->second.values.find(RenderLabels(labels));
  return series == family->second.values.end() ? 0 : series->second;
}

std::string Registry::Render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, family] : families_) {
    if (family.values.empty() && family.histograms.empty()) continue;
    const char* type = family.type == Type::kCounter ? "counter"
                       : family.type == Type::kGauge ? "gauge"
                                                     : "histogram";
    out += "# HELP " + name + " " + family.help + "\n# TYPE " + name + " " + type + "\n";
    for (const auto& [labels, value] : family.values) out += name + labels + " " + FormatNumber(value) + "\n";
    for (const auto& [labels, histogram] : family.histograms) histogram->Render(name, labels, out);
  }
  return out;
}

}  // namespace mlscale::metrics
