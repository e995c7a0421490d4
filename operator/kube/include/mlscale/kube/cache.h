// The object cache behind an informer: objects by key, indexed by namespace, by the
// UIDs of their owners and by label key=value. Objects are immutable once cached and
// shared (std::shared_ptr<const Object>), so readers never copy them. Thread-safe.
//
// A packed cache (ObjectCache(kPacked)) keeps each object as MessagePack bytes instead
// of nlohmann's tree (a std::map node per key, a heap string per long value: a cached
// object costs 5-8x its JSON text) and decodes it again on every read: each read then
// returns a fresh object. For large caches of small (projected) objects that are read a
// few at a time, e.g. a controller's worker pods.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "mlscale/kube/resource.h"

namespace mlscale::kube {

using ObjectPtr = std::shared_ptr<const Object>;

class ObjectCache {
 public:
  enum class Storage { kObjects, kPacked };
  explicit ObjectCache(Storage storage = Storage::kObjects) : storage_(storage) {}

  ObjectPtr Get(const std::string& key) const;  // nullptr when absent
  std::vector<ObjectPtr> List() const;
  std::vector<ObjectPtr> ByNamespace(const std::string& namespace_name) const;
  // Objects with an ownerReference to `owner_uid` (controller or not).
  std::vector<ObjectPtr> ByOwner(const std::string& owner_uid) const;
  std::vector<ObjectPtr> ByLabel(const std::string& label_key, const std::string& label_value) const;
  std::vector<std::string> Keys() const;
  size_t Size() const;

  // Mutations, used by the informer. Each returns the object that was cached before
  // (nullptr when none).
  ObjectPtr Upsert(ObjectPtr object);
  ObjectPtr Remove(const std::string& key);
  // Replaces everything; returns the objects that were cached but are not in `objects`.
  std::vector<ObjectPtr> Replace(std::vector<ObjectPtr> objects);

 private:
  using Index = std::unordered_map<std::string, std::set<std::string>>;  // index value -> keys
  struct Entry {
    ObjectPtr object;                   // Storage::kObjects
    std::vector<std::uint8_t> packed;   // Storage::kPacked: the object as MessagePack
  };
  Entry Store(ObjectPtr object) const;
  ObjectPtr Load(const Entry& entry) const;
  void IndexLocked(const std::string& key, const Object& object);
  void UnindexLocked(const std::string& key, const Object& object);
  std::vector<ObjectPtr> LookupLocked(const Index& index, const std::string& value) const;

  const Storage storage_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> objects_;
  Index by_namespace_;
  Index by_owner_;
  Index by_label_;  // "key=value"
};

}  // namespace mlscale::kube
