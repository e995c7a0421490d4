#include "mlscale/kube/errors.h"

#include <nlohmann/json.hpp>

namespace mlscale::kube {
namespace {

std::string_view PhraseOf(int http_status) {
  switch (http_status) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default: return "Unknown";
  }
}

StatusCode CodeOf(int http_status, std::string_view reason) {
  switch (http_status) {
    case 400:
    case 422: return StatusCode::kInvalidArgument;
    case 401: return StatusCode::kUnauthenticated;
    case 403: return StatusCode::kPermissionDenied;
    case 404: return StatusCode::kNotFound;
    case 409: return reason == "AlreadyExists" ? StatusCode::kAlreadyExists : StatusCode::kConflict;
    case 410: return StatusCode::kAborted;
    case 429: return StatusCode::kResourceExhausted;
    case 504: return StatusCode::kDeadlineExceeded;
    default: return http_status >= 500 ? StatusCode::kUnavailable : StatusCode::kInternal;
  }
}

}  // namespace

Status StatusFromHttp(int http_status, std::string_view body) {
  std::string reason(PhraseOf(http_status));
  std::string message;
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object() && doc.value("kind", "") == "Status") {
    if (doc.contains("reason") && doc["reason"].is_string() && !doc["reason"].get<std::string>().empty()) {
      reason = doc["reason"].get<std::string>();
    }
    if (doc.contains("message") && doc["message"].is_string()) message = doc["message"].get<std::string>();
  } else {
    // Never quoted: a proxy or a broken server may echo anything, Secret data included.
    message = body.empty() ? "empty body"
                           : "a body of " + std::to_string(body.size()) + " bytes that is not a Status (not quoted)";
  }
  return Status(CodeOf(http_status, reason),
                reason + " (HTTP " + std::to_string(http_status) + "): " + message);
}

std::string ReasonOf(const Status& status) {
  const std::string& message = status.message();
  size_t marker = message.find(" (HTTP ");
  if (marker == std::string::npos) return "";
  // Context may precede the reason ("GET /api/...: NotFound (HTTP 404): ..."); reasons have no spaces.
  size_t start = message.rfind(' ', marker - 1);
  start = start == std::string::npos ? 0 : start + 1;
  return message.substr(start, marker - start);
}

}  // namespace mlscale::kube
