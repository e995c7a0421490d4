#include "mlscale/controllers/inference/autoscaler.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace mlscale::inference {
namespace {

using std::chrono::seconds;

std::string Number(double value) {
  std::string text = std::to_string(value);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

// Knative's applyBounds (pkg/reconciler/autoscaling/kpa/scaler.go): max 0 is unbounded.
std::int32_t ApplyBounds(const AutoscalerSettings& settings, std::int32_t replicas) {
  replicas = std::max(replicas, settings.min_replicas);
  if (settings.max_replicas > 0) replicas = std::min(replicas, settings.max_replicas);
  return replicas;
}

}  // namespace

Status AutoscalerSettings::Validate() const {
  // NaN fails every comparison below, so each check is written as "not (valid)".
  if (!(target > 0) || !std::isfinite(target)) {
    return InvalidArgument("target: must be > 0, got " + Number(target));
  }
  if (min_replicas < 0) {
    return InvalidArgument("minReplicas: must be >= 0, got " + std::to_string(min_replicas));
  }
  if (max_replicas < 0) {
    return InvalidArgument("maxReplicas: must be >= 0 (0: no limit), got " + std::to_string(max_replicas));
  }
  if (max_replicas > 0 && max_replicas < min_replicas) {
    return InvalidArgument("maxReplicas: must be >= minReplicas (" + std::to_string(min_replicas) +
                           "), got " + std::to_string(max_replicas));
  }
  if (stable_window < seconds(5) || stable_window > seconds(3600)) {
    return InvalidArgument("stableWindow: must be between 5s and 1h, got " +
                           std::to_string(stable_window.count()) + "s");
  }
  if (panic_window < seconds(1) || panic_window > stable_window) {
    return InvalidArgument("panicWindow: must be between 1s and the stable window (" +
                           std::to_string(stable_window.count()) + "s), got " +
                           std::to_string(panic_window.count()) + "s");
  }
  if (!(panic_threshold >= 1.1 && panic_threshold <= 10)) {
    return InvalidArgument("panicThreshold: must be between 1.1 and 10, got " + Number(panic_threshold));
  }
  if (!(max_scale_up_rate > 1) || !std::isfinite(max_scale_up_rate)) {
    return InvalidArgument("maxScaleUpRate: must be > 1, got " + Number(max_scale_up_rate));
  }
  if (!(max_scale_down_rate > 1) || !std::isfinite(max_scale_down_rate)) {
    return InvalidArgument("maxScaleDownRate: must be > 1, got " + Number(max_scale_down_rate));
  }
  if (scale_down_delay < seconds(0) || scale_down_delay > seconds(3600)) {
    return InvalidArgument("scaleDownDelay: must be between 0s and 1h, got " +
                           std::to_string(scale_down_delay.count()) + "s");
  }
  if (scale_to_zero_grace_period < seconds(0) || scale_to_zero_grace_period > seconds(3600)) {
    return InvalidArgument("scaleToZeroGracePeriod: must be between 0s and 1h, got " +
                           std::to_string(scale_to_zero_grace_period.count()) + "s");
  }
  if (activation_scale < 1) {
    return InvalidArgument("activationScale: must be >= 1, got " + std::to_string(activation_scale));
  }
  return Status::Ok();
}

Autoscaler::Autoscaler(const AutoscalerSettings& settings, std::int32_t ready_replicas, Time now)
    : settings_(settings) {
  if (ready_replicas > 1) {
    panic_since_ = now;
    max_panic_replicas_ = ready_replicas;
  }
}

void Autoscaler::Record(Time now, double observed, std::int32_t ready_replicas) {
  if (!std::isfinite(observed) || observed < 0) observed = 0;
  if (observed == 0 && ready_replicas == 0) return;
  if (!buckets_.empty()) {
    const Time last = buckets_.back().second;
    if (now < last) return;
    if (now == last) {
      buckets_.back().sum += observed;
      return;
    }
    // A whole stable window without data starts a new run (Knative resets its buckets).
    if (now - last >= settings_.stable_window) first_recorded_.reset();
  }
  if (!first_recorded_) first_recorded_ = now;
  buckets_.push_back({now, observed});
  while (buckets_.front().second <= now - settings_.stable_window) buckets_.pop_front();
}

double Autoscaler::WindowAverage(Time now, seconds window) const {
  if (buckets_.empty()) return 0;
  const Time last = buckets_.back().second;
  if (last <= now - window) return 0;
  double sum = 0;
  for (auto it = buckets_.rbegin(); it != buckets_.rend() && it->second > now - window; ++it) {
    sum += it->sum;
  }
  const Time from = std::max(*first_recorded_, now - window + seconds(1));
  // Rounded to 6 decimals as Knative does, so that 70.0000001 / 70 does not ask for 2 replicas.
  const double average = sum / static_cast<double>((last - from).count() + 1);
  return std::round(average * 1e6) / 1e6;
}

std::int32_t Autoscaler::Delayed(Time now, std::int32_t decision) {
  if (settings_.scale_down_delay <= seconds(0)) {
    recent_decisions_.clear();
    return decision;
  }
  while (!recent_decisions_.empty() && recent_decisions_.back().sum <= decision) {
    recent_decisions_.pop_back();  // a later, larger-or-equal value dominates it
  }
  recent_decisions_.push_back({now, static_cast<double>(decision)});
  while (recent_decisions_.front().second <= now - settings_.scale_down_delay) {
    recent_decisions_.pop_front();
  }
  return static_cast<std::int32_t>(recent_decisions_.front().sum);
}

AutoscalerDecision Autoscaler::Decide(Time now, std::int32_t ready_replicas) {
  AutoscalerDecision decision;
  ready_replicas = std::max(ready_replicas, 0);
  if (buckets_.empty() || buckets_.back().second < now - settings_.stable_window) {
    // No data: keep the current size, like Knative (its decider returns "invalid" and the
    // scaler leaves the scale alone).
    decision.decider_replicas = ready_replicas;
    decision.desired_replicas = ApplyBounds(settings_, ready_replicas);
    decision.panicking = panic_since_.has_value();
    zero_since_.reset();
    return decision;
  }
  decision.stable_demand = WindowAverage(now, settings_.stable_window);
  decision.panic_demand = WindowAverage(now, settings_.panic_window);

  const double ready = std::max(1.0, static_cast<double>(ready_replicas));
  const double max_up = std::ceil(settings_.max_scale_up_rate * ready);
  const double max_down = std::floor(ready / settings_.max_scale_down_rate);
  const double stable_replicas = std::ceil(decision.stable_demand / settings_.target);
  const double panic_replicas = std::ceil(decision.panic_demand / settings_.target);
  auto within_rates = [&](double replicas) {
    auto value = static_cast<std::int32_t>(std::min(std::max(replicas, max_down), max_up));
    // Scaling from zero (or a small revision) starts at least activation_scale replicas.
    if (replicas > 0) value = std::max(value, settings_.activation_scale);
    return value;
  };
  const std::int32_t desired_stable = within_rates(stable_replicas);
  const std::int32_t desired_panic = within_rates(panic_replicas);

  const bool over_threshold = panic_replicas / ready >= settings_.panic_threshold;
  if (over_threshold) {
    panic_since_ = now;  // start, or extend, the panic
  } else if (panic_since_ && *panic_since_ + settings_.stable_window < now) {
    panic_since_.reset();  // the surge has made its way into the stable demand
    max_panic_replicas_ = 0;
  }

  std::int32_t replicas = desired_stable;
  if (panic_since_) {
    // Provision for the larger of the two, and never scale down while panicking.
    max_panic_replicas_ = std::max({max_panic_replicas_, desired_stable, desired_panic});
    replicas = max_panic_replicas_;
  }
  replicas = Delayed(now, replicas);

  decision.panicking = panic_since_.has_value();
  decision.decider_replicas = replicas;
  std::int32_t bounded = ApplyBounds(settings_, replicas);
  if (bounded == 0) {
    // Keep one replica through the grace period, so a request arriving meanwhile finds one.
    if (!zero_since_) zero_since_ = now;
    if (now - *zero_since_ < settings_.scale_to_zero_grace_period) bounded = 1;
  } else {
    zero_since_.reset();
  }
  decision.desired_replicas = bounded;
  return decision;
}

}  // namespace mlscale::inference
