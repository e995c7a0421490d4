// Expectations, as client-go's controllers keep them: after a reconcile creates or
// deletes children of an owner, the cache lags behind the server for a moment; until
// the watch has delivered those changes the owner's next reconcile must not count its
// children again (or it creates duplicates). A reconcile records what it expects
// (ExpectCreations/ExpectDeletions, by child key, before sending the requests), the
// informer handler from ObserveChildren marks them seen, and the reconcile acts on the
// children only while Satisfied(owner). Records live here, not in the work queue, so
// they survive the owner's requeues; a record older than the TTL counts as satisfied
// (a lost event must not wedge an owner forever). Thread-safe.
#pragma once

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "mlscale/kube/informer.h"

namespace mlscale::kube {

class Expectations {
 public:
  using Clock = std::chrono::steady_clock;
  // client-go's ExpectationsTimeout is 5 minutes.
  explicit Expectations(std::chrono::milliseconds ttl = std::chrono::minutes(5)) : ttl_(ttl) {}

  // Adds `child_keys` ("namespace/name") to what `owner_key` waits to see created or
  // deleted, and restarts the record's TTL.
  void ExpectCreations(const std::string& owner_key, const std::vector<std::string>& child_keys);
  void ExpectDeletions(const std::string& owner_key, const std::vector<std::string>& child_keys);
  // The watch delivered the child (or the request failed, so it will never come).
  // Unknown owners or children are ignored, so repeated events are harmless.
  void CreationObserved(const std::string& owner_key, const std::string& child_key);
  void DeletionObserved(const std::string& owner_key, const std::string& child_key);
  // True when nothing is pending for `owner_key` or its record is older than the TTL.
  bool Satisfied(const std::string& owner_key) const;
  // Children still pending (creations + deletions); 0 when Satisfied by TTL or empty.
  size_t Pending(const std::string& owner_key) const;
  // Drops the owner's record (the owner was deleted).
  void Forget(const std::string& owner_key);

 private:
  struct Record {
    std::set<std::string> creations;
    std::set<std::string> deletions;
    Clock::time_point updated;
  };
  bool ExpiredLocked(const Record& record) const { return Clock::now() - record.updated > ttl_; }

  std::chrono::milliseconds ttl_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Record> records_;
};

// An informer handler for the children's informer: an added child satisfies its
// controlling owner's creation expectation, a deleted one the deletion expectation.
// The owner is the ownerReference with controller: true whose apiVersion group and
// kind match. Add it to the informer before the handler that enqueues the owner, so
// the owner's reconcile sees the expectation satisfied.
EventHandler ObserveChildren(Expectations& expectations, std::string owner_group, std::string owner_kind);

}  // namespace mlscale::kube
