// Shared informers: one list+watch per resource (Watcher), a cache every controller
// reads (ObjectCache), and event handlers called for each change. Handlers run on the
// informer's watch thread, in order, and should only enqueue work.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "mlscale/kube/cache.h"
#include "mlscale/kube/watch.h"
#include "mlscale/kube/workqueue.h"

namespace mlscale::kube {

struct EventHandler {
  std::function<void(const ObjectPtr& object)> on_add{};
  std::function<void(const ObjectPtr& old_object, const ObjectPtr& new_object)> on_update{};
  // `object` is the final state the watch delivered with the deletion. When the
  // deletion was only noticed by a relist (the watch missed it), `final_state_unknown`
  // is true and `object` is the last state cached, like client-go's
  // DeletedFinalStateUnknown tombstone.
  std::function<void(const ObjectPtr& object, bool final_state_unknown)> on_delete{};
  // Every cached object again, each InformerOptions::resync_period (unset: ignored).
  std::function<void(const ObjectPtr& object)> on_resync{};
};

struct InformerOptions {
  // Selectors, paging, backoff, and `watch.transform`: applied to every object before it
  // is cached, e.g. TrimPod to drop fields no controller reads. A transform must keep
  // metadata.name/namespace/uid/resourceVersion/ownerReferences/labels.
  WatcherOptions watch{};
  // metadata.managedFields is dropped before caching (no controller reads it and it is
  // often the largest part of an object) unless this is set.
  bool keep_managed_fields = false;
  // The cache keeps objects packed (ObjectCache::Storage::kPacked: MessagePack, decoded
  // on each read). With a transform that keeps only what the controller reads, a cached
  // object costs about its JSON text's size instead of 5-8x that.
  bool packed = false;
  // When > 0, handlers' on_resync gets every cached object this often (a periodic
  // level-triggered look at everything, like controller-runtime's SyncPeriod).
  std::chrono::milliseconds resync_period{0};
};

class SharedInformer {
 public:
  // `client` and `metrics` must outlive the informer.
  SharedInformer(Client& client, Resource resource, std::string namespace_name, InformerOptions options,
                 Metrics* metrics = nullptr);
  ~SharedInformer();  // stops
  SharedInformer(const SharedInformer&) = delete;
  SharedInformer& operator=(const SharedInformer&) = delete;

  // Adds a handler. When the informer has delivered its first list already, the handler
  // first gets an on_add for every cached object (under the same lock as deliveries,
  // so it misses nothing and sees nothing twice).
  void AddHandler(EventHandler handler);
  void Start();
  void Stop();
  bool HasSynced() const;
  // Waits until synced; false on timeout or stop.
  bool WaitForSync(std::chrono::milliseconds timeout, std::stop_token stop = {}) const;

  const ObjectCache& cache() const { return cache_; }
  const Resource& resource() const { return resource_; }
  const Watcher& watcher() const { return watcher_; }

 private:
  void OnList(std::vector<Object>&& items);
  void OnEvent(WatchEvent&& event);
  void ResyncLoop(std::stop_token stop);

  Resource resource_;
  InformerOptions options_;
  ObjectCache cache_;
  std::mutex handlers_mutex_;  // held while delivering, so AddHandler sees a consistent state
  std::vector<EventHandler> handlers_;
  bool listed_ = false;        // guarded by handlers_mutex_: the first list was delivered
  Watcher watcher_;
  std::jthread resync_;
};

// One informer per (resource, namespace, selectors), shared by every controller of a process.
class InformerFactory {
 public:
  InformerFactory(Client& client, Metrics* metrics = nullptr) : client_(client), metrics_(metrics) {}
  // The informer for `resource` in `namespace_name` ("" = all), created on first use.
  // Options are taken from the first call for a given key.
  SharedInformer& Informer(const Resource& resource, const std::string& namespace_name = "",
                           InformerOptions options = {});
  void StartAll();
  void StopAll();
  bool AllSynced() const;
  bool WaitForSync(std::chrono::milliseconds timeout, std::stop_token stop = {}) const;

 private:
  Client& client_;
  Metrics* metrics_;
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<SharedInformer>> informers_;
};

// A handler that enqueues the key of each object that changed (and on resync).
EventHandler EnqueueObject(WorkQueue& queue);
// The key of `object`'s controlling owner (the ownerReference with controller: true)
// when its apiVersion group and kind match; the owner is in the object's namespace.
std::optional<std::string> ControllerOwnerKey(const Object& object, const std::string& owner_group,
                                              const std::string& owner_kind);
// A handler that enqueues the key of the controlling owner (ControllerOwnerKey); events
// on objects owned by something else are ignored. For children (pods, services, a
// sweep's TrainingJobs) of a custom resource. On an update that changes the owner
// references, the old owner is enqueued too. `priority`: kLow when a child's change only
// brings the owner's status up to date (WorkQueue says what that buys under a backlog).
EventHandler EnqueueControllerOwner(WorkQueue& queue, std::string owner_group, std::string owner_kind,
                                    WorkQueue::Priority priority = WorkQueue::Priority::kNormal);
// A handler that enqueues the keys `map` returns for each object (for relations that
// are not owner references, e.g. a label naming another object).
EventHandler EnqueueMapped(WorkQueue& queue, std::function<std::vector<std::string>(const Object&)> map);

// Update predicates: whether an update is worth a reconcile.
using UpdatePredicate = std::function<bool(const Object& old_object, const Object& new_object)>;
// metadata.generation changed (the API server bumps it on spec changes only, for
// resources with a status subresource), or the object started being deleted.
bool GenerationChanged(const Object& old_object, const Object& new_object);
// Anything changed besides status and bookkeeping (resourceVersion, managedFields):
// our own status writes come back from the watch as such updates and are ignored.
bool ChangedBeyondStatus(const Object& old_object, const Object& new_object);
// `handler` with its on_update called only when `predicate` holds; adds, deletes and
// resyncs pass unchanged.
EventHandler WithPredicate(EventHandler handler, UpdatePredicate predicate);

// Keeps only apiVersion, kind and metadata name/namespace/uid/resourceVersion/generation/
// labels/ownerReferences/deletionTimestamp/creationTimestamp: a transform for caches that
// only answer "does it exist, who owns it" (controller-runtime's metadata-only watches).
void KeepMetadataOnly(Object& object);

// Drops what controllers do not read from a Pod (managedFields, annotations except
// those prefixed with `keep_annotation_prefix`, most of the spec, volumes...), keeping
// metadata identity/labels/owners/deletion, spec.nodeName/containers[].name/restartPolicy,
// and status phase/conditions/podIP/containerStatuses (ready, restartCount, state).
void TrimPod(Object& pod, const std::string& keep_annotation_prefix = "mlscale.io/");

}  // namespace mlscale::kube
