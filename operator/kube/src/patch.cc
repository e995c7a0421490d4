#include "mlscale/kube/patch.h"

#include "mlscale/kube/errors.h"
#include "mlscale/kube/objects.h"

namespace mlscale::kube {

Object CreateMergePatch(const Object& original, const Object& modified) {
  if (!original.is_object() || !modified.is_object()) return modified;
  Object patch = Object::object();
  for (auto it = original.begin(); it != original.end(); ++it) {
    if (!modified.contains(it.key())) patch[it.key()] = nullptr;
  }
  for (auto it = modified.begin(); it != modified.end(); ++it) {
    if (!original.contains(it.key())) {
      patch[it.key()] = it.value();
      continue;
    }
    const Object& before = original.at(it.key());
    if (before == it.value()) continue;
    patch[it.key()] = before.is_object() && it.value().is_object() ? CreateMergePatch(before, it.value()) : it.value();
  }
  return patch;
}

StatusOr<Object> PatchFrom(Client& client, const Resource& resource, const Object& original, const Object& modified,
                           bool optimistic_lock, const std::string& subresource) {
  Object patch = CreateMergePatch(original, modified);
  if (patch.is_object() && patch.empty()) return original;
  if (optimistic_lock) patch["metadata"]["resourceVersion"] = ResourceVersionOf(original);
  PatchOptions options;
  options.subresource = subresource;
  return client.Patch(resource, NamespaceOf(original), NameOf(original), PatchType::kMerge, patch, options);
}

StatusOr<CreateOrPatchResult> CreateOrPatch(Client& client, const Resource& resource, Object object,
                                            const std::function<Status(Object&)>& mutate) {
  const std::string namespace_name = NamespaceOf(object);
  const std::string name = NameOf(object);
  if (name.empty()) return InvalidArgument("create or patch " + resource.plural + ": metadata.name is empty");
  auto check_identity = [&](const Object& mutated) -> Status {
    if (NameOf(mutated) != name || NamespaceOf(mutated) != namespace_name) {
      return InvalidArgument("create or patch " + resource.plural + " " + MakeKey(namespace_name, name) +
                             ": mutate changed metadata.name or metadata.namespace");
    }
    return Status::Ok();
  };
  StatusOr<Object> current = client.Get(resource, namespace_name, name);
  if (!current.ok() && !IsNotFound(current.status())) return current.status();
  if (!current.ok()) {
    MLSCALE_RETURN_IF_ERROR(mutate(object));
    MLSCALE_RETURN_IF_ERROR(check_identity(object));
    StatusOr<Object> created = client.Create(resource, namespace_name, object);
    if (!created.ok()) return created.status();
    return CreateOrPatchResult{OperationResult::kCreated, std::move(*created)};
  }
  Object desired = *current;
  MLSCALE_RETURN_IF_ERROR(mutate(desired));
  MLSCALE_RETURN_IF_ERROR(check_identity(desired));
  if (desired == *current) return CreateOrPatchResult{OperationResult::kUnchanged, std::move(*current)};
  StatusOr<Object> patched = PatchFrom(client, resource, *current, desired);
  if (!patched.ok()) return patched.status();
  return CreateOrPatchResult{OperationResult::kPatched, std::move(*patched)};
}

namespace {
StatusOr<Object> PatchFinalizers(Client& client, const Resource& resource, const Object& object,
                                 const std::string& finalizer, bool add) {
  Object modified = object;
  bool changed = add ? AddFinalizer(modified, finalizer) : RemoveFinalizer(modified, finalizer);
  if (!changed) return object;
  return PatchFrom(client, resource, object, modified, /*optimistic_lock=*/true);
}
}  // namespace

StatusOr<Object> PatchAddFinalizer(Client& client, const Resource& resource, const Object& object,
                                   const std::string& finalizer) {
  return PatchFinalizers(client, resource, object, finalizer, true);
}

StatusOr<Object> PatchRemoveFinalizer(Client& client, const Resource& resource, const Object& object,
                                      const std::string& finalizer) {
  return PatchFinalizers(client, resource, object, finalizer, false);
}

StatusOr<Object> Apply(Client& client, const Resource& resource, const Object& object, const ApplyOptions& options) {
  if (options.field_manager.empty()) return InvalidArgument("apply " + resource.plural + ": a field manager is required");
  for (const char* field : {"apiVersion", "kind"}) {
    if (!object.is_object() || !object.contains(field) || !object[field].is_string() ||
        object[field].get<std::string>().empty()) {
      return InvalidArgument("apply " + resource.plural + ": " + field + " is required");
    }
  }
  if (NameOf(object).empty()) return InvalidArgument("apply " + resource.plural + ": metadata.name is required");
  if (resource.namespaced && NamespaceOf(object).empty()) {
    return InvalidArgument("apply " + resource.plural + ": metadata.namespace is required");
  }
  PatchOptions patch;
  patch.field_manager = options.field_manager;
  patch.force = options.force;
  patch.subresource = options.subresource;
  return client.Patch(resource, NamespaceOf(object), NameOf(object), PatchType::kApply, object, patch);
}

}  // namespace mlscale::kube
