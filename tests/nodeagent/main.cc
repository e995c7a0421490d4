// mlscale-test-node: a kubelet stand-in for end-to-end tests. It registers a Node and
// runs the pods the scheduler binds to it as local processes (see README.md).
//
// Flags: `mlscale-test-node --help` (generated from agent_config.cc's descriptions).
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
  std::cerr << "mlscale-test-node: " << problem << "\n\n" << mlscale::nodeagent::FlagsHelp();
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
    if (config.status().message() == "help") {
      std::cout << mlscale::nodeagent::FlagsHelp();
      return 0;
    }
    return Usage(config.status().message());
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
