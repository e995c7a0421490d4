#include "mlscale/kube/conditions.h"

#include <algorithm>

#include "mlscale/kube/time_format.h"

namespace mlscale::kube {

std::string_view ConditionStatusName(ConditionStatus status) {
  switch (status) {
    case ConditionStatus::kTrue: return "True";
    case ConditionStatus::kFalse: return "False";
    case ConditionStatus::kUnknown: return "Unknown";
  }
  return "Unknown";
}

StatusOr<Conditions> Conditions::Parse(const Object& conditions, std::string_view field) {
  Conditions out;
  if (conditions.is_null()) return out;
  const std::string where(field);
  if (!conditions.is_array()) return InvalidArgument(where + ": must be a list");
  for (size_t i = 0; i < conditions.size(); ++i) {
    const Object& entry = conditions[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!entry.is_object()) return InvalidArgument(at + ": must be an object");
    auto text = [&](const char* name, bool required) -> StatusOr<std::string> {
      auto it = entry.find(name);
      if (it == entry.end() || it->is_null()) {
        if (required) return InvalidArgument(at + "." + name + ": is required");
        return std::string();
      }
      if (!it->is_string()) return InvalidArgument(at + "." + name + ": must be a string");
      return it->get<std::string>();
    };
    Condition condition;
    StatusOr<std::string> type = text("type", true);
    if (!type.ok()) return type.status();
    if (type->empty()) return InvalidArgument(at + ".type: must not be empty");
    if (out.Find(*type) != nullptr) return InvalidArgument(at + ".type: '" + *type + "' appears twice");
    condition.type = *type;
    StatusOr<std::string> status = text("status", true);
    if (!status.ok()) return status.status();
    if (*status == "True") condition.status = ConditionStatus::kTrue;
    else if (*status == "False") condition.status = ConditionStatus::kFalse;
    else if (*status == "Unknown") condition.status = ConditionStatus::kUnknown;
    else return InvalidArgument(at + ".status: must be True, False or Unknown, not '" + *status + "'");
    for (auto [name, target] : {std::pair<const char*, std::string*>{"reason", &condition.reason},
                                {"message", &condition.message},
                                {"lastTransitionTime", &condition.last_transition_time}}) {
      StatusOr<std::string> value = text(name, false);
      if (!value.ok()) return value.status();
      *target = std::move(*value);
    }
    if (auto generation = entry.find("observedGeneration"); generation != entry.end() && !generation->is_null()) {
      if (!generation->is_number_integer()) return InvalidArgument(at + ".observedGeneration: must be an integer");
      condition.observed_generation = generation->get<int64_t>();
    }
    out.items_.push_back(std::move(condition));
  }
  return out;
}

StatusOr<Conditions> Conditions::Of(const Object& object) {
  if (!object.is_object()) return Conditions();
  auto status = object.find("status");
  if (status == object.end() || status->is_null()) return Conditions();
  if (!status->is_object()) return InvalidArgument("status: must be an object");
  auto conditions = status->find("conditions");
  return conditions == status->end() ? Conditions() : Parse(*conditions);
}

bool Conditions::Set(Condition condition, int64_t generation, std::string_view now) {
  condition.observed_generation = generation;
  const std::string stamp = now.empty() ? TimeNow() : std::string(now);
  for (Condition& existing : items_) {
    if (existing.type != condition.type) continue;
    condition.last_transition_time =
        existing.status == condition.status && !existing.last_transition_time.empty() ? existing.last_transition_time
                                                                                       : stamp;
    bool changed = existing.status != condition.status || existing.reason != condition.reason ||
                   existing.message != condition.message ||
                   existing.observed_generation != condition.observed_generation ||
                   existing.last_transition_time != condition.last_transition_time;
    existing = std::move(condition);
    return changed;
  }
  condition.last_transition_time = stamp;
  items_.push_back(std::move(condition));
  return true;
}

bool Conditions::Remove(std::string_view type) {
  auto it = std::find_if(items_.begin(), items_.end(), [&](const Condition& c) { return c.type == type; });
  if (it == items_.end()) return false;
  items_.erase(it);
  return true;
}

const Condition* Conditions::Find(std::string_view type) const {
  auto it = std::find_if(items_.begin(), items_.end(), [&](const Condition& c) { return c.type == type; });
  return it == items_.end() ? nullptr : &*it;
}

bool Conditions::IsTrue(std::string_view type) const {
  const Condition* condition = Find(type);
  return condition != nullptr && condition->status == ConditionStatus::kTrue;
}

bool Conditions::IsFalse(std::string_view type) const {
  const Condition* condition = Find(type);
  return condition != nullptr && condition->status == ConditionStatus::kFalse;
}

Object Conditions::ToJson() const {
  Object out = Object::array();
  for (const Condition& condition : items_) {
    out.push_back({{"type", condition.type},
                   {"status", ConditionStatusName(condition.status)},
                   {"reason", condition.reason},
                   {"message", condition.message},
                   {"observedGeneration", condition.observed_generation},
                   {"lastTransitionTime", condition.last_transition_time}});
  }
  return out;
}

}  // namespace mlscale::kube
