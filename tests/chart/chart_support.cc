#include "chart_support.h"

#include <cstdlib>
#include <sstream>

#include "mlscale/api/manifest.h"

namespace mlscale::testing {

std::string SourceDir() { return MLSCALE_SOURCE_DIR; }
std::string ChartDir() { return SourceDir() + "/charts/mlscale"; }

StatusOr<std::string> HelmBinary() {
  static const StatusOr<std::string> helm = []() -> StatusOr<std::string> {
    if (const char* given = std::getenv("TEST_ASSET_HELM"); given != nullptr && *given != '\0') return std::string(given);
    CommandResult found = RunCommand({"python3", MLSCALE_TESTCLUSTER_TOOL, "binaries", "--extra", "helm"});
    if (found.exit_code != 0) return NotFound("no helm: testcluster.py binaries --extra helm: " + found.output);
    std::istringstream lines(found.output);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("helm\t", 0) == 0) return line.substr(5);
    }
    return NotFound("testcluster.py binaries --extra helm printed no helm: " + found.output);
  }();
  return helm;
}

CommandResult Helm(const std::vector<std::string>& args) {
  StatusOr<std::string> helm = HelmBinary();
  if (!helm.ok()) return {127, helm.status().ToString()};
  std::vector<std::string> argv = {*helm};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

StatusOr<std::vector<nlohmann::json>> ParseYamlStream(const std::string& text) {
  std::vector<nlohmann::json> objects;
  std::istringstream lines(text);
  std::string document;
  bool has_content = false;
  auto flush = [&]() -> Status {
    if (has_content) {
      StatusOr<nlohmann::json> object = api::ParseYamlDocument(document);
      if (!object.ok()) return object.status().WithContext("document " + std::to_string(objects.size() + 1));
      if (!object->is_null()) objects.push_back(std::move(*object));
    }
    document.clear();
    has_content = false;
    return Status::Ok();
  };
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("---", 0) == 0) {
      if (Status s = flush(); !s.ok()) return s;
      continue;
    }
    const size_t first = line.find_first_not_of(' ');
    if (first != std::string::npos && line[first] != '#') has_content = true;
    document += line + "\n";
  }
  if (Status s = flush(); !s.ok()) return s;
  return objects;
}

StatusOr<std::vector<nlohmann::json>> RenderChart(const std::vector<std::string>& set_values,
                                                  const std::string& release, const std::string& namespace_name) {
  std::vector<std::string> args = {"template", release, ChartDir(), "--namespace", namespace_name,
                                   "--kube-version", "1.35.4"};
  for (const std::string& value : set_values) args.insert(args.end(), {"--set", value});
  CommandResult result = Helm(args);
  if (result.exit_code != 0) return InvalidArgument("helm template: " + result.output);
  // helm's notes about the chart's symbolic links go to stderr, before the first "---".
  const size_t start = result.output.find("---");
  return ParseYamlStream(start == std::string::npos ? "" : result.output.substr(start));
}

std::vector<nlohmann::json> OfKind(const std::vector<nlohmann::json>& objects, const std::string& kind) {
  std::vector<nlohmann::json> found;
  for (const nlohmann::json& object : objects) {
    if (object.value("kind", "") == kind) found.push_back(object);
  }
  return found;
}

std::map<std::string, std::vector<Grant>> GrantsOf(const std::vector<nlohmann::json>& objects) {
  std::map<std::string, std::vector<Grant>> grants;
  for (const nlohmann::json& role : objects) {
    const std::string kind = role.value("kind", "");
    if (kind != "Role" && kind != "ClusterRole") continue;
    const nlohmann::json& metadata = role["metadata"];
    const std::string key = kind + "/" + metadata.value("namespace", "") + "/" + metadata.value("name", "");
    std::vector<Grant>& list = grants[key];
    for (const nlohmann::json& rule : role.value("rules", nlohmann::json::array())) {
      std::string names;
      for (const nlohmann::json& name : rule.value("resourceNames", nlohmann::json::array())) {
        names += "[" + name.get<std::string>() + "]";
      }
      for (const nlohmann::json& verb : rule.value("verbs", nlohmann::json::array())) {
        for (const nlohmann::json& group : rule.value("apiGroups", nlohmann::json::array())) {
          for (const nlohmann::json& resource : rule.value("resources", nlohmann::json::array())) {
            list.push_back(verb.get<std::string>() + " " + group.get<std::string>() + "/" +
                           resource.get<std::string>() + names);
          }
        }
      }
    }
  }
  return grants;
}

}  // namespace mlscale::testing
