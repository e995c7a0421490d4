// Metrics in the Prometheus text exposition format: counters, gauges and histograms
// with labels, registered on first use. Thread-safe; one registry per process, passed
// to the parts that record (client, watcher, work queue, controllers).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace mlscale::kube {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // Declares a metric's help text (optional; unknown metrics get an empty help line).
  void Describe(const std::string& name, const std::string& help);
  void Add(const std::string& name, const Labels& labels, double delta = 1.0);   // counter
  void Set(const std::string& name, const Labels& labels, double value);         // gauge
  // Histogram with the default buckets (seconds, 1 ms .. 60 s).
  void Observe(const std::string& name, const Labels& labels, double value);
  // The value of a counter/gauge series (0 when absent); for tests and readiness.
  double Value(const std::string& name, const Labels& labels) const;
  // All metrics in the Prometheus text format (version 0.0.4).
  std::string Render() const;

 private:
  struct Histogram {
    std::vector<double> bucket_counts;  // cumulative at render time
    double sum = 0;
    double count = 0;
  };
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type = Type::kCounter;
    std::string help;
    std::map<std::string, double> values;         // rendered labels -> value
    std::map<std::string, Histogram> histograms;  // rendered labels -> histogram
  };
  Family& FamilyFor(const std::string& name, Type type);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

}  // namespace mlscale::kube
