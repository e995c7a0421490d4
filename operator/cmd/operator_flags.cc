#include "operator_flags.h"

#include <algorithm>
#include <sstream>

#include <boost/program_options.hpp>

namespace mlscale::operator_cmd {
namespace {

namespace po = boost::program_options;

std::string Join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

}  // namespace

std::vector<std::string> KnownControllers() { return {"TrainingJob", "HyperparameterSweep", "InferenceService"}; }

StatusOr<OperatorFlags> ParseOperatorFlags(const std::vector<std::string>& arguments) {
  OperatorFlags flags;
  double progress_interval_seconds = 1, restart_backoff_seconds = 10, max_restart_backoff_seconds = 360,
         start_timeout_seconds = 120;
  po::options_description options("mlscale-operator: runs the mlscale controllers (TrainingJob, HyperparameterSweep, InferenceService) in one manager");
  options.add_options()
      ("help,h", po::bool_switch(&flags.help), "print this help")
      ("kubeconfig", po::value(&flags.kubeconfig), "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
      ("context", po::value(&flags.context), "kubeconfig context (default: the current one)")
      ("namespace", po::value(&flags.namespaces)->composing(),
       "watch only this namespace (repeat for several; default: all namespaces)")
      ("controllers", po::value(&flags.controllers)->multitoken()->composing(),
       ("controllers to run, by kind (default: all of " + Join(KnownControllers()) + ")").c_str())
      ("leader-elect", po::bool_switch(&flags.leader_elect),
       "run controllers only while holding the leader Lease (for several replicas)")
      ("leader-election-namespace", po::value(&flags.leader_election_namespace)->default_value("default"),
       "namespace of the leader Lease")
      ("leader-election-id", po::value(&flags.leader_election_id)->default_value("mlscale-operator"),
       "name of the leader Lease")
      ("metrics-bind-address", po::value(&flags.metrics_bind_address)->default_value(":8080"),
       "address serving /metrics (\":8080\": every interface; port 0: any free port; \"\": none)")
      ("health-probe-bind-address", po::value(&flags.health_probe_bind_address)->default_value(":8081"),
       "address serving /healthz and /readyz (ready once the caches synced, leader or not)")
      ("kube-api-qps", po::value(&flags.kube_api_qps)->default_value(50), "client-side limit of API requests per second")
      ("kube-api-burst", po::value(&flags.kube_api_burst)->default_value(100), "burst above --kube-api-qps")
      ("workers", po::value(&flags.workers)->default_value(4), "concurrent reconciles per controller")
      ("log-level", po::value(&flags.log_level)->default_value("info"), "trace, debug, info, warn, error")
      ("log-format", po::value(&flags.log_format)->default_value("text"), "text or json")
      ("status-write-qps", po::value(&flags.status_write_qps)->default_value(20),
       "budget of live-progress polls and the status writes they cause, across all jobs (per second)")
      ("progress-interval", po::value(&progress_interval_seconds)->default_value(1),
       "seconds between two progress polls of one job, at least")
      ("restart-backoff", po::value(&restart_backoff_seconds)->default_value(10),
       "seconds before the first group restart; doubles with each restart")
      ("max-restart-backoff", po::value(&max_restart_backoff_seconds)->default_value(360), "cap of the restart backoff, seconds")
      ("start-timeout", po::value(&start_timeout_seconds)->default_value(120),
       "seconds a worker may wait on an image or a missing Secret/ConfigMap before its job fails")
      ("trainer-command", po::value(&flags.trainer_command)->default_value("mlscale-train"),
       "the trainer inside the worker image, as mlscale-launch runs it")
      ("gang-scheduler-name", po::value(&flags.gang_scheduler_name)->default_value("scheduler-plugins-scheduler"),
       "when the PodGroup CRD (scheduling.x-k8s.io, coscheduling) is installed: the scheduler of gang pods "
       "(\"\": never make PodGroups)")
      ("serve-command", po::value(&flags.serve_command)->default_value("mlscale-serve"),
       "the model server inside the worker image (InferenceService pods)")
      ("router-command", po::value(&flags.router_command)->default_value("mlscale-router"),
       "the request router inside the worker image (InferenceService routers)")
      ("router-image", po::value(&flags.router_image)->default_value(""),
       "the image of the routers (default: each InferenceService's spec.image)");
  std::ostringstream usage;
  usage << options;
  flags.usage = usage.str();
  try {
    po::variables_map values;
    po::store(po::command_line_parser(arguments).options(options).run(), values);
    po::notify(values);
  } catch (const po::error& e) {
    return InvalidArgument(e.what());
  }
  if (flags.help) return flags;
  const std::vector<std::string> known = KnownControllers();
  for (const std::string& kind : flags.controllers) {
    if (std::find(known.begin(), known.end(), kind) == known.end()) {
      return InvalidArgument("--controllers: unknown kind '" + kind + "' (known: " + Join(known) + ")");
    }
  }
  if (flags.kube_api_qps <= 0) return InvalidArgument("--kube-api-qps: must be > 0");
  if (flags.kube_api_burst < 1) return InvalidArgument("--kube-api-burst: must be >= 1");
  if (flags.workers < 1 || flags.workers > 256) return InvalidArgument("--workers: must be in [1, 256]");
  if (flags.status_write_qps <= 0) return InvalidArgument("--status-write-qps: must be > 0");
  if (flags.log_format != "text" && flags.log_format != "json") return InvalidArgument("--log-format: must be text or json");
  if (flags.leader_elect && (flags.leader_election_namespace.empty() || flags.leader_election_id.empty())) {
    return InvalidArgument("--leader-elect needs --leader-election-namespace and --leader-election-id");
  }
  auto milliseconds = [](double seconds) { return std::chrono::milliseconds(static_cast<long long>(seconds * 1000)); };
  for (const auto& [name, seconds] : {std::pair<const char*, double>{"--progress-interval", progress_interval_seconds},
                                      {"--restart-backoff", restart_backoff_seconds},
                                      {"--max-restart-backoff", max_restart_backoff_seconds},
                                      {"--start-timeout", start_timeout_seconds}}) {
    if (!(seconds > 0) || seconds > 86400) return InvalidArgument(std::string(name) + ": must be in (0, 86400] seconds");
  }
  if (max_restart_backoff_seconds < restart_backoff_seconds) {
    return InvalidArgument("--max-restart-backoff: must be >= --restart-backoff");
  }
  flags.progress_interval = milliseconds(progress_interval_seconds);
  flags.restart_backoff = milliseconds(restart_backoff_seconds);
  flags.max_restart_backoff = milliseconds(max_restart_backoff_seconds);
  flags.start_timeout = milliseconds(start_timeout_seconds);
  if (flags.controllers.empty()) flags.controllers = known;
  return flags;
}

}  // namespace mlscale::operator_cmd
