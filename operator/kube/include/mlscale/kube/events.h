// Recording Kubernetes Events on the object they are about. Repeats of the same event
// (same object, type, reason and message) within the process update the existing
// Event's count and lastTimestamp instead of creating a new one. Recording never fails
// the caller: errors are logged.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "mlscale/kube/client.h"

namespace mlscale::kube {

class EventRecorder {
 public:
  // `component` appears as the event's source (e.g. "mlscale-operator").
  EventRecorder(Client& client, std::string component);
  void Normal(const Object& involved, const std::string& reason, const std::string& message) {
    Record(involved, "Normal", reason, message);
  }
  void Warning(const Object& involved, const std::string& reason, const std::string& message) {
    Record(involved, "Warning", reason, message);
  }
  void Record(const Object& involved, const std::string& type, const std::string& reason,
              const std::string& message);

 private:
  struct Recorded {
    std::string namespace_name;
    std::string name;
    int count = 0;
  };
  Client& client_;
  std::string component_;
  std::mutex mutex_;
  std::map<std::string, Recorded> recorded_;  // dedup key -> the Event written
};

}  // namespace mlscale::kube
