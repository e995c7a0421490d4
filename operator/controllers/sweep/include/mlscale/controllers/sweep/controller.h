// The HyperparameterSweep controller: a level-triggered reconcile over the informer
// caches. Each reconcile reads the sweep and its trials (child TrainingJobs, trials.h)
// from the caches, asks the Suggester for the next assignments (computed off the worker,
// suggester.h), decides with the pure Decide (sweep_state.h), creates trials with
// expectations (so a cache that lags behind its own creations never makes it create an
// index twice; creating a trial that exists is not an error), stops trials early by
// patching them, then writes the status. The status is derived from the children alone,
// so it is written last: a conflict or a crash in between only means computing it again.
// The write is a PUT bound to the version read; while the cache has not yet shown the
// sweep's own last write the reconcile waits for it (own_writes.h) rather than send a
// write bound to fail, and a conflict from another writer requeues without an error.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/controllers/sweep/own_writes.h"
#include "mlscale/controllers/sweep/suggester.h"
#include "mlscale/controllers/sweep/sweep_state.h"
#include "mlscale/kube/controller.h"
#include "mlscale/kube/events.h"
#include "mlscale/kube/expectations.h"
#include "mlscale/kube/manager.h"
#include "mlscale/kube/resource.h"

namespace mlscale::controllers::sweep {

// mlscale.io/v1alpha1 hyperparametersweeps.
kube::Resource HyperparameterSweeps();

struct ControllerConfig {
  std::vector<std::string> namespaces;  // watched namespaces; empty: all
  int workers = 2;                      // concurrent reconciles
};

class SweepController {
 public:
  // Creates the informers (sweeps; TrainingJobs labelled mlscale.io/sweep-name), the
  // handlers (a trial enqueues its controlling sweep) and the controller in `manager`,
  // which must outlive the result. When the CRD is not installed the result is inert
  // (nothing registered; a warning says so), so the other kinds still run.
  static StatusOr<std::unique_ptr<SweepController>> Register(kube::Manager& manager, ControllerConfig config);
  ~SweepController();

  // One reconcile of the sweep `key` ("namespace/name"); what the manager's workers call.
  StatusOr<kube::ReconcileResult> Reconcile(const std::string& key, std::stop_token stop);

 private:
  struct Scope;  // the informers of one watched namespace ("" = all)
  SweepController(kube::Manager& manager, ControllerConfig config);
  const Scope& ScopeFor(const std::string& namespace_name) const;
  Status WriteStatus(const Object& sweep, const Plan& plan, std::int64_t max_trials);
  // What a reconcile returns when its status write failed: a conflict is a quick requeue
  // (a fresh read, no error logged); anything else the error, counted.
  StatusOr<kube::ReconcileResult> StatusWriteFailed(const std::string& key, const Status& failed);
  // Creates trials next_index.. for `assignments`; counts the ones made into `plan`.
  Status CreateTrials(const std::string& key, const api::HyperparameterSweep& sweep, const Object& object,
                      const std::vector<hpo::Assignment>& assignments, Plan& plan);
  Status Patch(const std::string& namespace_name, const std::string& trial, const Object& patch);
  // Events and outcome metrics for trials that changed phase since this process last looked.
  void ReportTrials(const std::string& key, const Object& sweep, const std::vector<Trial>& trials);

  kube::Manager& manager_;
  ControllerConfig config_;
  std::vector<std::unique_ptr<Scope>> scopes_;
  kube::Controller* controller_ = nullptr;
  kube::Expectations expectations_;
  OwnStatusWrites own_writes_;
  kube::EventRecorder events_;
  std::unique_ptr<Suggester> suggester_;
  std::mutex phases_mutex_;
  // Per sweep: each trial's (by uid) last phase seen; a sweep seen first after a restart
  // seeds it silently, so finished trials are not announced again.
  std::map<std::string, std::map<std::string, TrialPhase>> phases_;
};

}  // namespace mlscale::controllers::sweep
