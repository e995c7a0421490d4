// Reading from the informer cache instead of the API server, as controller-runtime's
// cached client does: a reconcile reads what the watch has delivered (possibly a little
// behind the server; Expectations cover the gap after our own writes) at no API cost.
// Objects are the cached, shared, immutable ones: copy before changing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mlscale/kube/cache.h"
#include "mlscale/kube/selector.h"

namespace mlscale::kube {

struct CacheQuery {
  std::optional<std::string> namespace_name{};  // nullopt: every namespace
  std::string owner_uid{};                    // "": any owner; else only objects with an ownerReference to it
  bool controlled_only = false;               // with owner_uid: only where that reference has controller: true
  LabelSelector selector{};                   // empty: everything
};

class CacheReader {
 public:
  // `cache` (usually SharedInformer::cache()) must outlive the reader.
  explicit CacheReader(const ObjectCache& cache) : cache_(cache) {}
  // The cached object, or nullptr when the cache has none by that name.
  ObjectPtr Get(const std::string& namespace_name, const std::string& name) const;
  // Every cached object that satisfies all of `query`, ordered by key (stable across calls).
  std::vector<ObjectPtr> List(const CacheQuery& query = {}) const;

 private:
  const ObjectCache& cache_;
};

}  // namespace mlscale::kube
