#include "mlscale/kube/objects.h"

#include <algorithm>
#include <thread>

#include "mlscale/kube/errors.h"
#include "mlscale/kube/time_format.h"

namespace mlscale::kube {
namespace {

Object& MetadataList(Object& object, const char* field) {
  Object& list = object["metadata"][field];
  if (!list.is_array()) list = Object::array();
  return list;
}

}  // namespace

std::string NowRfc3339() { return TimeNow(); }

void SetOwnerReference(Object& child, const Object& owner, bool controller) {
  Object reference = {{"apiVersion", owner.value("apiVersion", "")},
                      {"kind", owner.value("kind", "")},
                      {"name", NameOf(owner)},
                      {"uid", UidOf(owner)},
                      {"controller", controller},
                      {"blockOwnerDeletion", true}};
  Object& references = MetadataList(child, "ownerReferences");
  for (Object& existing : references) {
    if (existing.value("uid", "") == UidOf(owner)) {
      existing = std::move(reference);
      return;
    }
  }
  references.push_back(std::move(reference));
}

std::optional<Object> ControllerOf(const Object& object) {
  if (!object.contains("metadata") || !object["metadata"].contains("ownerReferences")) return std::nullopt;
  const Object& references = object["metadata"]["ownerReferences"];
  if (!references.is_array()) return std::nullopt;
  for (const Object& reference : references) {
    if (reference.is_object() && reference.value("controller", false)) return reference;
  }
  return std::nullopt;
}

bool IsControlledBy(const Object& object, const Object& owner) {
  std::optional<Object> controller = ControllerOf(object);
  return controller && controller->value("uid", "") == UidOf(owner);
}

bool HasFinalizer(const Object& object, const std::string& finalizer) {
  if (!object.contains("metadata") || !object["metadata"].contains("finalizers")) return false;
  const Object& finalizers = object["metadata"]["finalizers"];
  return finalizers.is_array() && std::find(finalizers.begin(), finalizers.end(), finalizer) != finalizers.end();
}

bool AddFinalizer(Object& object, const std::string& finalizer) {
  if (HasFinalizer(object, finalizer)) return false;
  MetadataList(object, "finalizers").push_back(finalizer);
  return true;
}

bool RemoveFinalizer(Object& object, const std::string& finalizer) {
  if (!HasFinalizer(object, finalizer)) return false;
  Object& finalizers = object["metadata"]["finalizers"];
  Object kept = Object::array();
  for (const Object& name : finalizers) {
    if (name != finalizer) kept.push_back(name);
  }
  finalizers = std::move(kept);
  return true;
}

bool IsBeingDeleted(const Object& object) {
  return object.contains("metadata") && object["metadata"].contains("deletionTimestamp") &&
         object["metadata"]["deletionTimestamp"].is_string();
}

bool SetCondition(Object& object, const Condition& condition) {
  Object& status = object["status"];
  if (!status.is_object()) status = Object::object();
  Object& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = Object::array();
  const int64_t generation = GenerationOf(object);
  for (Object& existing : conditions) {
    if (existing.value("type", "") != condition.type) continue;
    bool changed = false;
    if (existing.value("status", "") != condition.status) {
      existing["status"] = condition.status;
      existing["lastTransitionTime"] = NowRfc3339();
      changed = true;
    }
    for (const auto& [field, value] : {std::pair<const char*, const std::string*>{"reason", &condition.reason},
                                       {"message", &condition.message}}) {
      if (existing.value(field, "") != *value) {
        existing[field] = *value;
        changed = true;
      }
    }
    if (existing.value("observedGeneration", int64_t{0}) != generation) {
      existing["observedGeneration"] = generation;
      changed = true;
    }
    return changed;
  }
  conditions.push_back({{"type", condition.type},
                        {"status", condition.status},
                        {"reason", condition.reason},
                        {"message", condition.message},
                        {"observedGeneration", generation},
                        {"lastTransitionTime", NowRfc3339()}});
  return true;
}

std::optional<Condition> FindCondition(const Object& object, const std::string& type) {
  if (!object.contains("status") || !object["status"].is_object() || !object["status"].contains("conditions")) {
    return std::nullopt;
  }
  const Object& conditions = object["status"]["conditions"];
  if (!conditions.is_array()) return std::nullopt;
  for (const Object& condition : conditions) {
    if (condition.is_object() && condition.value("type", "") == type) {
      return Condition{type, condition.value("status", ""), condition.value("reason", ""),
                       condition.value("message", "")};
    }
  }
  return std::nullopt;
}

StatusOr<Object> UpdateStatus(Client& client, const Resource& resource, Object object) {
  Object status = object.value("status", Object::object());
  const std::string namespace_name = NamespaceOf(object);
  const std::string name = NameOf(object);
  object["status"] = status;
  object["status"]["observedGeneration"] = GenerationOf(object);
  StatusOr<Object> written = client.UpdateStatus(resource, object);
  if (written.ok() || !IsConflict(written.status())) return written;
  // Someone else wrote meanwhile: put our status on the fresh object.
  return client.UpdateWithRetry(resource, namespace_name, name, [&status](Object& fresh) {
    Object desired = status;
    desired["observedGeneration"] = GenerationOf(fresh);
    if (fresh.value("status", Object()) == desired) return false;
    fresh["status"] = std::move(desired);
    return true;
  }, "status");
}

}  // namespace mlscale::kube
