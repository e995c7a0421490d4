// The test control plane's audit log (cluster.json "auditLog"; Metadata level, one JSON
// event per line, written by kube-apiserver as requests complete) read as the requests a
// test wants to reason about: who did what to which resource, and what the answer was.
//
//   StatusOr<std::vector<AuditRecord>> records = ReadAuditLog(CurrentCluster()->audit_log);
//   for (const AuditRecord& r : *records)
//     if (r.user == "system:serviceaccount:ns:mlscale-operator" && r.code == 403) ...  // denied
//
// Used by least-privilege tests: the (verb, group/resource[/subresource]) pairs a service
// account used against what its role grants.
#pragma once

#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::testing {

struct AuditRecord {
  std::string user;         // user.username, e.g. "system:serviceaccount:<ns>:<name>"
  std::string verb;         // get, list, watch, create, update, patch, delete, deletecollection
  std::string group;        // objectRef.apiGroup: "" for the core group
  std::string resource;     // objectRef.resource, e.g. "pods"; "" for non-resource URLs
  std::string subresource;  // objectRef.subresource, e.g. "status"
  std::string namespace_name;  // objectRef.namespace, "" for cluster-scoped requests
  std::string name;         // objectRef.name, "" for collections
  std::string uri;          // requestURI (the path for non-resource requests)
  int code = 0;             // responseStatus.code: 403 = denied by authorization
  bool operator==(const AuditRecord&) const = default;
};

// Parses audit log text (JSON lines). Only completed requests (stage ResponseComplete or
// Panic) are returned; other stages are skipped. Errors: InvalidArgument naming the
// (1-based) line that is not a JSON object or whose fields have the wrong type.
StatusOr<std::vector<AuditRecord>> ParseAuditLog(const std::string& text);

// Reads and parses the file (NotFound when it cannot be read).
StatusOr<std::vector<AuditRecord>> ReadAuditLog(const std::string& path);

// "verb group/resource[/subresource]" ("get /pods/log" for the core group): the key a
// role's rules are compared by.
std::string Permission(const AuditRecord& record);

// The permissions one user used, and those it was denied (code 403), as sorted sets.
struct UsedPermissions {
  std::set<std::string> used;    // every request, allowed or not
  std::set<std::string> denied;  // 403 answers
};
UsedPermissions PermissionsOf(const std::vector<AuditRecord>& records, const std::string& user);

}  // namespace mlscale::testing
