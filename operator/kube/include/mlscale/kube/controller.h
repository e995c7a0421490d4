// A controller: a work queue and N workers calling a level-triggered reconcile function
// for each key. Errors requeue the key with backoff; a requested requeue_after
// schedules the next look. An exception escaping the reconcile is caught: logged with
// the key, counted (mlscale_kube_reconcile_panics_total) and requeued with backoff, so
// one bad object cannot crash the process. Records per-controller metrics (reconciles
// by result, latency histogram, queue depth and wait).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <stop_token>
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
// `stop` is requested when the controller stops (shutdown, or leadership lost): pass it
// to everything that waits (client calls, sleeps) and return soon after; writes must
// not be started once it is requested.
using ReconcileFunction =
    std::function<StatusOr<ReconcileResult>(const std::string& key, std::stop_token stop)>;

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
  // Starts the workers. Wait for the informers to sync before calling. When `stop` is
  // requested the reconciles' stop token is too (Stop() must still be called to join).
  // A controller runs once: after Stop() it cannot be started again.
  void Start(std::stop_token stop = {});
  // Requests the reconciles' stop token, shuts the queue down and joins the workers
  // (each returns from its current reconcile).
  void Stop();
  int64_t Reconciles() const { return reconciles_.load(); }

 private:
  void Work();

  ControllerOptions options_;
  ReconcileFunction reconcile_;
  Metrics* metrics_;
  WorkQueue queue_;
  std::atomic<int64_t> reconciles_{0};
  std::stop_source stopping_;
  std::optional<std::stop_callback<std::function<void()>>> forward_stop_;
  std::vector<std::jthread> workers_;
};

}  // namespace mlscale::kube
