// Shared informers: one list+watch per resource (Watcher), a cache every controller
// reads (ObjectCache), and event handlers called for each change. Handlers run on the
// informer's watch thread, in order, and should only enqueue work.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "mlscale/kube/cache.h"
#include "mlscale/kube/watch.h"

namespace mlscale::kube {

class WorkQueue;

struct EventHandler {
  std::function<void(const ObjectPtr& object)> on_add;
  std::function<void(const ObjectPtr& old_object, const ObjectPtr& new_object)> on_update;
  // `object` is the last state known (after a relist it may be older than the deletion).
  std::function<void(const ObjectPtr& object)> on_delete;
};

struct InformerOptions {
  // Selectors, paging, backoff, and `watch.transform`: applied to every object before it
  // is cached, e.g. TrimPod to drop fields no controller reads. A transform must keep
  // metadata.name/namespace/uid/resourceVersion/ownerReferences/labels.
  WatcherOptions watch;
};

class SharedInformer {
 public:
  // `client` and `metrics` must outlive the informer.
  SharedInformer(Client& client, Resource resource, std::string namespace_name, InformerOptions options,
                 Metrics* metrics = nullptr);
  ~SharedInformer();  // stops
  SharedInformer(const SharedInformer&) = delete;
  SharedInformer& operator=(const SharedInformer&) = delete;

  // Adds a handler. When the informer has synced already, the handler first gets an
  // on_add for every cached object.
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

  Resource resource_;
  InformerOptions options_;
  ObjectCache cache_;
  std::mutex handlers_mutex_;  // held while delivering, so AddHandler sees a consistent state
  std::vector<EventHandler> handlers_;
  Watcher watcher_;
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

// A handler that enqueues the key of each object that changed.
EventHandler EnqueueObject(WorkQueue& queue);
// A handler that enqueues the key of the controlling owner (ownerReference with
// controller: true) when its apiVersion group and kind match; events on objects
// owned by something else are ignored. For children (pods, services) of a custom resource.
EventHandler EnqueueControllerOwner(WorkQueue& queue, std::string owner_group, std::string owner_kind);

// Drops what controllers do not read from a Pod (managedFields, annotations except
// those prefixed with `keep_annotation_prefix`, most of the spec, volumes...), keeping
// metadata identity/labels/owners/deletion, spec.nodeName/containers[].name/restartPolicy,
// and status phase/conditions/podIP/containerStatuses (ready, restartCount, state).
void TrimPod(Object& pod, const std::string& keep_annotation_prefix = "mlscale.io/");

}  // namespace mlscale::kube
