#include "mlscale/controllers/trainingjob/progress.h"

#include <spdlog/spdlog.h>

#include "mlscale/http/get.h"

namespace mlscale::controllers::trainingjob {

StatusOr<ProgressReading> ParseProgressReply(std::string_view body) {
  if (body.size() > kMaxProgressReplyBytes) return InvalidArgument("progress reply larger than 64 KiB");
  nlohmann::json reply = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object()) return InvalidArgument("progress reply is not a JSON object");
  ProgressReading reading;
  for (const char* key : {"progress", "result"}) {
    if (!reply.contains(key) || reply[key].is_null()) continue;
    if (!reply[key].is_object()) return InvalidArgument(std::string("progress reply: '") + key + "' must be an object or null");
  }
  if (reply.contains("progress")) reading.progress = reply["progress"];
  if (reply.contains("result")) reading.result = reply["result"];
  if (reply.contains("time")) {
    if (!reply["time"].is_string()) return InvalidArgument("progress reply: 'time' must be a string");
    reading.time = reply["time"].get<std::string>();
  }
  return reading;
}

StatusOr<ProgressReading> FetchProgress(const std::string& address, int port, const std::string& token,
                                        std::chrono::milliseconds deadline) {
  const std::string where = address + ":" + std::to_string(port);
  StatusOr<http::GetReply> reply = http::BoundedGet({.address = address, .port = port, .path = "/v1/progress",
                                                     .headers = {{"Authorization", "Bearer " + token}},
                                                     .max_body_bytes = kMaxProgressReplyBytes, .deadline = deadline});
  if (!reply.ok()) return reply.status().WithContext("progress endpoint");
  if (reply->status == 401) return Status(StatusCode::kUnauthenticated, "progress endpoint " + where + " refused the job's token");
  if (reply->status != 200) return Unavailable("progress endpoint " + where + " answered " + std::to_string(reply->status));
  StatusOr<ProgressReading> reading = ParseProgressReply(reply->body);
  if (!reading.ok()) return reading.status().WithContext("progress endpoint " + where);
  return reading;
}

ProgressPoller::ProgressPoller(Options options, std::function<void(const std::string&)> on_change)
    : options_(options),
      on_change_(std::move(on_change)),
      budget_(options.writes_per_second, std::max(1, int(options.writes_per_second))),
      thread_([this](std::stop_token stop) { Loop(stop); }) {}

ProgressPoller::~ProgressPoller() {
  thread_.request_stop();
  thread_.join();
}

void ProgressPoller::Track(const std::string& key, const std::string& address, int port, const std::string& token) {
  std::lock_guard lock(mutex_);
  Target& target = targets_[key];
  if (target.address != address || target.port != port) target.latest.reset();
  target.address = address;
  target.port = port;
  target.token = token;
}

void ProgressPoller::Untrack(const std::string& key) {
  std::lock_guard lock(mutex_);
  targets_.erase(key);
}

std::optional<ProgressReading> ProgressPoller::Latest(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = targets_.find(key);
  if (it == targets_.end()) return std::nullopt;
  return it->second.latest;
}

size_t ProgressPoller::Tracked() const {
  std::lock_guard lock(mutex_);
  return targets_.size();
}

void ProgressPoller::Loop(std::stop_token stop) {
  using Clock = std::chrono::steady_clock;
  while (!stop.stop_requested()) {
    // The target polled longest ago that is due; none due: sleep a little.
    std::string key;
    Target target;
    {
      std::lock_guard lock(mutex_);
      const Clock::time_point now = Clock::now();
      for (const auto& [candidate, state] : targets_) {
        if (now - state.last_poll < options_.min_interval) continue;
        if (key.empty() || state.last_poll < target.last_poll) {
          key = candidate;
          target = state;
        }
      }
      if (!key.empty()) targets_[key].last_poll = now;
    }
    if (key.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (!budget_.Acquire(stop)) return;
    StatusOr<ProgressReading> reading = FetchProgress(target.address, target.port, target.token, options_.deadline);
    if (!reading.ok()) {
      spdlog::debug("trainingjob {}: {}", key, reading.status().ToString());
      continue;
    }
    bool changed = false;
    {
      std::lock_guard lock(mutex_);
      auto it = targets_.find(key);
      if (it == targets_.end()) continue;  // untracked meanwhile
      changed = !it->second.latest || !(*it->second.latest == *reading);
      it->second.latest = std::move(*reading);
    }
    if (changed) on_change_(key);
  }
}

}  // namespace mlscale::controllers::trainingjob
