#include "trace.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <string_view>

namespace mlscale::inference::testing {
namespace {

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

template <typename T>
bool Parse(std::string_view text, T& out) {
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, out);
  return error == std::errc() && ptr == end;
}

Status ApplySetting(std::string_view key, std::string_view value, AutoscalerSettings& settings) {
  double number = 0;
  if (key == "metric") {
    if (value == "concurrency") {
      settings.metric = ScalingMetric::kConcurrency;
    } else if (value == "rps") {
      settings.metric = ScalingMetric::kRequestsPerSecond;
    } else {
      return InvalidArgument("metric: want concurrency or rps, got '" + std::string(value) + "'");
    }
    return Status::Ok();
  }
  if (!Parse(value, number)) {
    return InvalidArgument(std::string(key) + ": not a number: '" + std::string(value) + "'");
  }
  const auto whole = static_cast<std::int32_t>(number);
  const std::chrono::seconds duration(static_cast<std::int64_t>(number));
  if (key == "target") settings.target = number;
  else if (key == "min_replicas") settings.min_replicas = whole;
  else if (key == "max_replicas") settings.max_replicas = whole;
  else if (key == "stable_window") settings.stable_window = duration;
  else if (key == "panic_window") settings.panic_window = duration;
  else if (key == "panic_threshold") settings.panic_threshold = number;
  else if (key == "max_scale_up_rate") settings.max_scale_up_rate = number;
  else if (key == "max_scale_down_rate") settings.max_scale_down_rate = number;
  else if (key == "scale_down_delay") settings.scale_down_delay = duration;
  else if (key == "scale_to_zero_grace_period") settings.scale_to_zero_grace_period = duration;
  else if (key == "activation_scale") settings.activation_scale = whole;
  else return InvalidArgument("unknown setting '" + std::string(key) + "'");
  return Status::Ok();
}

}  // namespace

StatusOr<Trace> ReadTrace(const std::string& name) {
  const std::string path = std::string(MLSCALE_TRACES_DIR) + "/" + name + ".csv";
  std::ifstream file(path);
  if (!file) return NotFound(path + ": cannot open");
  Trace trace;
  trace.name = name;
  std::string line;
  for (int number = 1; std::getline(file, line); ++number) {
    const std::string where = path + ":" + std::to_string(number);
    const std::string_view text = Trim(line);
    if (text.empty() || text == "second,observed,ready_pods") continue;
    if (text.front() == '#') {
      const std::string_view comment = Trim(text.substr(1));
      const auto equals = comment.find('=');
      if (equals == std::string_view::npos) {
        if (trace.description.empty()) trace.description = comment;
        continue;
      }
      MLSCALE_RETURN_IF_ERROR(ApplySetting(Trim(comment.substr(0, equals)), Trim(comment.substr(equals + 1)),
                                           trace.settings)
                                  .WithContext(where));
      continue;
    }
    const auto first = text.find(',');
    const auto second = first == std::string_view::npos ? first : text.find(',', first + 1);
    TraceTick tick;
    if (second == std::string_view::npos || !Parse(text.substr(0, first), tick.second) ||
        !Parse(text.substr(first + 1, second - first - 1), tick.observed) ||
        !Parse(text.substr(second + 1), tick.ready_pods)) {
      return InvalidArgument(where + ": want second,observed,ready_pods, got '" + std::string(text) + "'");
    }
    if (!trace.ticks.empty() && tick.second <= trace.ticks.back().second) {
      return InvalidArgument(where + ": second: must increase");
    }
    trace.ticks.push_back(tick);
  }
  MLSCALE_RETURN_IF_ERROR(trace.settings.Validate().WithContext(path));
  if (trace.ticks.empty()) return InvalidArgument(path + ": no ticks");
  return trace;
}

std::vector<std::string> TraceNames() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(MLSCALE_TRACES_DIR)) {
    if (entry.path().extension() == ".csv") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<AutoscalerDecision> Replay(const Trace& trace) {
  using std::chrono::seconds;
  Autoscaler autoscaler(trace.settings, trace.ticks.front().ready_pods, seconds(trace.ticks.front().second));
  std::vector<AutoscalerDecision> decisions;
  decisions.reserve(trace.ticks.size());
  for (const TraceTick& tick : trace.ticks) {
    autoscaler.Record(seconds(tick.second), tick.observed, tick.ready_pods);
    decisions.push_back(autoscaler.Decide(seconds(tick.second), tick.ready_pods));
  }
  return decisions;
}

}  // namespace mlscale::inference::testing
