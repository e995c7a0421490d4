#include "mlscale/router/traffic_split.h"

#include <set>

namespace mlscale::router {

StatusOr<std::vector<TrafficTarget>> ParseTraffic(const nlohmann::json& inference_service) {
  std::vector<TrafficTarget> targets;
  if (!inference_service.is_object() || !inference_service.contains("status")) return targets;
  const auto& status = inference_service["status"];
  if (status.is_null()) return targets;
  if (!status.is_object()) return InvalidArgument("status: not an object");
  auto traffic = status.find("traffic");
  if (traffic == status.end() || traffic->is_null()) return targets;
  if (!traffic->is_array()) return InvalidArgument("status.traffic: not a list");
  std::set<std::string> seen;
  int sum = 0;
  for (size_t i = 0; i < traffic->size(); ++i) {
    const auto& entry = (*traffic)[i];
    const std::string field = "status.traffic[" + std::to_string(i) + "]";
    if (!entry.is_object()) return InvalidArgument(field + ": not an object");
    auto revision = entry.find("revision");
    if (revision == entry.end() || !revision->is_string() || revision->get<std::string>().empty()) {
      return InvalidArgument(field + ".revision: must be a non-empty string");
    }
    auto percent = entry.find("percent");
    if (percent == entry.end() || !percent->is_number_integer() || percent->get<int64_t>() < 0 ||
        percent->get<int64_t>() > 100) {
      return InvalidArgument(field + ".percent: must be an integer 0..100");
    }
    if (!seen.insert(revision->get<std::string>()).second) {
      return InvalidArgument(field + ".revision: '" + revision->get<std::string>() + "' listed twice");
    }
    targets.push_back({revision->get<std::string>(), int(percent->get<int64_t>())});
    sum += targets.back().percent;
  }
  if (!targets.empty() && sum != 100) {
    return InvalidArgument("status.traffic: percents sum to " + std::to_string(sum) + ", not 100");
  }
  return targets;
}

void WeightedSplitter::Set(std::vector<TrafficTarget> targets) {
  targets_ = std::move(targets);
  current_.assign(targets_.size(), 0);
  total_ = 0;
  for (const auto& target : targets_) total_ += target.percent;
}

const std::string& WeightedSplitter::Next() {
  static const std::string kNone;
  if (total_ <= 0) return kNone;
  size_t best = 0;
  for (size_t i = 0; i < targets_.size(); ++i) {
    current_[i] += targets_[i].percent;
    if (current_[i] > current_[best]) best = i;
  }
  current_[best] -= total_;
  return targets_[best].revision;
}

}  // namespace mlscale::router
