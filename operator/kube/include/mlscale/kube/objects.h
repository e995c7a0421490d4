// Helpers for the parts of objects every controller touches: owner references,
// finalizers, and status conditions with observedGeneration.
#pragma once

#include <optional>
#include <string>

#include "mlscale/common/status.h"
#include "mlscale/kube/client.h"
#include "mlscale/kube/conditions.h"

namespace mlscale::kube {

// Adds (or replaces, matched by uid) an ownerReference to `owner` in `child`, with
// controller and blockOwnerDeletion set as asked. Fails (kInvalidArgument, `child`
// unchanged) when the owner lacks apiVersion, kind, metadata.name or metadata.uid: the
// API server would accept a reference with an empty kind, and the garbage collector
// would then never find the owner. Objects read through a list carry apiVersion/kind
// (Client::List stamps them).
Status SetOwnerReference(Object& child, const Object& owner, bool controller = true);
// The ownerReference with controller: true, when there is one.
std::optional<Object> ControllerOf(const Object& object);
bool IsControlledBy(const Object& object, const Object& owner);

bool HasFinalizer(const Object& object, const std::string& finalizer);
// Return true when they changed the object. (To write the change, see patch.h's
// PatchAddFinalizer/PatchRemoveFinalizer.)
bool AddFinalizer(Object& object, const std::string& finalizer);
bool RemoveFinalizer(Object& object, const std::string& finalizer);
bool IsBeingDeleted(const Object& object);  // metadata.deletionTimestamp set

// Sets `condition` in object.status.conditions (see conditions.h) with observedGeneration
// = the object's metadata.generation. Returns whether anything changed; fails when the
// existing conditions are malformed (the error names the field; the object is unchanged).
StatusOr<bool> SetCondition(Object& object, const Condition& condition);
// The condition of `type`, when status.conditions holds a well-formed one.
std::optional<Condition> FindCondition(const Object& object, const std::string& type);

// Writes `object`'s status through the status subresource, setting
// status.observedGeneration to metadata.generation first. The write carries the
// object's resourceVersion: when the object changed since it was read the result is
// kConflict, and the caller must requeue and compute the status again from the fresh
// object (a status computed from a stale read must never be pasted onto a newer one).
StatusOr<Object> UpdateStatus(Client& client, const Resource& resource, Object object);

// The current time as RFC 3339 with seconds ("2026-01-02T03:04:05Z").
std::string NowRfc3339();

}  // namespace mlscale::kube
