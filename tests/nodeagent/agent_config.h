// The node agent's settings: its config file (YAML) and command-line flags.
//
// Config file, every key optional:
//   images:                          # image -> entrypoint (a path, or a list: binary + fixed args)
//     mlscale/worker:dev: /work/build/worker/mlscale-worker
//     mlscale/python:dev: [/usr/bin/python3, -u]
//   capacity: {cpu: "8", memory: 16Gi, nvidia.com/gpu: "2"}
//   labels: {pool: gpu}
//   taints: ["nvidia.com/gpu=present:NoSchedule"]
// Flags given on the command line add to (and override) the file's entries.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mlscale/common/status.h"
#include "pod_plan.h"

namespace mlscale::nodeagent {

struct Taint {
  std::string key;
  std::string value;
  std::string effect;  // NoSchedule, PreferNoSchedule, NoExecute
};

struct AgentConfig {
  std::string kubeconfig;        // "" = the usual lookup ($KUBECONFIG, in-cluster, ~/.kube/config)
  std::string node_name;
  ImageMap images;
  std::map<std::string, std::string> capacity = {
      {"cpu", "4"}, {"memory", "8Gi"}, {"pods", "110"}, {"ephemeral-storage", "100Gi"}};
  std::map<std::string, std::string> labels;
  std::vector<Taint> taints;
  std::string state_dir;         // "" = /tmp/mlscale-test-node/<node>
  std::string address_dir = "/tmp/mlscale-test-node/addresses";
  // Pod addresses, IPv4 host order; 0..0 = the default loopback range (127.64.0.1 - 127.127.255.254).
  // EndpointSlices refuse loopback addresses: tests whose pods must appear in them give a
  // range the host routes locally (`ip route add local 10.250.0.0/16 dev lo table local`).
  std::uint32_t address_first = 0, address_last = 0;
  std::string host_ip = "127.0.0.1";
  std::string cluster_domain = "cluster.local";
  std::string ready_file;        // written once the Node is registered and caches synced
  std::chrono::seconds lease_duration{40};
  std::chrono::milliseconds restart_backoff{1000};
  std::chrono::milliseconds max_restart_backoff{30'000};
  // A projected service-account token is replaced once this share of its lifetime passed.
  int token_refresh_percent = 80;  // the kubelet's; 1..100
  bool delete_node_on_exit = false;
  // The log endpoint (log_endpoint.h): served when all three files are given.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string client_ca_file;
  uint16_t kubelet_port = 0;  // 0 = any free port
  std::string log_level = "info";
};

// Parses the config file's text into `config` (entries add to what is there).
// InvalidArgument naming the key for anything malformed.
Status ParseConfigFile(const std::string& yaml_text, AgentConfig& config);

// Parses argv with Boost.Program_options (the flags are listed by FlagsHelp). --config
// files are read and applied where they appear. InvalidArgument for unknown flags,
// missing values, bad numbers, a missing --node-name; "help" as the message when
// --help was given.
StatusOr<AgentConfig> ParseFlags(const std::vector<std::string>& args);
// The --help text, generated from the flag descriptions.
std::string FlagsHelp();

// "key=value:Effect" or "key:Effect".
StatusOr<Taint> ParseTaint(const std::string& text);

}  // namespace mlscale::nodeagent
