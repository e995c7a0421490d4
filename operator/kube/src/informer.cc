#include "mlscale/kube/informer.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "mlscale/kube/workqueue.h"

namespace mlscale::kube {

namespace {

// The informer's transform: managedFields dropped (unless kept), then the user's.
WatcherOptions CachingOptions(const InformerOptions& options) {
  WatcherOptions watch = options.watch;
  if (options.keep_managed_fields) return watch;
  watch.transform = [user = std::move(watch.transform)](Object& object) {
    if (object.is_object()) {
      auto metadata = object.find("metadata");
      if (metadata != object.end() && metadata->is_object()) metadata->erase("managedFields");
    }
    if (user) user(object);
  };
  return watch;
}

}  // namespace

SharedInformer::SharedInformer(Client& client, Resource resource, std::string namespace_name,
                               InformerOptions options, Metrics* metrics)
    : resource_(resource),
      options_(std::move(options)),
      cache_(options_.packed ? ObjectCache::Storage::kPacked : ObjectCache::Storage::kObjects),
      watcher_(client, std::move(resource), std::move(namespace_name), CachingOptions(options_),
               Watcher::Handlers{
                   [this](std::vector<Object>&& items, const std::string&) { OnList(std::move(items)); },
                   [this](WatchEvent&& event) { OnEvent(std::move(event)); }},
               metrics) {}

SharedInformer::~SharedInformer() { Stop(); }

void SharedInformer::Start() {
  watcher_.Start();
  if (options_.resync_period.count() > 0 && !resync_.joinable()) {
    resync_ = std::jthread([this](std::stop_token stop) { ResyncLoop(stop); });
  }
}

void SharedInformer::Stop() {
  if (resync_.joinable()) {
    resync_.request_stop();
    resync_.join();
  }
  watcher_.Stop();
}

bool SharedInformer::HasSynced() const { return watcher_.HasSynced(); }

bool SharedInformer::WaitForSync(std::chrono::milliseconds timeout, std::stop_token stop) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!HasSynced()) {
    if (stop.stop_requested() || std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

void SharedInformer::AddHandler(EventHandler handler) {
  std::lock_guard lock(handlers_mutex_);
  // listed_ (not the watcher's synced flag, which is set after the list was delivered)
  // decides, under the delivery lock: a handler added while the first list is being
  // delivered either is in handlers_ for it or gets this replay, never neither.
  if (listed_ && handler.on_add) {
    for (const ObjectPtr& object : cache_.List()) handler.on_add(object);
  }
  handlers_.push_back(std::move(handler));
}

void SharedInformer::OnList(std::vector<Object>&& items) {
  std::vector<ObjectPtr> fresh;
  fresh.reserve(items.size());
  for (Object& item : items) fresh.push_back(std::make_shared<const Object>(std::move(item)));
  std::lock_guard lock(handlers_mutex_);
  // Compute adds/updates against the old state before replacing it.
  std::vector<std::pair<ObjectPtr, ObjectPtr>> changes;  // old (maybe null), new
  for (const ObjectPtr& object : fresh) {
    ObjectPtr old = cache_.Get(KeyOf(*object));
    if (!old || ResourceVersionOf(*old) != ResourceVersionOf(*object)) changes.emplace_back(old, object);
  }
  std::vector<ObjectPtr> removed = cache_.Replace(std::move(fresh));
  listed_ = true;
  for (const auto& [old, now] : changes) {
    for (const EventHandler& handler : handlers_) {
      if (old && handler.on_update) handler.on_update(old, now);
      if (!old && handler.on_add) handler.on_add(now);
    }
  }
  // Deleted while the watch was down: the final state is unknown.
  for (const ObjectPtr& object : removed) {
    for (const EventHandler& handler : handlers_) {
      if (handler.on_delete) handler.on_delete(object, /*final_state_unknown=*/true);
    }
  }
}

void SharedInformer::OnEvent(WatchEvent&& event) {
  // The watch's side of a request timeline (--log-level trace; tests/bench/scale/timeline.py).
  if (spdlog::should_log(spdlog::level::trace)) {
    spdlog::trace("informer {}: {} {}", resource_.plural, WatchEventTypeName(event.type), KeyOf(event.object));
  }
  std::lock_guard lock(handlers_mutex_);
  if (event.type == WatchEvent::Type::kDeleted) {
    // The event carries the object's final state (e.g. a pod's last status), which is
    // newer than what we cached.
    ObjectPtr last = std::make_shared<const Object>(std::move(event.object));
    cache_.Remove(KeyOf(*last));
    for (const EventHandler& handler : handlers_) {
      if (handler.on_delete) handler.on_delete(last, /*final_state_unknown=*/false);
    }
    return;
  }
  ObjectPtr now = std::make_shared<const Object>(std::move(event.object));
  ObjectPtr old = cache_.Upsert(now);
  for (const EventHandler& handler : handlers_) {
    if (old && handler.on_update) handler.on_update(old, now);
    if (!old && handler.on_add) handler.on_add(now);
  }
}

void SharedInformer::ResyncLoop(std::stop_token stop) {
  std::mutex mutex;
  std::condition_variable_any wake;
  while (true) {
    {
      std::unique_lock lock(mutex);
      if (wake.wait_for(lock, stop, options_.resync_period, [] { return false; }) || stop.stop_requested()) return;
    }
    std::lock_guard lock(handlers_mutex_);
    if (!listed_) continue;
    for (const ObjectPtr& object : cache_.List()) {
      for (const EventHandler& handler : handlers_) {
        if (handler.on_resync) handler.on_resync(object);
      }
    }
  }
}

SharedInformer& InformerFactory::Informer(const Resource& resource, const std::string& namespace_name,
                                          InformerOptions options) {
  std::string key = resource.ApiVersion() + "/" + resource.plural + "@" + namespace_name + "?" +
                    options.watch.label_selector + "&" + options.watch.field_selector;
  std::lock_guard lock(mutex_);
  std::unique_ptr<SharedInformer>& slot = informers_[key];
  if (!slot) slot = std::make_unique<SharedInformer>(client_, resource, namespace_name, std::move(options), metrics_);
  return *slot;
}

void InformerFactory::StartAll() {
  std::lock_guard lock(mutex_);
  for (auto& [key, informer] : informers_) informer->Start();
}

void InformerFactory::StopAll() {
  std::lock_guard lock(mutex_);
  for (auto& [key, informer] : informers_) informer->Stop();
}

bool InformerFactory::AllSynced() const {
  std::lock_guard lock(mutex_);
  for (const auto& [key, informer] : informers_) {
    if (!informer->HasSynced()) return false;
  }
  return true;
}

bool InformerFactory::WaitForSync(std::chrono::milliseconds timeout, std::stop_token stop) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!AllSynced()) {
    if (stop.stop_requested() || std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

EventHandler EnqueueObject(WorkQueue& queue) {
  auto enqueue = [&queue](const ObjectPtr& object) { queue.Add(KeyOf(*object)); };
  return {enqueue, [enqueue](const ObjectPtr&, const ObjectPtr& now) { enqueue(now); },
          [enqueue](const ObjectPtr& object, bool) { enqueue(object); }, enqueue};
}

namespace {
// metadata.ownerReferences when it is a list, else nullptr.
const Object* OwnerReferences(const Object& object) {
  if (!object.is_object() || !object.contains("metadata") || !object["metadata"].is_object()) return nullptr;
  const Object& metadata = object["metadata"];
  if (!metadata.contains("ownerReferences") || !metadata["ownerReferences"].is_array()) return nullptr;
  return &metadata["ownerReferences"];
}

// metadata.<field> or null.
const Object& MetadataValue(const Object& object, const char* field) {
  static const Object kNull;
  if (!object.is_object()) return kNull;
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return kNull;
  auto value = metadata->find(field);
  return value == metadata->end() ? kNull : *value;
}
}  // namespace

std::optional<std::string> ControllerOwnerKey(const Object& object, const std::string& owner_group,
                                              const std::string& owner_kind) {
  const Object* owners = OwnerReferences(object);
  if (owners == nullptr) return std::nullopt;
  for (const Object& owner : *owners) {
    if (!owner.is_object() || !owner.value("controller", false) || owner.value("kind", "") != owner_kind) continue;
    std::string api_version = owner.value("apiVersion", "");
    size_t slash = api_version.find('/');
    std::string group = slash == std::string::npos ? "" : api_version.substr(0, slash);
    if (group != owner_group) continue;
    std::string name = owner.value("name", "");
    if (name.empty()) continue;
    return MakeKey(NamespaceOf(object), name);
  }
  return std::nullopt;
}

EventHandler EnqueueControllerOwner(WorkQueue& queue, std::string owner_group, std::string owner_kind,
                                    WorkQueue::Priority priority) {
  auto enqueue = [&queue, group = std::move(owner_group), kind = std::move(owner_kind),
                  priority](const ObjectPtr& object) {
    if (std::optional<std::string> owner = ControllerOwnerKey(*object, group, kind)) queue.Add(*owner, priority);
  };
  return {enqueue,
          [enqueue](const ObjectPtr& old, const ObjectPtr& now) {
            enqueue(now);
            // An owner change (adoption/release) concerns the old owner too.
            const Object* before = OwnerReferences(*old);
            const Object* after = OwnerReferences(*now);
            if (before != nullptr && (after == nullptr || *before != *after)) enqueue(old);
          },
          [enqueue](const ObjectPtr& object, bool) { enqueue(object); }, enqueue};
}

EventHandler EnqueueMapped(WorkQueue& queue, std::function<std::vector<std::string>(const Object&)> map) {
  auto enqueue = [&queue, map = std::move(map)](const ObjectPtr& object) {
    for (const std::string& key : map(*object)) queue.Add(key);
  };
  return {enqueue,
          [enqueue](const ObjectPtr& old, const ObjectPtr& now) {
            enqueue(old);
            enqueue(now);
          },
          [enqueue](const ObjectPtr& object, bool) { enqueue(object); }, enqueue};
}

bool GenerationChanged(const Object& old_object, const Object& new_object) {
  return GenerationOf(old_object) != GenerationOf(new_object) ||
         MetadataValue(old_object, "deletionTimestamp") != MetadataValue(new_object, "deletionTimestamp");
}

bool ChangedBeyondStatus(const Object& old_object, const Object& new_object) {
  auto without_status = [](const Object& object) {
    Object copy = object;
    if (!copy.is_object()) return copy;
    copy.erase("status");
    if (auto metadata = copy.find("metadata"); metadata != copy.end() && metadata->is_object()) {
      metadata->erase("resourceVersion");
      metadata->erase("managedFields");
    }
    return copy;
  };
  return without_status(old_object) != without_status(new_object);
}

EventHandler WithPredicate(EventHandler handler, UpdatePredicate predicate) {
  if (handler.on_update) {
    handler.on_update = [update = std::move(handler.on_update), predicate = std::move(predicate)](
                            const ObjectPtr& old, const ObjectPtr& now) {
      if (predicate(*old, *now)) update(old, now);
    };
  }
  return handler;
}

void KeepMetadataOnly(Object& object) {
  if (!object.is_object()) return;
  Object kept = Object::object();
  for (const char* field : {"apiVersion", "kind"}) {
    if (auto it = object.find(field); it != object.end()) kept[field] = std::move(*it);
  }
  Object kept_metadata = Object::object();
  if (auto metadata = object.find("metadata"); metadata != object.end() && metadata->is_object()) {
    for (const char* field : {"name", "namespace", "uid", "resourceVersion", "generation", "labels",
                              "ownerReferences", "deletionTimestamp", "creationTimestamp"}) {
      if (auto it = metadata->find(field); it != metadata->end()) kept_metadata[field] = std::move(*it);
    }
  }
  kept["metadata"] = std::move(kept_metadata);
  object = std::move(kept);
}

void TrimPod(Object& pod, const std::string& keep_annotation_prefix) {
  if (!pod.is_object()) return;
  Object trimmed = {{"apiVersion", pod.value("apiVersion", "v1")}, {"kind", pod.value("kind", "Pod")}};
  const Object& metadata = pod.contains("metadata") && pod["metadata"].is_object() ? pod["metadata"] : Object::object();
  Object kept_metadata = Object::object();
  for (const char* field : {"name", "namespace", "uid", "resourceVersion", "generation", "labels", "ownerReferences",
                            "deletionTimestamp", "creationTimestamp", "finalizers"}) {
    if (metadata.contains(field)) kept_metadata[field] = metadata[field];
  }
  if (metadata.contains("annotations") && metadata["annotations"].is_object() && !keep_annotation_prefix.empty()) {
    for (auto it = metadata["annotations"].begin(); it != metadata["annotations"].end(); ++it) {
      if (it.key().rfind(keep_annotation_prefix, 0) == 0) kept_metadata["annotations"][it.key()] = it.value();
    }
  }
  trimmed["metadata"] = std::move(kept_metadata);

  const Object& spec = pod.value("spec", Object::object());
  Object kept_spec = Object::object();
  for (const char* field : {"nodeName", "restartPolicy"}) {
    if (spec.contains(field)) kept_spec[field] = spec[field];
  }
  if (spec.contains("containers") && spec["containers"].is_array()) {
    kept_spec["containers"] = Object::array();
    for (const Object& container : spec["containers"]) {
      if (!container.is_object()) continue;
      kept_spec["containers"].push_back({{"name", container.value("name", "")}});
    }
  }
  trimmed["spec"] = std::move(kept_spec);

  const Object& status = pod.value("status", Object::object());
  Object kept_status = Object::object();
  for (const char* field : {"phase", "podIP", "reason", "message", "startTime"}) {
    if (status.contains(field)) kept_status[field] = status[field];
  }
  if (status.contains("conditions") && status["conditions"].is_array()) {
    kept_status["conditions"] = Object::array();
    for (const Object& condition : status["conditions"]) {
      if (!condition.is_object()) continue;
      kept_status["conditions"].push_back(
          {{"type", condition.value("type", "")}, {"status", condition.value("status", "")}});
    }
  }
  if (status.contains("containerStatuses") && status["containerStatuses"].is_array()) {
    kept_status["containerStatuses"] = Object::array();
    for (const Object& container : status["containerStatuses"]) {
      if (!container.is_object()) continue;
      Object kept = Object::object();
      for (const char* field : {"name", "ready", "restartCount", "state"}) {
        if (container.contains(field)) kept[field] = container[field];
      }
      kept_status["containerStatuses"].push_back(std::move(kept));
    }
  }
  trimmed["status"] = std::move(kept_status);
  pod = std::move(trimmed);
}

}  // namespace mlscale::kube
