// The InferenceService controller: a level-triggered reconcile over informer caches. Each
// reconcile reads the service, the TrainingJob its model comes from, its Deployments and
// pods; resolves the model sources into revisions (children.h); asks the pure planner
// (service_state.h) for replicas, traffic and status; writes the children (server-side
// apply, skipped when the spec hash matches), deletes retired revisions, and writes the
// status through the status subresource. Autoscaling runs in the ScalingPoller's thread
// (scaling.h), which enqueues the service when a decision changes.
//
// spec.replicas (the scale subresource: kubectl scale, an HPA, KEDA) is only ever read.
#pragma once

#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/controllers/inference/children.h"
#include "mlscale/controllers/inference/scaling.h"
#include "mlscale/controllers/inference/service_state.h"
#include "mlscale/kube/controller.h"
#include "mlscale/kube/events.h"
#include "mlscale/kube/manager.h"
#include "mlscale/kube/resource.h"

namespace mlscale::controllers::inference {

// mlscale.io/v1alpha1 inferenceservices.
kube::Resource InferenceServices();

struct ControllerConfig {
  std::vector<std::string> namespaces;  // watched namespaces; empty: all
  int workers = 2;
  ChildOptions children;
  ScalingPoller::Options scaling;
  // status.revisions[].modelVersion is read from up to 3 ready pods per revision
  // (served_version.h), each within this deadline, and again after the interval while
  // the source is not pinned to a version.
  std::chrono::milliseconds served_version_deadline{500};
  std::chrono::milliseconds served_version_interval{30'000};
};

class InferenceServiceController {
 public:
  // Creates the informers (services; Deployments, Services and pods labelled as ours;
  // TrainingJobs), the handlers, the poller and the controller in `manager`, which must
  // outlive the result.
  static StatusOr<std::unique_ptr<InferenceServiceController>> Register(kube::Manager& manager, ControllerConfig config);
  ~InferenceServiceController();

  StatusOr<kube::ReconcileResult> Reconcile(const std::string& key, std::stop_token stop);

 private:
  struct Scope;
  InferenceServiceController(kube::Manager& manager, ControllerConfig config);
  const Scope& ScopeFor(const std::string& namespace_name) const;
  Status EnsureRouterAccount(const std::string& namespace_name);
  // Applies `object` unless the cached one carries the same spec hash and `replicas`.
  Status ApplyChild(const kube::Resource& resource, const kube::SharedInformer& informer, const Object& object);
  Status WriteStatus(const Object& original, Object status, const std::vector<kube::Condition>& conditions);

  kube::Manager& manager_;
  ControllerConfig config_;
  std::vector<std::unique_ptr<Scope>> scopes_;
  kube::Controller* controller_ = nullptr;
  kube::EventRecorder events_;
  std::unique_ptr<ScalingPoller> poller_;
  std::mutex accounts_mutex_;
  std::vector<std::string> accounts_made_;  // namespaces with the router's account and binding
};

}  // namespace mlscale::controllers::inference
