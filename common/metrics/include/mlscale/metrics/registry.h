// Metrics in the Prometheus text exposition format (version 0.0.4), one implementation
// for every mlscale process:
// - Histogram: fixed upper bounds, lock-free Observe (atomics), for data paths that
//   find their series once and record on every request (the model server);
// - Registry: counters, gauges and histograms by name and labels, registered on first
//   use, thread-safe (a mutex per call), for the operator's client, queues and
//   controllers; and the text-format pieces both render with.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mlscale::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A label value escaped for the text format (backslash, double quote, newline).
std::string EscapeLabelValue(std::string_view value);
// `{a="x",b="y"}` (values escaped), or "" for no labels.
std::string RenderLabels(const Labels& labels);
// A sample value: the shortest decimal that reads back exactly ("0.0025"), "+Inf"/"-Inf", "NaN".
std::string FormatNumber(double value);
// Upper bounds in seconds, 1 ms .. 60 s (the registry's histograms).
std::vector<double> DefaultSecondsBuckets();

class Histogram {
 public:
  // `upper_bounds` ascending; an implicit +Inf bucket follows the last.
  explicit Histogram(std::vector<double> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;
  void Observe(double value);  // lock-free
  // Appends the _bucket/_sum/_count lines of `name` with `labels` (as RenderLabels gives them).
  void Render(const std::string& name, const std::string& labels, std::string& out) const;

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative
  std::atomic<uint64_t> count_ = 0;
  std::atomic<double> sum_ = 0;
};

class Registry {
 public:
  // Declares a metric's help text (optional; unknown metrics get an empty help line).
  void Describe(const std::string& name, const std::string& help);
  void Add(const std::string& name, const Labels& labels, double delta = 1.0);  // counter
  void Set(const std::string& name, const Labels& labels, double value);        // gauge
  // Histogram with DefaultSecondsBuckets().
  void Observe(const std::string& name, const Labels& labels, double value);
  // The value of a counter/gauge series (0 when absent); for tests and readiness.
  double Value(const std::string& name, const Labels& labels) const;
  // All metrics in the text format, families by name.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type = Type::kCounter;
    std::string help;
    std::map<std::string, double> values;                       // rendered labels -> value
    std::map<std::string, std::unique_ptr<Histogram>> histograms;  // rendered labels -> histogram
  };
  Family& FamilyFor(const std::string& name, Type type);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

}  // namespace mlscale::metrics
