// A typed view of status.conditions in the standard metav1.Condition shape (type,
// status True/False/Unknown, reason, message, observedGeneration, lastTransitionTime),
// so `kubectl wait --for=condition=...` works on our resources. lastTransitionTime
// moves only when a condition's status changes, as the API conventions require.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/kube/resource.h"

namespace mlscale::kube {

enum class ConditionStatus { kTrue, kFalse, kUnknown };
// "True", "False", "Unknown".
std::string_view ConditionStatusName(ConditionStatus status);

struct Condition {
  // Members have default initializers so designated initializers may leave any out.
  std::string type{};  // CamelCase: "Ready", "Succeeded"
  ConditionStatus status = ConditionStatus::kUnknown;
  std::string reason{};  // CamelCase, why the status is what it is
  std::string message{}; // for humans
  int64_t observed_generation = 0;
  std::string last_transition_time{};  // RFC 3339; set by Conditions::Set
};

class Conditions {
 public:
  Conditions() = default;
  // Reads a conditions list (null or absent: none). Errors name the entry and field
  // under `field`, e.g. "status.conditions[1].status: must be True, False or Unknown".
  static StatusOr<Conditions> Parse(const Object& conditions, std::string_view field = "status.conditions");
  // Parse(object.status.conditions).
  static StatusOr<Conditions> Of(const Object& object);

  // Sets the condition of `condition.type` with observedGeneration = `generation`.
  // lastTransitionTime becomes `now` (default: the current time) when the condition is
  // new or its status changed, and is kept otherwise. Returns true when anything changed.
  bool Set(Condition condition, int64_t generation, std::string_view now = "");
  // Removes the condition of `type`; true when there was one.
  bool Remove(std::string_view type);
  const Condition* Find(std::string_view type) const;  // nullptr when absent
  bool IsTrue(std::string_view type) const;
  bool IsFalse(std::string_view type) const;
  const std::vector<Condition>& items() const { return items_; }
  // The list in the API's JSON shape, in the order conditions were first set.
  Object ToJson() const;

 private:
  std::vector<Condition> items_;
};

}  // namespace mlscale::kube
