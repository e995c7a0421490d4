// mlscale-operator: one controller manager hosting the mlscale controllers, registered
// by kind (TrainingJob, HyperparameterSweep, InferenceService).
// Flags: see operator_flags.h or --help. Exits 0 after SIGTERM/SIGINT (lease released),
// 1 when it cannot start or loses leadership (a fresh process then stands by), 2 on bad flags.
#include <unistd.h>

#include <csignal>
#include <functional>
#include <iostream>
#include <map>
#include <memory>

#include <spdlog/spdlog.h>

#include "mlscale/controllers/sweep/controller.h"
#include "mlscale/controllers/inference/controller.h"
#include "mlscale/controllers/trainingjob/controller.h"
#include "mlscale/kube/config.h"
#include "mlscale/kube/logging.h"
#include "mlscale/kube/manager.h"
#include "operator_flags.h"

namespace {

using namespace mlscale;
using operator_cmd::OperatorFlags;

// Starts one kind's controller in the manager; the returned object must live as long as it.
using ControllerFactory = std::function<StatusOr<std::shared_ptr<void>>(kube::Manager&, const OperatorFlags&)>;

std::map<std::string, ControllerFactory> ControllerFactories() {
  return {{"TrainingJob", [](kube::Manager& manager, const OperatorFlags& flags) -> StatusOr<std::shared_ptr<void>> {
             controllers::trainingjob::ControllerConfig config;
             config.namespaces = flags.namespaces;
             config.workers = flags.workers;
             config.children.trainer_command = flags.trainer_command;
             config.decide.restart_backoff = flags.restart_backoff;
             config.decide.max_restart_backoff = flags.max_restart_backoff;
             config.decide.start_timeout = flags.start_timeout;
             config.status_writes_per_second = flags.status_write_qps;
             config.progress_interval = flags.progress_interval;
             config.gang.coscheduling_scheduler = flags.gang_scheduler_name;
             config.gang.volcano_scheduler = flags.volcano_scheduler_name;
             config.gang.ttl = flags.gang_discovery_interval;
             auto controller = controllers::trainingjob::TrainingJobController::Register(manager, std::move(config));
             if (!controller.ok()) return controller.status();
             return std::shared_ptr<void>(std::move(*controller));
           }},
          {"HyperparameterSweep", [](kube::Manager& manager, const OperatorFlags& flags) -> StatusOr<std::shared_ptr<void>> {
             controllers::sweep::ControllerConfig config;
             config.namespaces = flags.namespaces;
             config.workers = flags.workers;
             auto controller = controllers::sweep::SweepController::Register(manager, std::move(config));
             if (!controller.ok()) return controller.status();
             return std::shared_ptr<void>(std::move(*controller));
           }},
          {"InferenceService", [](kube::Manager& manager, const OperatorFlags& flags) -> StatusOr<std::shared_ptr<void>> {
             controllers::inference::ControllerConfig config;
             config.namespaces = flags.namespaces;
             config.workers = flags.workers;
             config.children.serve_command = flags.serve_command;
             config.children.router_command = flags.router_command;
             config.children.router_image = flags.router_image;
             auto controller = controllers::inference::InferenceServiceController::Register(manager, std::move(config));
             if (!controller.ok()) return controller.status();
             return std::shared_ptr<void>(std::move(*controller));
           }}};
}

std::string Identity() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  return std::string(host) + "_" + std::to_string(::getpid());
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  StatusOr<OperatorFlags> flags = operator_cmd::ParseOperatorFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags.ok()) {
    std::cerr << "mlscale-operator: " << flags.status().message() << "\n(--help lists the flags)\n";
    return 2;
  }
  if (flags->help) {
    std::cout << flags->usage;
    return 0;
  }
  if (Status s = kube::ConfigureLogging(flags->log_format == "json" ? kube::LogFormat::kJson : kube::LogFormat::kText,
                                        flags->log_level);
      !s.ok()) {
    std::cerr << "mlscale-operator: --log-level: " << s.message() << "\n";
    return 2;
  }
  StatusOr<kube::ClientConfig> client = kube::LoadDefaultConfig(flags->kubeconfig, flags->context);
  if (!client.ok()) {
    spdlog::error("mlscale-operator: {}", client.status().ToString());
    return 1;
  }
  client->qps = flags->kube_api_qps;
  client->burst = flags->kube_api_burst;
  client->user_agent = "mlscale-operator/0.1";

  kube::ManagerOptions options;
  options.client = *client;
  options.metrics_address = flags->metrics_bind_address;
  options.health_probe_address = flags->health_probe_bind_address;
  if (flags->leader_elect) {
    kube::LeaderElectionConfig election;
    election.lease_namespace = flags->leader_election_namespace;
    election.lease_name = flags->leader_election_id;
    election.lease_duration = flags->leader_election_lease_duration;
    election.renew_deadline = flags->leader_election_renew_deadline;
    election.retry_period = flags->leader_election_retry_period;
    election.identity = Identity();
    options.leader_election = election;
  }
  StatusOr<std::unique_ptr<kube::Manager>> manager = kube::Manager::Create(std::move(options));
  if (!manager.ok()) {
    spdlog::error("mlscale-operator: {}", manager.status().ToString());
    return 1;
  }
  const std::map<std::string, ControllerFactory> factories = ControllerFactories();
  std::vector<std::shared_ptr<void>> running;
  for (const std::string& kind : flags->controllers) {
    StatusOr<std::shared_ptr<void>> controller = factories.at(kind)(**manager, *flags);
    if (!controller.ok()) {
      spdlog::error("mlscale-operator: {} controller: {}", kind, controller.status().ToString());
      return 1;
    }
    running.push_back(std::move(*controller));
    spdlog::info("mlscale-operator: {} controller registered", kind);
  }
  Status result = (*manager)->Run();
  if (!result.ok()) {
    spdlog::error("mlscale-operator: {}", result.ToString());
    return 1;
  }
  return 0;
}
