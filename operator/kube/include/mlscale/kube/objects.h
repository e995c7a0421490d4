// Helpers for the parts of objects every controller touches: owner references,
// finalizers, and status conditions with observedGeneration.
#pragma once

#include <optional>
#include <string>

#include "mlscale/common/status.h"
#include "mlscale/kube/client.h"

namespace mlscale::kube {

// Adds (or replaces, matched by uid) an ownerReference to `owner` in `child`, with
// controller and blockOwnerDeletion set as asked.
void SetOwnerReference(Object& child, const Object& owner, bool controller = true);
// The ownerReference with controller: true, when there is one.
std::optional<Object> ControllerOf(const Object& object);
bool IsControlledBy(const Object& object, const Object& owner);

bool HasFinalizer(const Object& object, const std::string& finalizer);
// Return true when they changed the object.
bool AddFinalizer(Object& object, const std::string& finalizer);
bool RemoveFinalizer(Object& object, const std::string& finalizer);
bool IsBeingDeleted(const Object& object);  // metadata.deletionTimestamp set

struct Condition {
  std::string type;    // "Ready", "Succeeded", ...
  std::string status;  // "True", "False", "Unknown"
  std::string reason;  // CamelCase
  std::string message;
};

// Sets the condition in object.status.conditions (standard metav1.Condition shape),
// stamping observedGeneration with the object's generation; lastTransitionTime changes
// only when the status does. Returns true when anything changed.
bool SetCondition(Object& object, const Condition& condition);
std::optional<Condition> FindCondition(const Object& object, const std::string& type);

// Writes `object`'s status through the status subresource, setting
// status.observedGeneration to metadata.generation first. On conflict re-reads the
// object, re-applies `object`'s status onto it and retries.
StatusOr<Object> UpdateStatus(Client& client, const Resource& resource, Object object);

// The current time as RFC 3339 with seconds ("2026-01-02T03:04:05Z").
std::string NowRfc3339();

}  // namespace mlscale::kube
