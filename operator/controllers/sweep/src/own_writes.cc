#include "mlscale/controllers/sweep/own_writes.h"

namespace mlscale::controllers::sweep {

void OwnStatusWrites::Wrote(const std::string& key, const std::string& replaced_version) {
  std::lock_guard lock(mutex_);
  records_[key] = Record{replaced_version, Clock::now()};
}

bool OwnStatusWrites::CacheBehind(const std::string& key, const std::string& cached_version) {
  std::lock_guard lock(mutex_);
  auto it = records_.find(key);
  if (it == records_.end()) return false;
  if (it->second.replaced_version == cached_version && Clock::now() - it->second.written <= ttl_) return true;
  records_.erase(it);
  return false;
}

void OwnStatusWrites::Forget(const std::string& key) {
  std::lock_guard lock(mutex_);
  records_.erase(key);
}

}  // namespace mlscale::controllers::sweep
