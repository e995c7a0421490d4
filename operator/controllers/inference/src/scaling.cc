#include "mlscale/controllers/inference/scaling.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <condition_variable>

#include <nlohmann/json.hpp>

#include "mlscale/controllers/inference/children.h"
#include "mlscale/http/get.h"

namespace mlscale::controllers::inference {
namespace {

StatusOr<double> NonNegative(const nlohmann::json& object, const char* key, const std::string& where) {
  if (!object.contains(key)) return 0.0;
  const auto& value = object[key];
  if (!value.is_number()) return InvalidArgument(where + "." + key + ": must be a number");
  double number = value.get<double>();
  if (!std::isfinite(number) || number < 0) return InvalidArgument(where + "." + key + ": must be a finite number >= 0");
  return number;
}

}  // namespace

StatusOr<RouterStats> ParseRouterStats(std::string_view body) {
  if (body.size() > kMaxStatsReplyBytes) return InvalidArgument("stats reply larger than 256 KiB");
  nlohmann::json reply = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object()) return InvalidArgument("stats reply is not a JSON object");
  RouterStats stats;
  if (reply.contains("timeUnixMs")) {
    if (!reply["timeUnixMs"].is_number_integer()) return InvalidArgument("stats reply: timeUnixMs must be an integer");
    stats.time_unix_ms = reply["timeUnixMs"].get<std::int64_t>();
  }
  if (!reply.contains("revisions")) return stats;
  if (!reply["revisions"].is_object()) return InvalidArgument("stats reply: revisions must be an object");
  for (const auto& [name, entry] : reply["revisions"].items()) {
    const std::string where = "stats reply: revisions[" + nlohmann::json(name).dump() + "]";
    if (name.empty() || name.size() > 253) return InvalidArgument("stats reply: a revision name must be 1..253 bytes");
    if (!entry.is_object()) return InvalidArgument(where + ": must be an object");
    RevisionStats r;
    auto in_flight = NonNegative(entry, "inFlight", where);
    auto concurrency = NonNegative(entry, "averageConcurrency", where);
    auto rps = NonNegative(entry, "requestsPerSecond", where);
    auto queued = NonNegative(entry, "queued", where);
    auto ready = NonNegative(entry, "readyEndpoints", where);
    for (const auto* value : {&in_flight, &concurrency, &rps, &queued, &ready}) {
      if (!value->ok()) return value->status();
    }
    r.in_flight = static_cast<std::int64_t>(*in_flight);
    r.average_concurrency = *concurrency;
    r.requests_per_second = *rps;
    r.queued = static_cast<std::int64_t>(*queued);
    r.ready_endpoints = static_cast<std::int64_t>(*ready);
    stats.revisions.emplace(name, r);
  }
  return stats;
}

::mlscale::inference::AutoscalerSettings SettingsOf(const api::AutoscalingSpec& spec) {
  ::mlscale::inference::AutoscalerSettings s;
  s.metric = spec.metric == "rps" ? ::mlscale::inference::ScalingMetric::kRequestsPerSecond
                                  : ::mlscale::inference::ScalingMetric::kConcurrency;
  s.target = spec.target;
  s.min_replicas = static_cast<std::int32_t>(spec.min_replicas);
  s.max_replicas = static_cast<std::int32_t>(spec.max_replicas);
  s.stable_window = std::chrono::seconds(spec.stable_window_seconds);
  s.panic_window = std::chrono::seconds(spec.panic_window_seconds);
  s.panic_threshold = static_cast<double>(spec.panic_threshold_percent) / 100.0;
  s.max_scale_up_rate = spec.max_scale_up_rate;
  s.max_scale_down_rate = spec.max_scale_down_rate;
  s.scale_down_delay = std::chrono::seconds(spec.scale_down_delay_seconds);
  s.scale_to_zero_grace_period = std::chrono::seconds(spec.scale_to_zero_grace_period_seconds);
  return s;
}

double Observation(const RevisionStats& stats, const std::string& metric) {
  if (metric == "rps") return stats.requests_per_second;
  return stats.average_concurrency;  // the router counts held requests in it
}

ScalingPoller::ScalingPoller(Options options, std::function<void(const std::string&)> on_change)
    : options_(options), on_change_(std::move(on_change)), thread_([this](std::stop_token stop) { Loop(stop); }) {}

