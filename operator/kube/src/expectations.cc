#include "mlscale/kube/expectations.h"

namespace mlscale::kube {

void Expectations::ExpectCreations(const std::string& owner_key, const std::vector<std::string>& child_keys) {
  std::lock_guard lock(mutex_);
  Record& record = records_[owner_key];
  if (ExpiredLocked(record)) record = {};
  record.creations.insert(child_keys.begin(), child_keys.end());
  record.updated = Clock::now();
}

void Expectations::ExpectDeletions(const std::string& owner_key, const std::vector<std::string>& child_keys) {
  std::lock_guard lock(mutex_);
  Record& record = records_[owner_key];
  if (ExpiredLocked(record)) record = {};
  record.deletions.insert(child_keys.begin(), child_keys.end());
  record.updated = Clock::now();
}

void Expectations::CreationObserved(const std::string& owner_key, const std::string& child_key) {
  std::lock_guard lock(mutex_);
  auto it = records_.find(owner_key);
  if (it != records_.end()) it->second.creations.erase(child_key);
}

void Expectations::DeletionObserved(const std::string& owner_key, const std::string& child_key) {
  std::lock_guard lock(mutex_);
  auto it = records_.find(owner_key);
  if (it != records_.end()) it->second.deletions.erase(child_key);
}

size_t Expectations::Pending(const std::string& owner_key) const {
  std::lock_guard lock(mutex_);
  auto it = records_.find(owner_key);
  if (it == records_.end() || ExpiredLocked(it->second)) return 0;
  return it->second.creations.size() + it->second.deletions.size();
}

bool Expectations::Satisfied(const std::string& owner_key) const { return Pending(owner_key) == 0; }

void Expectations::Forget(const std::string& owner_key) {
  std::lock_guard lock(mutex_);
  records_.erase(owner_key);
}

EventHandler ObserveChildren(Expectations& expectations, std::string owner_group, std::string owner_kind) {
  auto owner_of = [group = std::move(owner_group), kind = std::move(owner_kind)](const Object& child) {
    return ControllerOwnerKey(child, group, kind);
  };
  EventHandler handler;
  handler.on_add = [&expectations, owner_of](const ObjectPtr& child) {
    if (auto owner = owner_of(*child)) expectations.CreationObserved(*owner, KeyOf(*child));
  };
  handler.on_delete = [&expectations, owner_of](const ObjectPtr& child, bool) {
    if (auto owner = owner_of(*child)) expectations.DeletionObserved(*owner, KeyOf(*child));
  };
  return handler;
}

}  // namespace mlscale::kube
