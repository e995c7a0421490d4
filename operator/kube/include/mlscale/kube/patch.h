// Writing objects as patches, as controller-runtime's client does: a change is sent as
// the difference between what was read and what is wanted, so fields other writers own
// (labels added by a user, a status written by another controller) are left alone.
#pragma once

#include <functional>
#include <string>

#include "mlscale/common/status.h"
#include "mlscale/kube/client.h"

namespace mlscale::kube {

// The JSON merge patch (RFC 7386) that turns `original` into `modified`: changed fields
// with their new value, removed fields as null, lists replaced whole. An empty object
// when they are equal. (A null inside `modified` cannot be expressed and is sent as a
// removal, as in RFC 7386.)
Object CreateMergePatch(const Object& original, const Object& modified);

// Patches the object named by `original`'s metadata with CreateMergePatch(original,
// modified); no request when nothing changed (returns `original`). With
// `optimistic_lock` the patch carries original's resourceVersion, so it fails with
// kConflict when the object changed since it was read (needed whenever a list is
// rewritten, e.g. finalizers). `subresource`: "" or "status".
StatusOr<Object> PatchFrom(Client& client, const Resource& resource, const Object& original, const Object& modified,
                           bool optimistic_lock = false, const std::string& subresource = "");

enum class OperationResult { kUnchanged, kCreated, kPatched };
struct CreateOrPatchResult {
  OperationResult operation = OperationResult::kUnchanged;
  Object object;  // as the server returned it (or as read, when unchanged)
};
// Reads the object named by `object`'s metadata.namespace/name; when absent, applies
// `mutate` to `object` and creates it; otherwise applies `mutate` to what was read and
// sends the difference as a merge patch (nothing when `mutate` changed nothing). The
// mutate function sets the fields the caller owns (it is given the live object, so it
// must set, not append); it may fail, and may not change the name or namespace
// (kInvalidArgument).
StatusOr<CreateOrPatchResult> CreateOrPatch(Client& client, const Resource& resource, Object object,
                                            const std::function<Status(Object&)>& mutate);

// Adds or removes a finalizer with a merge patch of metadata.finalizers locked to
// `object`'s resourceVersion (kConflict when it moved: requeue and read again). No
// request when the finalizer is already present/absent; returns the written object.
StatusOr<Object> PatchAddFinalizer(Client& client, const Resource& resource, const Object& object,
                                   const std::string& finalizer);
StatusOr<Object> PatchRemoveFinalizer(Client& client, const Resource& resource, const Object& object,
                                      const std::string& finalizer);

struct ApplyOptions {
  std::string field_manager{};  // required: who owns the applied fields ("mlscale-operator")
  bool force = false;         // take over fields another manager owns instead of kConflict
  std::string subresource{};    // "" or "status"
};
// Server-side apply of `object` (the fields this manager wants, with apiVersion, kind,
// metadata.name and, for namespaced resources, metadata.namespace). A field another
// manager owns with a different value fails with kConflict unless `force`. Errors name a
// missing identity field.
StatusOr<Object> Apply(Client& client, const Resource& resource, const Object& object, const ApplyOptions& options);

}  // namespace mlscale::kube
