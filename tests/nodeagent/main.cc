// mlscale-test-node: a kubelet stand-in for end-to-end tests. It registers a Node and
// runs the pods the scheduler binds to it as local processes (see README.md).
//
// Usage: mlscale-test-node --node-name NAME [flags]
//   --kubeconfig PATH            credentials (default: $KUBECONFIG, in-cluster, ~/.kube/config)
//   --node-name NAME             the Node to register (required)
//   --config FILE                YAML: images, capacity, labels, taints (agent_config.h)
//   --image IMAGE=PATH           run PATH for containers of IMAGE that give no command
//   --capacity NAME=QUANTITY     node capacity, e.g. cpu=8, memory=16Gi, nvidia.com/gpu=2
//                                (defaults: cpu=4 memory=8Gi pods=110 ephemeral-storage=100Gi)
//   --label KEY=VALUE            node label
//   --taint KEY[=VALUE]:EFFECT   node taint
//   --state-dir DIR              pod folders: logs, hosts, termination logs
//                                (default /tmp/mlscale-test-node/NAME)
//   --address-dir DIR            pod address leases shared by all agents of the machine
//                                (default /tmp/mlscale-test-node/addresses)
//   --host-ip IP                 the node's address (default 127.0.0.1)
//   --cluster-domain DOMAIN      default cluster.local
//   --ready-file PATH            written once the node is registered and caches synced
//   --lease-duration-seconds N   node lease duration (default 40; renewed every N/4)
//   --restart-backoff-ms N       first container restart delay (default 1000, doubling)
//   --max-restart-backoff-ms N   restart delay cap (default 30000)
//   --delete-node-on-exit        delete the Node and its Lease on SIGTERM/SIGINT
//   --log-level LEVEL            trace, debug, info (default), warn, error
// Runs until SIGTERM or SIGINT; then kills every pod process it started. Needs root
// (mount and UTS namespaces for each container).
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include <spdlog/spdlog.h>

#include "agent_config.h"
#include "mlscale/kube/client.h"
#include "mlscale/kube/config.h"
#include "mlscale/kube/logging.h"
#include "node_agent.h"

namespace {

int Usage(const std::string& problem) {
  std::cerr << problem << "\nusage: mlscale-test-node --node-name NAME [--kubeconfig PATH] [--config FILE]\n"
               "  [--image IMAGE=PATH]... [--capacity NAME=QUANTITY]... [--label KEY=VALUE]...\n"
               "  [--taint KEY[=VALUE]:EFFECT]... [--state-dir DIR] [--address-dir DIR] [--host-ip IP]\n"
               "  [--cluster-domain DOMAIN] [--ready-file PATH] [--lease-duration-seconds N]\n"
               "  [--restart-backoff-ms N] [--max-restart-backoff-ms N] [--delete-node-on-exit]\n"
               "  [--log-level LEVEL]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mlscale;
  // SIGTERM/SIGINT end the agent: they are blocked before any thread exists (the client
  // starts a pool), so every thread inherits the mask and only the waiter below takes them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  StatusOr<nodeagent::AgentConfig> config = nodeagent::ParseFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!config.ok()) {
    if (config.status().message() == "help") return Usage("mlscale-test-node: runs pods as local processes");
    return Usage(config.status().ToString());
  }
  if (Status s = kube::ConfigureLogging(kube::LogFormat::kText, config->log_level); !s.ok()) {
    return Usage(s.ToString());
  }
  StatusOr<kube::ClientConfig> client_config = kube::LoadDefaultConfig(config->kubeconfig);
  if (!client_config.ok()) {
    spdlog::error("{}", client_config.status().ToString());
    return 1;
  }
  client_config->user_agent = "mlscale-test-node/" + config->node_name;
  StatusOr<std::unique_ptr<kube::Client>> client = kube::Client::Create(*client_config);
  if (!client.ok()) {
    spdlog::error("{}", client.status().ToString());
    return 1;
  }

  std::stop_source stop;
  std::jthread waiter([&stop, signals] {
    int received = 0;
    sigwait(&signals, &received);
    spdlog::info("signal {}: stopping", received);
    stop.request_stop();
  });

  nodeagent::NodeAgent agent(**client, *config);
  Status result = agent.Run(stop.get_token());
  if (!stop.stop_requested()) {
    // Run failed on its own: wake the signal waiter so it can be joined.
    stop.request_stop();
    kill(getpid(), SIGTERM);
  }
  if (!result.ok()) {
    spdlog::error("{}", result.ToString());
    return 1;
  }
  return 0;
}
