#include "mlscale/kube/controller.h"

#include <spdlog/spdlog.h>

#include "mlscale/kube/metrics.h"

namespace mlscale::kube {
namespace {
constexpr const char* kReconcilesMetric = "mlscale_kube_reconcile_total";
constexpr const char* kErrorsMetric = "mlscale_kube_reconcile_errors_total";
constexpr const char* kLatencyMetric = "mlscale_kube_reconcile_duration_seconds";
constexpr const char* kPanicsMetric = "mlscale_kube_reconcile_panics_total";
}  // namespace

Controller::Controller(ControllerOptions options, ReconcileFunction reconcile, Metrics* metrics)
    : options_(std::move(options)),
      reconcile_(std::move(reconcile)),
      metrics_(metrics),
      queue_([this] {
        WorkQueueOptions queue = options_.queue;
        if (queue.name == "queue") queue.name = options_.name;
        return queue;
      }(), metrics) {
  if (metrics_ != nullptr) {
    metrics_->Describe(kReconcilesMetric, "Reconciles, by controller and result (success, error, requeue).");
    metrics_->Describe(kErrorsMetric, "Reconciles that returned an error, by controller.");
    metrics_->Describe(kLatencyMetric, "Reconcile latency in seconds, by controller.");
    metrics_->Describe(kPanicsMetric, "Reconciles that threw an exception (caught, requeued), by controller.");
  }
}

Controller::~Controller() { Stop(); }

void Controller::Start(std::stop_token stop) {
  if (!workers_.empty()) return;
  forward_stop_.emplace(std::move(stop), std::function<void()>([this] { stopping_.request_stop(); }));
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { Work(); });
}

void Controller::Stop() {
  stopping_.request_stop();
  queue_.ShutDown();
  workers_.clear();  // joins
  forward_stop_.reset();
}

void Controller::Work() {
  const Labels labels = {{"controller", options_.name}};
  while (std::optional<std::string> key = queue_.Get()) {
    auto started = std::chrono::steady_clock::now();
    StatusOr<ReconcileResult> result = Internal("reconcile did not run");
    bool threw = false;
    try {
      result = reconcile_(*key, stopping_.get_token());
    } catch (const std::exception& error) {
      threw = true;
      result = Internal(std::string("reconcile threw: ") + error.what());
    } catch (...) {
      threw = true;
      result = Internal("reconcile threw a non-standard exception");
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    ++reconciles_;
    std::string outcome;
    if (!result.ok()) {
      outcome = threw ? "panic" : "error";
      if (threw && metrics_ != nullptr) metrics_->Add(kPanicsMetric, labels);
      spdlog::warn("{}: reconcile {} failed: {}", options_.name, *key, result.status().ToString());
      queue_.AddRateLimited(*key);
    } else {
      queue_.Forget(*key);
      if (result->requeue_after) {
        outcome = "requeue";
        queue_.AddAfter(*key, *result->requeue_after);
      } else {
        outcome = "success";
      }
    }
    queue_.Done(*key);
    spdlog::trace("{}: reconcile {} {} in {:.1f} ms", options_.name, *key, outcome, seconds * 1000);
    if (metrics_ != nullptr) {
      metrics_->Add(kReconcilesMetric, {{"controller", options_.name}, {"result", outcome}});
      if (!result.ok()) metrics_->Add(kErrorsMetric, labels);
      metrics_->Observe(kLatencyMetric, labels, seconds);
    }
  }
}

}  // namespace mlscale::kube
