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

Status SetOwnerReference(Object& child, const Object& owner, bool controller) {
  for (const char* field : {"apiVersion", "kind"}) {
    if (!owner.is_object() || !owner.contains(field) || !owner[field].is_string() ||
        owner[field].get<std::string>().empty()) {
      return InvalidArgument(std::string("owner reference to ") + MakeKey(NamespaceOf(owner), NameOf(owner)) +
                             ": the owner has no " + field);
    }
  }
  if (NameOf(owner).empty() || UidOf(owner).empty()) {
    return InvalidArgument("owner reference: the owner has no metadata.name or metadata.uid (read it from the server first)");
  }
  if (!NamespaceOf(owner).empty() && !NamespaceOf(child).empty() && NamespaceOf(child) != NamespaceOf(owner)) {
    return InvalidArgument("owner reference to " + KeyOf(owner) + ": a namespaced owner must be in the child's namespace ('" +
                           NamespaceOf(child) + "')");
  }
  Object reference = {{"apiVersion", owner["apiVersion"]},
                      {"kind", owner["kind"]},
                      {"name", NameOf(owner)},
                      {"uid", UidOf(owner)},
                      {"controller", controller},
                      {"blockOwnerDeletion", true}};
  Object& references = MetadataList(child, "ownerReferences");
  for (Object& existing : references) {
    if (existing.value("uid", "") == UidOf(owner)) {
      existing = std::move(reference);
      return Status::Ok();
    }
  }
  references.push_back(std::move(reference));
  return Status::Ok();
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

StatusOr<bool> SetCondition(Object& object, const Condition& condition) {
  StatusOr<Conditions> conditions = Conditions::Of(object);
  if (!conditions.ok()) return conditions.status();
  if (!conditions->Set(condition, GenerationOf(object))) return false;
  Object& status = object["status"];
  if (!status.is_object()) status = Object::object();
  status["conditions"] = conditions->ToJson();
  return true;
}

std::optional<Condition> FindCondition(const Object& object, const std::string& type) {
  StatusOr<Conditions> conditions = Conditions::Of(object);
  if (!conditions.ok()) return std::nullopt;
  const Condition* found = conditions->Find(type);
  if (found == nullptr) return std::nullopt;
  return *found;
}

StatusOr<Object> UpdateStatus(Client& client, const Resource& resource, Object object) {
  if (!object.contains("status") || !object["status"].is_object()) object["status"] = Object::object();
  object["status"]["observedGeneration"] = GenerationOf(object);
  // A conflict is returned as is: the caller recomputes from the fresh object.
  return client.UpdateStatus(resource, object);
}

}  // namespace mlscale::kube
