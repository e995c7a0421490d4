// A controller: a work queue and N workers calling a level-triggered reconcile function
// for each key. Errors requeue the key with backoff; a requested requeue_after
// schedules the next look. Records per-controller metrics (reconciles by result,
// latency histogram, queue depth and wait).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/kube/workqueue.h"

namespace mlscale::kube {

struct ReconcileResult {
  std::optional<std::chrono::milliseconds> requeue_after;  // look again after this long
};

// Reconciles the object named by `key` ("namespace/name"). Must be safe to call again
// for the same key: it reads the world, compares, and makes one step of progress.
using ReconcileFunction = std::function<StatusOr<ReconcileResult>(const std::string& key)>;

struct ControllerOptions {
  std::string name;  // metrics label and log prefix
  int workers = 2;
  WorkQueueOptions queue;
};

class Controller {
 public:
  Controller(ControllerOptions options, ReconcileFunction reconcile, Metrics* metrics = nullptr);
  ~Controller();  // stops
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  WorkQueue& queue() { return queue_; }
  const std::string& name() const { return options_.name; }
  // Starts the workers. Wait for the informers to sync before calling.
  void Start();
  // Shuts the queue down and joins the workers (each finishes its current reconcile).
  void Stop();
  int64_t Reconciles() const { return reconciles_.load(); }

 private:
  void Work();

  ControllerOptions options_;
  ReconcileFunction reconcile_;
  Metrics* metrics_;
  WorkQueue queue_;
  std::atomic<int64_t> reconciles_{0};
  std::vector<std::jthread> workers_;
};

}  // namespace mlscale::kube
