#include "mlscale/kube/metrics.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace mlscale::kube {
namespace {

constexpr std::array<double, 14> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10,   60};

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

// "{a="x",b="y"}", or "" for no labels.
std::string RenderLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (const auto& [name, value] : labels) {
    if (out.size() > 1) out += ",";
    out += name + "=\"" + Escape(value) + "\"";
  }
  return out + "}";
}

std::string Number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // The shortest of %.15g and %.17g that reads back exactly ("0.0025", not "0.0025000000000000001").
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.15g", value);
  if (std::strtod(buffer, nullptr) != value) std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

// Inserts `extra` (e.g. le="0.1") into an already rendered label set.
std::string WithLabel(const std::string& rendered, const std::string& extra) {
  if (rendered.empty()) return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

}  // namespace

Metrics::Family& Metrics::FamilyFor(const std::string& name, Type type) {
  Family& family = families_[name];
  if (family.values.empty() && family.histograms.empty()) family.type = type;
  return family;
}

void Metrics::Describe(const std::string& name, const std::string& help) {
  std::lock_guard lock(mutex_);
  families_[name].help = help;
}

void Metrics::Add(const std::string& name, const Labels& labels, double delta) {
  std::lock_guard lock(mutex_);
  FamilyFor(name, Type::kCounter).values[RenderLabels(labels)] += delta;
}

void Metrics::Set(const std::string& name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  FamilyFor(name, Type::kGauge).values[RenderLabels(labels)] = value;
}

void Metrics::Observe(const std::string& name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  Histogram& histogram = FamilyFor(name, Type::kHistogram).histograms[RenderLabels(labels)];
  if (histogram.bucket_counts.empty()) histogram.bucket_counts.assign(kBuckets.size(), 0);
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (value <= kBuckets[i]) {
      histogram.bucket_counts[i] += 1;
      break;
    }
  }
  histogram.sum += value;
  histogram.count += 1;
}

double Metrics::Value(const std::string& name, const Labels& labels) const {
  std::lock_guard lock(mutex_);
  auto family = families_.find(name);
  if (family == families_.end()) return 0;
  auto series = family->second.values.find(RenderLabels(labels));
  return series == family->second.values.end() ? 0 : series->second;
}

std::string Metrics::Render() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  for (const auto& [name, family] : families_) {
    if (family.values.empty() && family.histograms.empty()) continue;
    const char* type = family.type == Type::kCounter ? "counter"
                       : family.type == Type::kGauge ? "gauge"
                                                     : "histogram";
    out << "# HELP " << name << " " << family.help << "\n# TYPE " << name << " " << type << "\n";
    for (const auto& [labels, value] : family.values) out << name << labels << " " << Number(value) << "\n";
    for (const auto& [labels, histogram] : family.histograms) {
      double cumulative = 0;
      for (size_t i = 0; i < kBuckets.size(); ++i) {
        cumulative += histogram.bucket_counts[i];
        out << name << "_bucket" << WithLabel(labels, "le=\"" + Number(kBuckets[i]) + "\"") << " "
            << Number(cumulative) << "\n";
      }
      out << name << "_bucket" << WithLabel(labels, "le=\"+Inf\"") << " " << Number(histogram.count) << "\n";
      out << name << "_sum" << labels << " " << Number(histogram.sum) << "\n";
      out << name << "_count" << labels << " " << Number(histogram.count) << "\n";
    }
  }
  return out.str();
}

}  // namespace mlscale::kube
