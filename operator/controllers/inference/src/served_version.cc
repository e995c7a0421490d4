#include "mlscale/controllers/inference/served_version.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "mlscale/http/get.h"

namespace mlscale::controllers::inference {
namespace {

bool IsVersionNumber(const std::string& text) {
  return !text.empty() && text.size() <= 18 && text.find_first_not_of("0123456789") == std::string::npos;
}

// Numeric order of version numbers (no leading-zero games: "10" after "9").
bool VersionLess(const std::string& a, const std::string& b) {
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}

StatusOr<std::string> Get(const std::string& address, int port, const std::string& path,
                          std::chrono::milliseconds deadline) {
  StatusOr<http::GetReply> reply = http::BoundedGet(
      {.address = address, .port = port, .path = path, .headers = {}, .max_body_bytes = kMaxModelReplyBytes,
       .deadline = deadline});
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) {
    return Unavailable(address + ":" + std::to_string(port) + path + " answered " + std::to_string(reply->status));
  }
  return std::move(reply->body);
}

}  // namespace

StatusOr<std::string> ParseServedVersion(std::string_view body, const std::string& expected_name) {
  if (body.size() > kMaxModelReplyBytes) return InvalidArgument("model metadata larger than 64 KiB");
  nlohmann::json reply = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object()) return InvalidArgument("model metadata is not a JSON object");
  if (!reply.contains("name") || !reply["name"].is_string()) return InvalidArgument("model metadata: name must be a string");
  if (reply["name"].get<std::string>() != expected_name) {
    return InvalidArgument("model metadata: name is " + reply["name"].dump() + ", expected " + nlohmann::json(expected_name).dump());
  }
  if (!reply.contains("versions") || !reply["versions"].is_array() || reply["versions"].empty()) {
    return InvalidArgument("model metadata: versions must be a non-empty array");
  }
  std::string highest;
  for (const auto& version : reply["versions"]) {
    if (!version.is_string() || !IsVersionNumber(version.get<std::string>())) {
      return InvalidArgument("model metadata: versions[] must be version numbers (1..18 digits), got " +
                             version.dump().substr(0, 40));
    }
    std::string text = version.get<std::string>();
    if (highest.empty() || VersionLess(highest, text)) highest = std::move(text);
  }
  return highest;
}

StatusOr<std::vector<std::string>> ParseModelList(std::string_view body) {
  if (body.size() > kMaxModelReplyBytes) return InvalidArgument("model list larger than 64 KiB");
  nlohmann::json reply = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object()) return InvalidArgument("model list is not a JSON object");
  if (!reply.contains("models") || !reply["models"].is_array()) return InvalidArgument("model list: models must be an array");
  std::vector<std::string> names;
  for (const auto& name : reply["models"]) {
    if (!name.is_string() || name.get<std::string>().empty() || name.get<std::string>().size() > 253) {
      return InvalidArgument("model list: models[] must be names of 1..253 bytes");
    }
    names.push_back(name.get<std::string>());
  }
  return names;
}

StatusOr<std::string> FetchServedVersion(const std::string& address, int port, const std::string& model_name,
                                         std::chrono::milliseconds deadline) {
  std::vector<std::string> names{model_name};
  if (model_name.empty()) {
    StatusOr<std::string> list = Get(address, port, "/v1/models", deadline);
    if (!list.ok()) return list.status();
    StatusOr<std::vector<std::string>> parsed = ParseModelList(*list);
    if (!parsed.ok()) return parsed.status();
    names = std::move(*parsed);
    std::sort(names.begin(), names.end());
    if (names.size() > kMaxRepositoryModels) names.resize(kMaxRepositoryModels);
  }
  std::string served;
  for (const std::string& name : names) {
    // A name from the pod goes into a path: only what a model name may be (serve refuses the rest).
    if (name.find_first_of("/?#% ") != std::string::npos) return InvalidArgument("model list: bad model name");
    StatusOr<std::string> metadata = Get(address, port, "/v2/models/" + name, deadline);
    if (!metadata.ok()) return metadata.status();
    StatusOr<std::string> version = ParseServedVersion(*metadata, name);
    if (!version.ok()) return version.status().WithContext(address + ":" + std::to_string(port));
    served += (served.empty() ? "" : ", ") + (model_name.empty() ? name + ":" : std::string()) + *version;
  }
  return served;
}

std::string CombineServedVersions(std::vector<std::string> versions) {
  std::sort(versions.begin(), versions.end());
  versions.erase(std::unique(versions.begin(), versions.end()), versions.end());
  std::string combined;
  for (const auto& version : versions) combined += (combined.empty() ? "" : " | ") + version;
  return combined;
}

}  // namespace mlscale::controllers::inference
