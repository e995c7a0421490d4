// A small controller manager process for the leader-election tests: leader election on
// a Lease, a ConfigMap informer and a no-op controller, endpoints on free ports.
//   manager_probe <kubeconfig> <namespace> <lease-name> <identity> [<lease ms> <renew ms> <retry ms>]
// Prints "metrics-port <N>" and "health-port <N>" once serving, and log lines without a
// prefix (so tests can match "leader election: <identity> led ..."); exits 0 after SIGTERM.
// A test helper, not a user-facing program: positional arguments only.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <string>
#include <thread>

#include "mlscale/kube/manager.h"

int main(int argc, char** argv) {
  using namespace mlscale::kube;
  if (argc != 5 && argc != 8) {
    std::fprintf(stderr, "usage: %s <kubeconfig> <namespace> <lease-name> <identity> [<lease ms> <renew ms> <retry ms>]\n",
                 argv[0]);
    return 2;
  }
  spdlog::set_pattern("%v");
  mlscale::StatusOr<ClientConfig> config = LoadKubeconfig(argv[1]);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 1;
  }
  ManagerOptions options;
  options.client = *config;
  options.metrics_address = "127.0.0.1:0";
  options.health_probe_address = "127.0.0.1:0";
  LeaderElectionConfig election{argv[2], argv[3], argv[4]};
  if (argc == 8) {
    election.lease_duration = std::chrono::milliseconds(std::stoll(argv[5]));
    election.renew_deadline = std::chrono::milliseconds(std::stoll(argv[6]));
    election.retry_period = std::chrono::milliseconds(std::stoll(argv[7]));
  }
  options.leader_election = election;
  mlscale::StatusOr<std::unique_ptr<Manager>> manager = Manager::Create(options);
  if (!manager.ok()) {
    std::fprintf(stderr, "%s\n", manager.status().ToString().c_str());
    return 1;
  }
  Controller& controller = (*manager)->AddController(
      {"noop", 1, {}},
      [](const std::string&, std::stop_token) -> mlscale::StatusOr<ReconcileResult> { return ReconcileResult{}; });
  (*manager)->informers().Informer(resources::ConfigMaps(), argv[2]).AddHandler(EnqueueObject(controller.queue()));
  std::jthread announce([&](std::stop_token stop) {
    while (!stop.stop_requested() && ((*manager)->health_port() == 0 || (*manager)->metrics_port() == 0)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::printf("metrics-port %d\nhealth-port %d\n", (*manager)->metrics_port(), (*manager)->health_port());
    std::fflush(stdout);
  });
  mlscale::Status ran = (*manager)->Run();
  if (!ran.ok()) {
    std::fprintf(stderr, "%s\n", ran.ToString().c_str());
    return 1;
  }
  return 0;
}
