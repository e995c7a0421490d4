// The InferenceService autoscaler: a KPA-style decider (Knative Serving's Pod Autoscaler),
// pure and deterministic. The controller feeds it one observation of the revision's load per
// second (total in-flight requests or requests per second, from the router or by scraping the
// replicas) and asks it for the number of replicas the revision should have.
//
// Time is an input: every call takes `now` (seconds since any fixed epoch the caller keeps), so
// the same trace always gives the same decisions. No clocks, threads or I/O inside.
//
// The algorithm is Knative's (knative.dev/serving/pkg/autoscaler/scaling, the same in v0.42 and
// v0.51), and tests/operator/controllers/inference/ replays the same traces through Knative's own
// decider and compares every tick (results: tests/bench/results/autoscaler.md):
//   stable demand = average observation over the stable window, panic demand = over the panic
//   window; desired = ceil(demand / target), kept within [floor(ready / maxScaleDownRate),
//   ceil(ready * maxScaleUpRate)] (ready counts as 1 when it is 0);
//   panic starts when ceil(panic demand / target) / max(1, ready) >= panicThreshold, and while
//   panicking the decision is the larger of stable and panic and never goes down; panic ends once
//   a whole stable window has passed without being over the threshold;
//   a scale-down is applied only after the lower value has held for scaleDownDelay (the decision
//   is the maximum over that delay);
//   then min/max replicas, and with min 0: zero only after scaleToZeroGracePeriod of wanting zero
//   (one replica is kept meanwhile), and back to at least activationScale on the first request.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "mlscale/common/status.h"

namespace mlscale::inference {

// Which load the autoscaler scales on. Knative's `autoscaling.knative.dev/metric`.
enum class ScalingMetric { kConcurrency, kRequestsPerSecond };

// The autoscaling settings of one revision. Every default is Knative's for the same concept
// (config-autoscaler), so a user moving from Knative gets the behaviour they know.
struct AutoscalerSettings {
  ScalingMetric metric = ScalingMetric::kConcurrency;
  // Load per replica to aim at: in-flight requests (concurrency) or requests/s (rps). The
  // default is Knative's effective concurrency target: container-concurrency-target-default 100
  // times target-utilization-percentage 70 %. For rps pick a value (Knative: 200 x 70 % = 140).
  double target = 70;
  // Replica bounds. min 0 allows scale to zero; max 0 means no upper bound (Knative's max-scale 0).
  std::int32_t min_replicas = 0;
  std::int32_t max_replicas = 0;
  // The window the stable demand averages over (Knative stable-window, 60 s; 5 s .. 1 h).
  std::chrono::seconds stable_window{60};
  // The window the panic demand averages over (Knative: panic-window-percentage 10 % of the
  // stable window, 6 s). At least 1 s and at most the stable window.
  std::chrono::seconds panic_window{6};
  // Panic when the panic demand needs this many times the ready replicas (Knative
  // panic-threshold-percentage 200 %, i.e. 2.0; from 1.1 to 10).
  double panic_threshold = 2.0;
  // At most ceil(ready * rate) replicas in one decision (Knative max-scale-up-rate 1000; > 1).
  double max_scale_up_rate = 1000;
  // At least floor(ready / rate) replicas in one decision (Knative max-scale-down-rate 2; > 1).
  double max_scale_down_rate = 2;
  // A lower decision takes effect only once it has held this long (Knative scale-down-delay 0 s;
  // 0 .. 1 h).
  std::chrono::seconds scale_down_delay{0};
  // With min_replicas 0: how long the revision keeps one replica after the demand went to zero,
  // before scaling to zero (Knative scale-to-zero-grace-period 30 s).
  std::chrono::seconds scale_to_zero_grace_period{30};
  // Replicas to start when scaling up from zero (Knative activation-scale 1; >= 1).
  std::int32_t activation_scale = 1;

  // OK, or InvalidArgument naming the first bad field (e.g. "target: must be > 0, got 0").
  Status Validate() const;
};

// One decision and what it was made from (for the InferenceService status and for logs).
struct AutoscalerDecision {
  // Replicas the revision should have now: the value to write to the Deployment.
  std::int32_t desired_replicas = 0;
  // The decider's value before min/max replicas and the scale-to-zero grace period (what
  // Knative's decider returns; without data, where Knative's says "invalid", the ready count).
  std::int32_t decider_replicas = 0;
  bool panicking = false;
  // The averaged observations the decision used (in the metric's unit).
  double stable_demand = 0;
  double panic_demand = 0;
};

// The decider of one revision. Not thread-safe: one controller thread drives it.
class Autoscaler {
 public:
  using Time = std::chrono::seconds;  // since the caller's fixed epoch

  // `settings` must be valid (Validate()). `ready_replicas` is the revision's ready replica count
  // when the autoscaler is created: with more than one, it starts in panic mode at `now`, so an
  // operator restart (which loses the metric history) does not scale a busy revision down
  // before a stable window of data has been seen (Knative does the same).
  Autoscaler(const AutoscalerSettings& settings, std::int32_t ready_replicas, Time now);

  // Records one observation of the revision's load at `now` (the metric's unit), with the
  // revision's ready replicas at that time. Observations in the same second add up (several
  // routers each report their share). An observation of 0 while no replica is ready carries no
  // information and is dropped, as Knative's collector does, so the demand after
  // scale-from-zero is not diluted by the idle time. Observations older than the newest
  // recorded second are dropped. A negative or non-finite value is recorded as 0.
  void Record(Time now, double observed, std::int32_t ready_replicas);

  // Decides the replica count at `now` given the ready replicas. Call it once per second after
  // that second's Record calls; `now` must not go backwards. When the newest observation is
  // more than a stable window old (or there is none) the decider has no data and keeps the
  // current size (ready_replicas, bounded), as Knative does.
  AutoscalerDecision Decide(Time now, std::int32_t ready_replicas);

  // Changes the settings (a spec update; must be valid). The observations still held (those of
  // the last stable window under the old settings) and the panic state are kept.
  void UpdateSettings(const AutoscalerSettings& settings) { settings_ = settings; }

  const AutoscalerSettings& settings() const { return settings_; }

 private:
  // The per-second sums of observations; the front is the oldest second still needed.
  struct Bucket {
    Time second;
    double sum;
  };
  // Average of the recorded seconds in (now - window, now], over the seconds from the first
  // recorded one (or the window start, if later) to the last recorded one: seconds without
  // data after the last observation do not count, as in Knative's TimedFloat64Buckets.
  double WindowAverage(Time now, std::chrono::seconds window) const;
  // The scale-down delay: the largest decider value over (now - delay, now].
  std::int32_t Delayed(Time now, std::int32_t decision);

  AutoscalerSettings settings_;
  std::deque<Bucket> buckets_;
  // The first recorded second of the current run of data (reset after a whole stable window
  // without any observation).
  std::optional<Time> first_recorded_;
  std::optional<Time> panic_since_;  // the last time the panic threshold was crossed
  std::int32_t max_panic_replicas_ = 0;
  std::deque<Bucket> recent_decisions_;  // for the scale-down delay (sum = the decision)
  std::optional<Time> zero_since_;       // when the bounded decision first became 0
};

}  // namespace mlscale::inference
