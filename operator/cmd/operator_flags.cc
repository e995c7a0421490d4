#include "operator_flags.h"

#include <algorithm>
#include <sstream>
#include <tuple>

#include <boost/program_options.hpp>

namespace mlscale::operator_cmd {
namespace {

namespace po = boost::program_options;

std::string Join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

// A duration as Go writes them ("15s", "1.5s", "500ms", "2m", "1h"; a bare number is
// seconds), so the lease flags read as controller-runtime's and kube-scheduler's do.
StatusOr<std::chrono::milliseconds> ParseDuration(const std::string& flag, const std::string& text) {
  size_t end = 0;
  double value = 0;
  try {
    value = std::stod(text, &end);
  } catch (const std::exception&) {
    end = 0;
  }
  const std::string unit = text.substr(end);
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  else if (unit == "ms") scale = 1;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  if (end == 0 || scale == 0 || !(value > 0) || value * scale > 86'400'000.0) {
    return InvalidArgument(flag + ": '" + text.substr(0, 32) +
                           "' is not a duration in (0, 24h] (e.g. 15s, 500ms, 1m)");
  }
  return std::chrono::milliseconds(static_cast<long long>(value * scale));
}

}  // namespace

std::vector<std::string> KnownControllers() { return {"TrainingJob", "HyperparameterSweep", "InferenceService"}; }

StatusOr<OperatorFlags> ParseOperatorFlags(const std::vector<std::string>& arguments) {
  OperatorFlags flags;
  double progress_interval_seconds = 1, restart_backoff_seconds = 10, max_restart_backoff_seconds = 360,
         start_timeout_seconds = 120, gang_discovery_seconds = 30;
  std::string lease_duration = "15s", renew_deadline = "10s", retry_period = "2s";
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
      ("leader-election-lease-duration", po::value(&lease_duration)->default_value("15s"),
       "how long a standby waits, after it last saw the Lease change, before it takes over")
      ("leader-election-renew-deadline", po::value(&renew_deadline)->default_value("10s"),
       "how long the leader keeps trying to renew before it stops its controllers (< lease duration)")
      ("leader-election-retry-period", po::value(&retry_period)->default_value("2s"),
       "time between two attempts to acquire or renew the Lease (< renew deadline)")
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
       "when the PodGroup CRD of coscheduling (scheduling.x-k8s.io) is installed: the scheduler of gang pods "
       "(\"\": never make coscheduling PodGroups)")
      ("volcano-scheduler-name", po::value(&flags.volcano_scheduler_name)->default_value("volcano"),
       "when Volcano's PodGroup CRD (scheduling.volcano.sh) is installed (and coscheduling's is not): the "
       "scheduler of gang pods (\"\": never make Volcano PodGroups)")
      ("gang-discovery-interval", po::value(&gang_discovery_seconds)->default_value(30),
       "seconds between two looks at which PodGroup CRD is installed (no restart needed after installing one)")
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
  for (const auto& [flag, text, out] :
       {std::tuple<const char*, const std::string&, std::chrono::milliseconds&>{
            "--leader-election-lease-duration", lease_duration, flags.leader_election_lease_duration},
        {"--leader-election-renew-deadline", renew_deadline, flags.leader_election_renew_deadline},
        {"--leader-election-retry-period", retry_period, flags.leader_election_retry_period}}) {
    StatusOr<std::chrono::milliseconds> duration = ParseDuration(flag, text);
    if (!duration.ok()) return duration.status();
    out = *duration;
  }
  // As the elector requires (leader_election.h): a leader gives up before a standby may
  // take over, and tries more than once before it gives up.
  if (flags.leader_election_renew_deadline >= flags.leader_election_lease_duration) {
    return InvalidArgument("--leader-election-renew-deadline: must be shorter than --leader-election-lease-duration");
  }
  if (flags.leader_election_retry_period >= flags.leader_election_renew_deadline) {
    return InvalidArgument("--leader-election-retry-period: must be shorter than --leader-election-renew-deadline");
  }
  auto milliseconds = [](double seconds) { return std::chrono::milliseconds(static_cast<long long>(seconds * 1000)); };
  for (const auto& [name, seconds] : {std::pair<const char*, double>{"--progress-interval", progress_interval_seconds},
                                      {"--restart-backoff", restart_backoff_seconds},
                                      {"--max-restart-backoff", max_restart_backoff_seconds},
                                      {"--start-timeout", start_timeout_seconds},
                                      {"--gang-discovery-interval", gang_discovery_seconds}}) {
    if (!(seconds > 0) || seconds > 86400) return InvalidArgument(std::string(name) + ": must be in (0, 86400] seconds");
  }
  if (max_restart_backoff_seconds < restart_backoff_seconds) {
    return InvalidArgument("--max-restart-backoff: must be >= --restart-backoff");
  }
  flags.progress_interval = milliseconds(progress_interval_seconds);
  flags.restart_backoff = milliseconds(restart_backoff_seconds);
  flags.max_restart_backoff = milliseconds(max_restart_backoff_seconds);
  flags.start_timeout = milliseconds(start_timeout_seconds);
  flags.gang_discovery_interval = milliseconds(gang_discovery_seconds);
  if (flags.controllers.empty()) flags.controllers = known;
  return flags;
}

}  // namespace mlscale::operator_cmd
