// The sweep's own status writes that the informer cache may not show yet. A status
// write replaces the sweep's resourceVersion R; until the watch delivers the new
// version, the cache still holds R, and a status computed from that copy and written
// with R fails with 409 Conflict (and must: it was computed from a stale read). So the
// reconcile asks here first and, while the cache is behind its own write, waits for the
// watch (a short requeue) instead of sending a write bound to fail. A conflict is then
// left only for another writer's change, and is handled the same way: requeue, read
// again, compute again. Thread-safe.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mlscale::controllers::sweep {

class OwnStatusWrites {
 public:
  using Clock = std::chrono::steady_clock;
  // After `ttl` a record counts as seen, so a lost watch event cannot hold a sweep back
  // for long.
  explicit OwnStatusWrites(std::chrono::milliseconds ttl = std::chrono::seconds(30)) : ttl_(ttl) {}

  // A status write of sweep `key` succeeded, replacing `replaced_version`.
  void Wrote(const std::string& key, const std::string& replaced_version);
  // True while the cached sweep (at `cached_version`) is still the copy the last write
  // replaced. Any other version (or an expired record) ends the wait and drops the record.
  bool CacheBehind(const std::string& key, const std::string& cached_version);
  // Drops the sweep's record (it was deleted).
  void Forget(const std::string& key);

 private:
  struct Record {
    std::string replaced_version;
    Clock::time_point written;
  };
  std::chrono::milliseconds ttl_;
  std::mutex mutex_;
  std::unordered_map<std::string, Record> records_;
};

}  // namespace mlscale::controllers::sweep