ScalingPoller::~ScalingPoller() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void ScalingPoller::Track(const std::string& key, std::vector<std::string> routers, const api::AutoscalingSpec& spec,
                          std::vector<RevisionInput> revisions) {
  std::lock_guard lock(mutex_);
  Target& target = targets_[key];
  target.routers = std::move(routers);
  const bool settings_changed = !(target.spec == spec);
  target.spec = spec;
  std::map<std::string, Scaled> kept;
  const auto settings = SettingsOf(spec);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - epoch_);
  for (const RevisionInput& input : revisions) {
    auto it = target.revisions.find(input.name);
    Scaled scaled;
    if (it != target.revisions.end()) {
      scaled = std::move(it->second);
      if (settings_changed) scaled.autoscaler->UpdateSettings(settings);
    } else {
      scaled.autoscaler = std::make_unique<::mlscale::inference::Autoscaler>(settings, input.ready, now);
    }
    scaled.input = input;
    kept.emplace(input.name, std::move(scaled));
  }
  target.revisions = std::move(kept);
}

void ScalingPoller::Untrack(const std::string& key) {
  std::lock_guard lock(mutex_);
  targets_.erase(key);
}

std::optional<ScalingPoller::Decision> ScalingPoller::Latest(const std::string& key, const std::string& revision) const {
  std::lock_guard lock(mutex_);
  auto it = targets_.find(key);
  if (it == targets_.end()) return std::nullopt;
  auto r = it->second.revisions.find(revision);
  if (r == it->second.revisions.end()) return std::nullopt;
  return r->second.decision;
}

void ScalingPoller::PollOnce(std::chrono::steady_clock::time_point now) {
  std::map<std::string, std::vector<std::string>> routers;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, target] : targets_) routers[key] = target.routers;
  }
  // Fetched without the lock: a slow router delays only this poll.
  std::map<std::string, std::map<std::string, RevisionStats>> sums;
  std::map<std::string, bool> observed_any;
  for (const auto& [key, addresses] : routers) {
    for (const std::string& address : addresses) {
      StatusOr<http::GetReply> reply =
          http::BoundedGet({.address = address, .port = options_.router_port, .path = "/v1/stats", .headers = {},
                            .max_body_bytes = kMaxStatsReplyBytes, .deadline = options_.deadline});
      StatusOr<RouterStats> stats = !reply.ok()             ? StatusOr<RouterStats>(reply.status())
                                    : reply->status != 200 ? StatusOr<RouterStats>(Unavailable(
                                                                 "router " + address + " answered " +
                                                                 std::to_string(reply->status)))
                                                           : ParseRouterStats(reply->body);
      if (!stats.ok()) {
        spdlog::debug("inferenceservice {}: router {}: {}", key, address, stats.status().ToString());
        continue;
      }
      observed_any[key] = true;
      for (const auto& [revision, r] : stats->revisions) {
        RevisionStats& sum = sums[key][revision];
        sum.in_flight += r.in_flight;
        sum.average_concurrency += r.average_concurrency;
        sum.requests_per_second += r.requests_per_second;
        sum.queued += r.queued;
        sum.ready_endpoints = std::max(sum.ready_endpoints, r.ready_endpoints);
      }
    }
  }
  const auto second = std::chrono::duration_cast<std::chrono::seconds>(now - epoch_);
  std::vector<std::string> changed;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, target] : targets_) {
      for (auto& [name, scaled] : target.revisions) {
        RevisionStats stats;
        if (auto s = sums[key].find(name); s != sums[key].end()) stats = s->second;
        const double value = Observation(stats, target.spec.metric);
        // No router answered: no observation (the decider keeps the size without data).
        if (observed_any[key]) scaled.autoscaler->Record(second, value, scaled.input.ready);
        auto result = scaled.autoscaler->Decide(second, scaled.input.ready);
        Decision decision{result.desired_replicas, result.panicking, value};
        // Replicas still starting are never taken away: with none ready the decider has no
        // capacity to judge by (Knative keeps a revision's initial scale until it is ready).
        if (scaled.input.ready == 0 && decision.replicas < scaled.input.current) decision.replicas = scaled.input.current;
        // Scale from zero: requests wait in a router for this revision.
        if (stats.queued > 0 && decision.replicas == 0) decision.replicas = 1;
        const bool differs = !scaled.decision || scaled.decision->replicas != decision.replicas ||
                             decision.replicas != scaled.input.current;
        scaled.decision = decision;
        if (differs) changed.push_back(key);
      }
    }
  }
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  for (const std::string& key : changed) on_change_(key);
}

void ScalingPoller::Loop(std::stop_token stop) {
  std::mutex sleep_mutex;
  std::condition_variable_any wake;
  auto next = std::chrono::steady_clock::now();
  while (!stop.stop_requested()) {
    next += options_.interval;
    bool any;
    {
      std::lock_guard lock(mutex_);
      any = !targets_.empty();
    }
    if (any) PollOnce(std::chrono::steady_clock::now());
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;  // a slow poll: no burst to catch up
    std::unique_lock lock(sleep_mutex);
    wake.wait_until(lock, stop, next, [] { return false; });
  }
}

}  // namespace mlscale::controllers::inference
