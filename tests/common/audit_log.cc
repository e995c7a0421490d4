#include "audit_log.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace mlscale::testing {
namespace {

using nlohmann::json;

// A string member of an object, "" when absent; false when present but not a string.
bool StringMember(const json& object, const char* key, std::string& out) {
  if (!object.is_object()) return true;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

}  // namespace

StatusOr<std::vector<AuditRecord>> ParseAuditLog(const std::string& text) {
  std::vector<AuditRecord> records;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (line.empty()) continue;
    std::string where = "audit log line " + std::to_string(number);
    json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (event.is_discarded() || !event.is_object()) return InvalidArgument(where + " is not a JSON object");
    std::string stage;
    if (!StringMember(event, "stage", stage)) return InvalidArgument(where + ": stage is not a string");
    if (stage != "ResponseComplete" && stage != "Panic") continue;
    AuditRecord record;
    const json empty = json::object();
    auto member = [&](const char* key) -> const json& {
      auto it = event.find(key);
      return it == event.end() ? empty : *it;
    };
    const json& user = member("user");
    const json& ref = member("objectRef");
    const json& response = member("responseStatus");
    for (const json* part : {&user, &ref, &response}) {
      if (!part->is_object() && !part->is_null()) return InvalidArgument(where + ": user, objectRef and responseStatus must be objects");
    }
    bool ok = StringMember(user, "username", record.user) && StringMember(event, "verb", record.verb) &&
              StringMember(ref, "apiGroup", record.group) && StringMember(ref, "resource", record.resource) &&
              StringMember(ref, "subresource", record.subresource) &&
              StringMember(ref, "namespace", record.namespace_name) && StringMember(ref, "name", record.name) &&
              StringMember(event, "requestURI", record.uri);
    if (!ok) return InvalidArgument(where + ": a user, verb, objectRef or requestURI field is not a string");
    if (response.is_object() && response.contains("code")) {
      if (!response["code"].is_number_integer()) return InvalidArgument(where + ": responseStatus.code is not an integer");
      record.code = response["code"].get<int>();
    }
    records.push_back(std::move(record));
  }
  return records;
}

StatusOr<std::vector<AuditRecord>> ReadAuditLog(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read the audit log " + path);
  std::stringstream text;
  text << in.rdbuf();
  StatusOr<std::vector<AuditRecord>> records = ParseAuditLog(text.str());
  if (!records.ok()) return records.status().WithContext(path);
  return records;
}

std::string Permission(const AuditRecord& record) {
  if (record.resource.empty()) return record.verb + " " + record.uri;
  std::string key = record.verb + " " + record.group + "/" + record.resource;
  if (!record.subresource.empty()) key += "/" + record.subresource;
  return key;
}

UsedPermissions PermissionsOf(const std::vector<AuditRecord>& records, const std::string& user) {
  UsedPermissions permissions;
  for (const AuditRecord& record : records) {
    if (record.user != user) continue;
    permissions.used.insert(Permission(record));
    if (record.code == 403) permissions.denied.insert(Permission(record));
  }
  return permissions;
}

}  // namespace mlscale::testing
