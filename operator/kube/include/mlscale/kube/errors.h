// API errors as mlscale::Status values. A failed request becomes a Status whose code
// follows the HTTP status and whose message is
//   "<Reason> (HTTP <code>): <server's message>"   e.g. "Conflict (HTTP 409): ...".
// (callers may prefix context, e.g. the request line) where Reason is the server's metav1.Status reason (or the HTTP reason phrase when the
// body was not a Status). Transport failures are kUnavailable with the cause.
#pragma once

#include <string>
#include <string_view>

#include "mlscale/common/status.h"

namespace mlscale::kube {

// HTTP -> StatusCode: 400,422 InvalidArgument; 401 Unauthenticated; 403 PermissionDenied;
// 404 NotFound; 409 AlreadyExists (reason AlreadyExists) or Conflict; 410 Aborted (the
// resourceVersion expired: relist); 429 ResourceExhausted; 504 DeadlineExceeded;
// other 5xx Unavailable; anything else unexpected Internal.
Status StatusFromHttp(int http_status, std::string_view body);

// The server's Reason carried in the message ("Conflict", "Expired", "NotFound", ...),
// or "" for statuses not made by StatusFromHttp.
std::string ReasonOf(const Status& status);

inline bool IsNotFound(const Status& s) { return s.code() == StatusCode::kNotFound; }
inline bool IsAlreadyExists(const Status& s) { return s.code() == StatusCode::kAlreadyExists; }
inline bool IsConflict(const Status& s) { return s.code() == StatusCode::kConflict; }
// 410 Gone: the requested resourceVersion is older than etcd keeps; list again.
inline bool IsGone(const Status& s) { return s.code() == StatusCode::kAborted; }
// Worth retrying the same request later (connection failures, 429, 5xx, timeouts).
inline bool IsTransient(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kResourceExhausted ||
         s.code() == StatusCode::kDeadlineExceeded;
}

}  // namespace mlscale::kube
