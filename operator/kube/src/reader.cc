#include "mlscale/kube/reader.h"

#include <algorithm>

namespace mlscale::kube {
namespace {

bool HasOwnerReference(const Object& object, const std::string& uid, bool controlled_only) {
  const Object& metadata = object.value("metadata", Object::object());
  if (!metadata.is_object()) return false;
  const Object& owners = metadata.value("ownerReferences", Object::array());
  if (!owners.is_array()) return false;
  return std::any_of(owners.begin(), owners.end(), [&](const Object& owner) {
    return owner.is_object() && owner.value("uid", "") == uid && (!controlled_only || owner.value("controller", false));
  });
}

}  // namespace

ObjectPtr CacheReader::Get(const std::string& namespace_name, const std::string& name) const {
  return cache_.Get(MakeKey(namespace_name, name));
}

std::vector<ObjectPtr> CacheReader::List(const CacheQuery& query) const {
  // Start from the narrowest index the query allows, then filter by the rest.
  std::vector<ObjectPtr> candidates;
  if (!query.owner_uid.empty()) {
    candidates = cache_.ByOwner(query.owner_uid);
  } else if (query.namespace_name) {
    candidates = cache_.ByNamespace(*query.namespace_name);
  } else {
    candidates = cache_.List();
  }
  std::vector<ObjectPtr> out;
  out.reserve(candidates.size());
  for (ObjectPtr& object : candidates) {
    if (query.namespace_name && NamespaceOf(*object) != *query.namespace_name) continue;
    if (!query.owner_uid.empty() && query.controlled_only && !HasOwnerReference(*object, query.owner_uid, true)) continue;
    if (!query.selector.MatchesObject(*object)) continue;
    out.push_back(std::move(object));
  }
  std::sort(out.begin(), out.end(), [](const ObjectPtr& a, const ObjectPtr& b) { return KeyOf(*a) < KeyOf(*b); });
  return out;
}

}  // namespace mlscale::kube
