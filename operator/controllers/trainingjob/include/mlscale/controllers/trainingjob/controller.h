// The TrainingJob controller: a level-triggered reconcile over the informer caches.
// Each reconcile reads the job and its children from the caches, asks the pure state
// machine (job_state.h) what to do, creates or deletes children (children.h) with
// expectations so a lagging cache never makes it create a pod twice, and writes the
// status through the status subresource (conflict: requeue and compute again). A
// decision that deletes (a restart, a failure, the TTL) is written before acting, so it
// is recorded once; one that only creates a group writes nothing: the look that sees
// the pods (their events come back at low priority) writes one status. Pod names are
// deterministic and creation is create-if-absent, so an operator restarted midway
// finishes the same group instead of starting another.
#pragma once

#include <chrono>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/controllers/trainingjob/children.h"
#include "mlscale/controllers/trainingjob/gang.h"
#include "mlscale/controllers/trainingjob/job_state.h"
#include "mlscale/kube/controller.h"
#include "mlscale/kube/events.h"
#include "mlscale/kube/expectations.h"
#include "mlscale/kube/manager.h"
#include "mlscale/kube/resource.h"

namespace mlscale::controllers::trainingjob {

class ProgressPoller;

// mlscale.io/v1alpha1 trainingjobs.
kube::Resource TrainingJobs();

struct ControllerConfig {
  std::vector<std::string> namespaces;  // watched namespaces; empty: all
  int workers = 2;                      // concurrent reconciles
  ChildOptions children;
  DecideOptions decide;
  // The budget of progress polls (each may cause one status write), across all jobs.
  double status_writes_per_second = 20;
  std::chrono::milliseconds progress_interval{1000};  // per job, at most this often
  // Gang scheduling: when a PodGroup CRD is installed (coscheduling or Volcano; looked up
  // again every `ttl` and after a miss), new worker groups get a PodGroup and their pods
  // that flavour's scheduler name ("" turns a flavour off).
  GangDiscovery::Options gang;
};

class TrainingJobController {
 public:
  // Creates the informers (jobs; pods, Services, ConfigMaps and Secrets labelled as ours;
  // Nodes), the handlers and the controller in `manager`, which must outlive the result.
  static StatusOr<std::unique_ptr<TrainingJobController>> Register(kube::Manager& manager, ControllerConfig config);
  ~TrainingJobController();

  // One reconcile of the job `key` ("namespace/name"); what the manager's workers call.
  StatusOr<kube::ReconcileResult> Reconcile(const std::string& key, std::stop_token stop);

 private:
  struct Scope;  // the informers of one watched namespace ("" = all)
  TrainingJobController(kube::Manager& manager, ControllerConfig config);
  const Scope& ScopeFor(const std::string& namespace_name) const;
  // A child to create, and the resource it is of.
  struct Creation {
    kube::Resource resource;
    Object object;
  };
  // The token Secret, trainer ConfigMap, hostfile and SSH Secret (MPI), PodGroup and
  // Service the caches do not hold, in the order they are to be created (the Secret the
  // pods read first). Errors: no randomness for a token or key.
  StatusOr<std::vector<Creation>> MissingSupportingChildren(const Scope& scope, const JobRef& job,
                                                            const ChildOptions& children);
  Status WriteStatus(const Object& job, const Decision& decision);
  // Deletes the decision's pods, creates `supporting` and then its pods in one slow start
  // (kube::SlowStartBatch: a job's objects cost a few round trips, not one each) and
  // deletes the job when asked. Returns whether every pod of decision.create_ranks now
  // exists; the first failure goes into `error`.
  bool Act(const std::string& key, const JobRef& job, const Decision& decision, const Object& original,
           std::vector<Creation> supporting, const ChildOptions& children, Status& error);
  void RecordOutcome(const Object& job, const JobStatus& before, const Decision& decision);
  void TrackProgress(const std::string& key, const Scope& scope, const JobRef& job, const JobStatus& status,
                     const std::vector<kube::ObjectPtr>& pods);

  kube::Manager& manager_;
  ControllerConfig config_;
  std::vector<std::unique_ptr<Scope>> scopes_;
  const kube::SharedInformer* nodes_ = nullptr;
  kube::Controller* controller_ = nullptr;
  kube::Expectations expectations_;
  std::unique_ptr<GangDiscovery> gang_;
  kube::EventRecorder events_;
  std::unique_ptr<ProgressPoller> poller_;
};

}  // namespace mlscale::controllers::trainingjob
