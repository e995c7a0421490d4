#include "agent_config.h"

#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace mlscale::nodeagent {
namespace {

// "name=value" split at the first '='.
StatusOr<std::pair<std::string, std::string>> KeyValue(const std::string& text, const std::string& flag) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InvalidArgument(flag + " wants NAME=VALUE, got '" + text + "'");
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

StatusOr<int64_t> Number(const std::string& text, const std::string& flag) {
  try {
    size_t used = 0;
    int64_t value = std::stoll(text, &used);
    if (used == text.size() && value >= 0) return value;
  } catch (const std::exception&) {
  }
  return InvalidArgument(flag + " wants a non-negative integer, got '" + text + "'");
}

Status StringMap(const YAML::Node& node, const std::string& key, std::map<std::string, std::string>& out) {
  if (!node) return Status::Ok();
  if (!node.IsMap()) return InvalidArgument("config: '" + key + "' must be a map");
  for (const auto& entry : node) {
    if (!entry.second.IsScalar()) {
      return InvalidArgument("config: " + key + "." + entry.first.Scalar() + " must be a single value");
    }
    out[entry.first.Scalar()] = entry.second.Scalar();
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Taint> ParseTaint(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgument("taint '" + text + "' is not key[=value]:Effect");
  }
  Taint taint;
  taint.effect = text.substr(colon + 1);
  if (taint.effect != "NoSchedule" && taint.effect != "PreferNoSchedule" && taint.effect != "NoExecute") {
    return InvalidArgument("taint '" + text + "': effect must be NoSchedule, PreferNoSchedule or NoExecute");
  }
  std::string key_value = text.substr(0, colon);
  auto eq = key_value.find('=');
  taint.key = key_value.substr(0, eq);
  if (eq != std::string::npos) taint.value = key_value.substr(eq + 1);
  if (taint.key.empty()) return InvalidArgument("taint '" + text + "' has no key");
  return taint;
}

Status ParseConfigFile(const std::string& yaml_text, AgentConfig& config) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& error) {
    return InvalidArgument(std::string("config: not YAML: ") + error.what());
  }
  if (root.IsNull()) return Status::Ok();
  if (!root.IsMap()) return InvalidArgument("config: the document must be a map");
  for (const auto& entry : root) {
    std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
    if (key != "images" && key != "capacity" && key != "labels" && key != "taints") {
      return InvalidArgument("config: unknown key '" + key + "' (known: images, capacity, labels, taints)");
    }
  }
  if (const YAML::Node images = root["images"]) {
    if (!images.IsMap()) return InvalidArgument("config: 'images' must be a map of image -> entrypoint");
    for (const auto& entry : images) {
      std::string image = entry.first.Scalar();
      std::vector<std::string> argv;
      if (entry.second.IsScalar()) {
        argv.push_back(entry.second.Scalar());
      } else if (entry.second.IsSequence()) {
        for (const auto& word : entry.second) {
          if (!word.IsScalar()) return InvalidArgument("config: images." + image + " has a non-string item");
          argv.push_back(word.Scalar());
        }
      }
      if (argv.empty() || argv[0].empty()) {
        return InvalidArgument("config: images." + image + " must be a path or a non-empty list");
      }
      config.images[image] = std::move(argv);
    }
  }
  MLSCALE_RETURN_IF_ERROR(StringMap(root["capacity"], "capacity", config.capacity));
  MLSCALE_RETURN_IF_ERROR(StringMap(root["labels"], "labels", config.labels));
  if (const YAML::Node taints = root["taints"]) {
    if (!taints.IsSequence()) return InvalidArgument("config: 'taints' must be a list of key=value:Effect");
    for (const auto& item : taints) {
      if (!item.IsScalar()) return InvalidArgument("config: taints has an item that is not a string");
      StatusOr<Taint> taint = ParseTaint(item.Scalar());
      if (!taint.ok()) return taint.status().WithContext("config");
      config.taints.push_back(*taint);
    }
  }
  return Status::Ok();
}

StatusOr<AgentConfig> ParseFlags(const std::vector<std::string>& args) {
  AgentConfig config;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    if (flag == "--help" || flag == "-h") return InvalidArgument("help");
    std::string value;
    bool has_inline_value = false;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_inline_value = true;
    }
    if (flag == "--delete-node-on-exit") {
      config.delete_node_on_exit = true;
      continue;
    }
    if (!has_inline_value) {
      if (i + 1 >= args.size()) return InvalidArgument(flag + " needs a value");
      value = args[++i];
    }
    if (flag == "--kubeconfig") {
      config.kubeconfig = value;
    } else if (flag == "--node-name") {
      config.node_name = value;
    } else if (flag == "--config") {
      std::ifstream in(value);
      if (!in) return InvalidArgument("--config: cannot read " + value);
      std::stringstream text;
      text << in.rdbuf();
      MLSCALE_RETURN_IF_ERROR(ParseConfigFile(text.str(), config).WithContext(value));
    } else if (flag == "--image" || flag == "--capacity" || flag == "--label") {
      StatusOr<std::pair<std::string, std::string>> kv = KeyValue(value, flag);
      if (!kv.ok()) return kv.status();
      if (flag == "--image") config.images[kv->first] = {kv->second};
      if (flag == "--capacity") config.capacity[kv->first] = kv->second;
      if (flag == "--label") config.labels[kv->first] = kv->second;
    } else if (flag == "--taint") {
      StatusOr<Taint> taint = ParseTaint(value);
      if (!taint.ok()) return taint.status();
      config.taints.push_back(*taint);
    } else if (flag == "--state-dir") {
      config.state_dir = value;
    } else if (flag == "--address-dir") {
      config.address_dir = value;
    } else if (flag == "--host-ip") {
      config.host_ip = value;
    } else if (flag == "--cluster-domain") {
      config.cluster_domain = value;
    } else if (flag == "--ready-file") {
      config.ready_file = value;
    } else if (flag == "--log-level") {
      config.log_level = value;
    } else if (flag == "--lease-duration-seconds" || flag == "--restart-backoff-ms" ||
               flag == "--max-restart-backoff-ms") {
      StatusOr<int64_t> number = Number(value, flag);
      if (!number.ok()) return number.status();
      if (flag == "--lease-duration-seconds") config.lease_duration = std::chrono::seconds(std::max<int64_t>(*number, 1));
      if (flag == "--restart-backoff-ms") config.restart_backoff = std::chrono::milliseconds(*number);
      if (flag == "--max-restart-backoff-ms") config.max_restart_backoff = std::chrono::milliseconds(*number);
    } else {
      return InvalidArgument("unknown flag '" + flag + "' (see --help)");
    }
  }
  if (config.node_name.empty()) return InvalidArgument("--node-name is required");
  if (config.state_dir.empty()) config.state_dir = "/tmp/mlscale-test-node/" + config.node_name;
  return config;
}

}  // namespace mlscale::nodeagent
