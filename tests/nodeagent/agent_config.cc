#include "agent_config.h"

#include <arpa/inet.h>

#include <fstream>
#include <sstream>

#include <boost/program_options.hpp>
#include <yaml-cpp/yaml.h>

namespace mlscale::nodeagent {
namespace {

namespace po = boost::program_options;

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

namespace {

// The flags, described once: the parser and --help both come from here.
po::options_description FlagDescriptions() {
  po::options_description flags(
      "usage: mlscale-test-node --node-name NAME [flags]\n\n"
      "Plays the kubelet's part for end-to-end tests: registers a Node and runs the pods bound to it\n"
      "as local processes. Runs until SIGTERM or SIGINT, then kills every pod process it started.\n\nFlags");
  flags.add_options()
      ("help,h", "print this help and exit")
      ("kubeconfig", po::value<std::string>()->value_name("PATH"),
       "credentials (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
      ("node-name", po::value<std::string>()->value_name("NAME"), "the Node to register (required)")
      ("config", po::value<std::string>()->value_name("FILE"),
       "YAML: images, capacity, labels, taints (agent_config.h); applied where it appears")
      ("image", po::value<std::vector<std::string>>()->value_name("IMAGE=PATH"),
       "run PATH for containers of IMAGE that give no command (repeatable)")
      ("capacity", po::value<std::vector<std::string>>()->value_name("NAME=QUANTITY"),
       "node capacity, e.g. cpu=8, memory=16Gi, nvidia.com/gpu=2 (repeatable; defaults: cpu=4 memory=8Gi "
       "pods=110 ephemeral-storage=100Gi)")
      ("label", po::value<std::vector<std::string>>()->value_name("KEY=VALUE"), "node label (repeatable)")
      ("taint", po::value<std::vector<std::string>>()->value_name("KEY[=VALUE]:EFFECT"), "node taint (repeatable)")
      ("state-dir", po::value<std::string>()->value_name("DIR"),
       "pod folders: logs, hosts, termination logs (default /tmp/mlscale-test-node/NAME)")
      ("address-dir", po::value<std::string>()->value_name("DIR"),
       "pod address leases shared by all agents of the machine (default /tmp/mlscale-test-node/addresses)")
      ("address-range", po::value<std::string>()->value_name("FIRST-LAST"),
       "pod addresses, e.g. 10.250.0.1-10.250.255.254 (default 127.64.0.1-127.127.255.254; EndpointSlices refuse loopback)")
      ("host-ip", po::value<std::string>()->value_name("IP"), "the node's address (default 127.0.0.1)")
      ("cluster-domain", po::value<std::string>()->value_name("DOMAIN"), "default cluster.local")
      ("ready-file", po::value<std::string>()->value_name("PATH"),
       "written once the node is registered and caches synced")
      ("lease-duration-seconds", po::value<std::string>()->value_name("N"),
       "node lease duration (default 40; renewed every N/4)")
      ("restart-backoff-ms", po::value<std::string>()->value_name("N"),
       "first container restart delay (default 1000, doubling)")
      ("max-restart-backoff-ms", po::value<std::string>()->value_name("N"), "restart delay cap (default 30000)")
      ("token-refresh-percent", po::value<std::string>()->value_name("N"),
       "replace a projected service-account token once N% of its lifetime has passed (1..100; default 80, "
       "the kubelet's; tests set it low to see a refresh within seconds)")
      ("delete-node-on-exit", "delete the Node and its Lease on SIGTERM/SIGINT")
      ("tls-cert-file", po::value<std::string>()->value_name("PEM"),
       "serving certificate of the log endpoint (kubectl logs); with --tls-private-key-file and "
       "--client-ca-file, else no endpoint is served")
      ("tls-private-key-file", po::value<std::string>()->value_name("PEM"), "its key")
      ("client-ca-file", po::value<std::string>()->value_name("PEM"),
       "CA that signs the certificates of allowed clients (the API server's --kubelet-client-certificate)")
      ("kubelet-port", po::value<std::string>()->value_name("N"),
       "port of the log endpoint on --host-ip (default 0: a free one, advertised in the Node status)")
      ("log-level", po::value<std::string>()->value_name("LEVEL"), "trace, debug, info (default), warn, error");
  return flags;
}

}  // namespace

std::string FlagsHelp() {
  std::ostringstream text;
  text << FlagDescriptions();
  return text.str();
}

StatusOr<AgentConfig> ParseFlags(const std::vector<std::string>& args) {
  AgentConfig config;
  po::parsed_options parsed(nullptr);
  try {
    parsed = po::command_line_parser(args).options(FlagDescriptions()).run();
  } catch (const po::error& error) {
    return InvalidArgument(std::string(error.what()) + " (see --help)");
  }
  // In the order given, so that a --config file applies where it appears.
  for (const po::option& option : parsed.options) {
    const std::string& name = option.string_key;
    const std::string flag = "--" + name;
    const std::string value = option.value.empty() ? "" : option.value.front();
    if (name == "help") return InvalidArgument("help");
    if (name == "delete-node-on-exit") {
      config.delete_node_on_exit = true;
    } else if (name == "kubeconfig") {
      config.kubeconfig = value;
    } else if (name == "node-name") {
      config.node_name = value;
    } else if (name == "config") {
      std::ifstream in(value);
      if (!in) return InvalidArgument("--config: cannot read " + value);
      std::stringstream text;
      text << in.rdbuf();
      MLSCALE_RETURN_IF_ERROR(ParseConfigFile(text.str(), config).WithContext(value));
    } else if (name == "image" || name == "capacity" || name == "label") {
      StatusOr<std::pair<std::string, std::string>> kv = KeyValue(value, flag);
      if (!kv.ok()) return kv.status();
      if (name == "image") config.images[kv->first] = {kv->second};
      if (name == "capacity") config.capacity[kv->first] = kv->second;
      if (name == "label") config.labels[kv->first] = kv->second;
    } else if (name == "taint") {
      StatusOr<Taint> taint = ParseTaint(value);
      if (!taint.ok()) return taint.status();
      config.taints.push_back(*taint);
    } else if (name == "state-dir") {
      config.state_dir = value;
    } else if (name == "address-dir") {
      config.address_dir = value;
    } else if (name == "address-range") {
      const std::size_t dash = value.find('-');
      in_addr first{}, last{};
      if (dash == std::string::npos || inet_pton(AF_INET, value.substr(0, dash).c_str(), &first) != 1 ||
          inet_pton(AF_INET, value.substr(dash + 1).c_str(), &last) != 1 || ntohl(first.s_addr) > ntohl(last.s_addr)) {
        return InvalidArgument("--address-range '" + value + "': expected FIRST-LAST, two IPv4 addresses in order");
      }
      config.address_first = ntohl(first.s_addr);
      config.address_last = ntohl(last.s_addr);
    } else if (name == "host-ip") {
      config.host_ip = value;
    } else if (name == "cluster-domain") {
      config.cluster_domain = value;
    } else if (name == "ready-file") {
      config.ready_file = value;
    } else if (name == "tls-cert-file") {
      config.tls_cert_file = value;
    } else if (name == "tls-private-key-file") {
      config.tls_key_file = value;
    } else if (name == "client-ca-file") {
      config.client_ca_file = value;
    } else if (name == "kubelet-port") {
      StatusOr<int64_t> number = Number(value, flag);
      if (!number.ok()) return number.status();
      if (*number < 0 || *number > 65535) return InvalidArgument("--kubelet-port must be 0..65535");
      config.kubelet_port = static_cast<uint16_t>(*number);
    } else if (name == "token-refresh-percent") {
      StatusOr<int64_t> number = Number(value, flag);
      if (!number.ok()) return number.status();
      if (*number < 1 || *number > 100) return InvalidArgument("--token-refresh-percent must be 1..100");
      config.token_refresh_percent = static_cast<int>(*number);
    } else if (name == "log-level") {
      config.log_level = value;
    } else if (name == "lease-duration-seconds" || name == "restart-backoff-ms" || name == "max-restart-backoff-ms") {
      StatusOr<int64_t> number = Number(value, flag);
      if (!number.ok()) return number.status();
      if (name == "lease-duration-seconds") config.lease_duration = std::chrono::seconds(std::max<int64_t>(*number, 1));
      if (name == "restart-backoff-ms") config.restart_backoff = std::chrono::milliseconds(*number);
      if (name == "max-restart-backoff-ms") config.max_restart_backoff = std::chrono::milliseconds(*number);
    }
  }
  if (config.node_name.empty()) return InvalidArgument("--node-name is required");
  int tls_files = !config.tls_cert_file.empty() + !config.tls_key_file.empty() + !config.client_ca_file.empty();
  if (tls_files != 0 && tls_files != 3) {
    return InvalidArgument("--tls-cert-file, --tls-private-key-file and --client-ca-file go together");
  }
  if (config.state_dir.empty()) config.state_dir = "/tmp/mlscale-test-node/" + config.node_name;
  return config;
}

}  // namespace mlscale::nodeagent
