// A small controller manager process for the leader-election test: leader election on
// a Lease, a ConfigMap informer and a no-op controller, health endpoint on a free port.
//   manager_probe <kubeconfig> <namespace> <lease-name> <identity>
// Prints "health-port <N>" once serving; exits 0 after SIGTERM.
#include <cstdio>
#include <thread>

#include "mlscale/kube/manager.h"

int main(int argc, char** argv) {
  using namespace mlscale::kube;
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <kubeconfig> <namespace> <lease-name> <identity>\n", argv[0]);
    return 2;
  }
  mlscale::StatusOr<ClientConfig> config = LoadKubeconfig(argv[1]);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 1;
  }
  ManagerOptions options;
  options.client = *config;
  options.health_address = "127.0.0.1:0";
  options.leader_election = LeaderElectionConfig{argv[2], argv[3], argv[4]};
  mlscale::StatusOr<std::unique_ptr<Manager>> manager = Manager::Create(options);
  if (!manager.ok()) {
    std::fprintf(stderr, "%s\n", manager.status().ToString().c_str());
    return 1;
  }
  Controller& controller = (*manager)->AddController(
      {"noop", 1, {}}, [](const std::string&, std::stop_token) -> mlscale::StatusOr<ReconcileResult> { return ReconcileResult{}; });
  (*manager)->informers().Informer(resources::ConfigMaps(), argv[2]).AddHandler(EnqueueObject(controller.queue()));
  std::jthread announce([&](std::stop_token stop) {
    while (!stop.stop_requested() && (*manager)->health_port() == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::printf("health-port %d\n", (*manager)->health_port());
    std::fflush(stdout);
  });
  mlscale::Status ran = (*manager)->Run();
  if (!ran.ok()) {
    std::fprintf(stderr, "%s\n", ran.ToString().c_str());
    return 1;
  }
  return 0;
}
