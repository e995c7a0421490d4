#include "audit_log.h"

#include <fstream>

#include <nlohmann/json.hpp>

namespace mlscale::testing {

std::string AuditRequest::ToString() const {
  return verb + " " + (resource.empty() ? uri : group + "/" + resource + (subresource.empty() ? "" : "/" + subresource)) +
         (namespace_name.empty() ? "" : " in " + namespace_name) + (name.empty() ? "" : " name " + name) + " -> " +
         std::to_string(code);
}

StatusOr<std::vector<AuditRequest>> ReadAuditRequests(const std::string& path, const std::string& username) {
  std::ifstream in(path);
  if (!in) return NotFound("no audit log at " + path);
  std::vector<AuditRequest> requests;
  size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.empty()) continue;
    nlohmann::json event = nlohmann::json::parse(line, nullptr, false);
    if (event.is_discarded() || !event.is_object()) {
      return DataLoss(path + ":" + std::to_string(number) + ": not a JSON object");
    }
    if (event.value("stage", "") != "ResponseComplete") continue;
    const nlohmann::json user = event.value("user", nlohmann::json::object());
    if (!user.is_object() || user.value("username", "") != username) continue;
    AuditRequest request;
    request.verb = event.value("verb", "");
    request.uri = event.value("requestURI", "");
    const nlohmann::json object = event.value("objectRef", nlohmann::json::object());
    if (object.is_object()) {
      request.group = object.value("apiGroup", "");
      request.resource = object.value("resource", "");
      request.subresource = object.value("subresource", "");
      request.namespace_name = object.value("namespace", "");
      request.name = object.value("name", "");
    }
    const nlohmann::json status = event.value("responseStatus", nlohmann::json::object());
    if (status.is_object() && status.contains("code") && status["code"].is_number_integer()) request.code = status["code"];
    requests.push_back(std::move(request));
  }
  return requests;
}

}  // namespace mlscale::testing
