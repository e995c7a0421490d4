// The object cache behind an informer: objects by key, indexed by namespace, by the
// UIDs of their owners and by label key=value. Objects are immutable once cached and
// shared (std::shared_ptr<const Object>), so readers never copy them. Thread-safe.
#pragma once

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
  void IndexLocked(const std::string& key, const Object& object);
  void UnindexLocked(const std::string& key, const Object& object);
  std::vector<ObjectPtr> LookupLocked(const Index& index, const std::string& value) const;

  mutable std::mutex mutex_;
  std::unordered_map<std::string, ObjectPtr> objects_;
  Index by_namespace_;
  Index by_owner_;
  Index by_label_;  // "key=value"
};

}  // namespace mlscale::kube
