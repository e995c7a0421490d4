#include "mlscale/controllers/sweep/suggester.h"

#include <algorithm>
#include <cstdio>

#include "mlscale/hpo/json.h"

namespace mlscale::controllers::sweep {

Suggester::Suggester(std::function<void(const std::string& key)> on_ready, std::function<void(double seconds)> on_latency)
    : on_ready_(std::move(on_ready)), on_latency_(std::move(on_latency)) {
  thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

Suggester::~Suggester() {
  thread_.request_stop();
  wake_.notify_all();
}

std::string Suggester::Fingerprint(const hpo::SamplerConfig& config, const hpo::SearchSpace& space,
                                   const std::vector<hpo::Trial>& history, int count) {
  // Everything Suggest reads, exactly: values are printed with 17 digits.
  std::string text = hpo::SamplerConfigToJson(config).dump() + hpo::SpaceToJson(space).dump() + "#" +
                     std::to_string(count);
  char value[40];
  for (const hpo::Trial& trial : history) {
    text += '|';
    text += trial.id;
    text += ':';
    text += hpo::AssignmentKey(trial.assignment);
    text += ':';
    text += std::to_string(static_cast<int>(trial.state));
    if (trial.value) {
      std::snprintf(value, sizeof value, ":%.17g", *trial.value);
      text += value;
    }
    for (const hpo::IntermediateValue& iv : trial.intermediate_values) {
      std::snprintf(value, sizeof value, ";%lld=%.17g", static_cast<long long>(iv.step), iv.value);
      text += value;
    }
  }
  return text;
}

std::optional<Suggester::Result> Suggester::Get(const std::string& key, const hpo::SamplerConfig& config,
                                                const hpo::SearchSpace& space,
                                                const std::vector<hpo::Trial>& history, int count) {
  std::string fingerprint = Fingerprint(config, space, history, count);
  std::lock_guard lock(mutex_);
  Entry& entry = entries_[key];
  if (entry.done && entry.done_fingerprint == fingerprint) return entry.done;
  if (entry.computing == fingerprint || (entry.pending && entry.pending->fingerprint == fingerprint)) {
    return std::nullopt;
  }
  if (!entry.pending) order_.push_back(key);
  entry.pending = Request{std::move(fingerprint), config, space, history, count};
  wake_.notify_one();
  return std::nullopt;
}

void Suggester::Forget(const std::string& key) {
  std::lock_guard lock(mutex_);
  entries_.erase(key);
  order_.erase(std::remove(order_.begin(), order_.end(), key), order_.end());
}

void Suggester::Loop(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    if (!wake_.wait(lock, stop, [this] { return !order_.empty(); })) return;
    const std::string key = order_.front();
    order_.pop_front();
    auto it = entries_.find(key);
    if (it == entries_.end() || !it->second.pending) continue;
    Request request = std::move(*it->second.pending);
    it->second.pending.reset();
    it->second.computing = request.fingerprint;
    lock.unlock();
    const auto started = std::chrono::steady_clock::now();
    Result result = hpo::Suggest(request.config, request.space, request.history, request.count);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (on_latency_) on_latency_(seconds);
    lock.lock();
    it = entries_.find(key);
    if (it == entries_.end()) continue;  // forgotten meanwhile
    it->second.computing.clear();
    it->second.done_fingerprint = std::move(request.fingerprint);
    it->second.done = std::move(result);
    lock.unlock();
    on_ready_(key);
    lock.lock();
  }
}

}  // namespace mlscale::controllers::sweep
