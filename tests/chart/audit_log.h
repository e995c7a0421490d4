// The requests one user made, read from the test API server's audit log (JSON lines of
// audit.k8s.io/v1 Events, one per request at stage ResponseComplete).
#pragma once

#include <string>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::testing {

struct AuditRequest {
  std::string verb;         // get, list, watch, create, update, patch, delete, ...
  std::string group;        // "" for the core group
  std::string resource;     // plural; "" for a non-resource URL
  std::string subresource;  // e.g. "status"
  std::string namespace_name;
  std::string name;
  std::string uri;  // the request's path and query
  int code = 0;     // the response's status code
  std::string ToString() const;
};

// The requests of `username` (e.g. "system:serviceaccount:ns:sa") in the audit log at
// `path`, in order. Lines that are not JSON objects are an error naming the line.
StatusOr<std::vector<AuditRequest>> ReadAuditRequests(const std::string& path, const std::string& username);

}  // namespace mlscale::testing
