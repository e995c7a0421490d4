// How requests are split between an InferenceService's revisions: the controller writes
// `status.traffic: [{revision, percent}]`; the router assigns requests in exact proportion.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"

namespace mlscale::router {

struct TrafficTarget {
  std::string revision;
  int percent = 0;  // 0..100
  bool operator==(const TrafficTarget&) const = default;
};

// Reads `status.traffic` of an InferenceService. No status or no traffic yet: an empty
// list. Errors (InvalidArgument naming the field, e.g. "status.traffic[1].percent: must be
// 0..100"): entries that are not objects, an empty or repeated revision, a percent
// outside 0..100, or percents that do not sum to 100.
StatusOr<std::vector<TrafficTarget>> ParseTraffic(const nlohmann::json& inference_service);

// Deterministic weighted assignment (smooth weighted round robin, as nginx's upstream
// weights): among any 100 consecutive picks each revision gets exactly its percent, and
// the picks of one revision are spread evenly (20 % is every fifth request, not 20 in a
// row). Not thread-safe: the owner locks.
class WeightedSplitter {
 public:
  // Replaces the targets and restarts the sequence; 0 % targets are never picked.
  void Set(std::vector<TrafficTarget> targets);
  // The next revision, "" when no target has a percent above 0.
  const std::string& Next();
  const std::vector<TrafficTarget>& targets() const { return targets_; }

 private:
  std::vector<TrafficTarget> targets_;
  std::vector<int64_t> current_;
  int64_t total_ = 0;
};

}  // namespace mlscale::router
