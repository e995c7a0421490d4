#include "mlscale/kube/controller.h"

#include <spdlog/spdlog.h>

#include "mlscale/kube/metrics.h"

namespace mlscale::kube {
namespace {
constexpr const char* kReconcilesMetric = "mlscale_kube_reconcile_total";
constexpr const char* kErrorsMetric = "mlscale_kube_reconcile_errors_total";
constexpr const char* kLatencyMetric = "mlscale_kube_reconcile_duration_seconds";
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
  }
}

Controller::~Controller() { Stop(); }

void Controller::Start() {
  if (!workers_.empty()) return;
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { Work(); });
}

void Controller::Stop() {
  queue_.ShutDown();
  workers_.clear();  // joins
}

void Controller::Work() {
  const Labels labels = {{"controller", options_.name}};
  while (std::optional<std::string> key = queue_.Get()) {
    auto started = std::chrono::steady_clock::now();
    StatusOr<ReconcileResult> result = reconcile_(*key);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    ++reconciles_;
    std::string outcome;
    if (!result.ok()) {
      outcome = "error";
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
    if (metrics_ != nullptr) {
      metrics_->Add(kReconcilesMetric, {{"controller", options_.name}, {"result", outcome}});
      if (outcome == "error") metrics_->Add(kErrorsMetric, labels);
      metrics_->Observe(kLatencyMetric, labels, seconds);
    }
  }
}

}  // namespace mlscale::kube
