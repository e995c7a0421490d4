#include "mlscale/router/flags.h"

#include <thread>

#include <boost/program_options.hpp>

namespace mlscale::router {

Status ParseListenAddress(const std::string& flag, const std::string& text, http::ServerOptions& options) {
  const auto bad = [&] { return InvalidArgument("--" + flag + " '" + text + "': expected HOST:PORT, :PORT or [IPv6]:PORT"); };
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return bad();
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return bad();
  }
  if (port_text.empty() || port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos) {
    return bad();
  }
  const int port = std::stoi(port_text);
  if (port > 65535) return bad();
  options.address = host.empty() ? "0.0.0.0" : host;
  options.port = uint16_t(port);
  return Status::Ok();
}

StatusOr<RouterFlags> ParseRouterFlags(int argc, const char* const* argv, std::ostream& out, bool& help) {
  namespace po = boost::program_options;
  RouterFlags flags;
  std::string listen, metrics_listen;
  int64_t queue_limit = 0, queue_timeout_ms = 0, request_timeout_ms = 0, connect_timeout_ms = 0, max_body = 0,
          max_response_body = 0, max_connections = 0, idle_ms = 0, read_ms = 0;
  int max_attempts = 0, threads = 0, upstream_threads = 0;
  po::options_description options(
      "mlscale-router: the request router of an InferenceService. Forwards every request on --listen to a\n"
      "ready model-server pod of a revision (split by status.traffic, least outstanding requests), holds\n"
      "requests while a revision has no ready pod, and serves /v1/stats, /metrics, /healthz and /readyz\n"
      "on --metrics-listen");
  options.add_options()
      ("help", "this help")
      ("inference-service", po::value(&flags.source.inference_service), "the InferenceService to route for (required)")
      ("namespace", po::value(&flags.source.namespace_name), "its namespace (default: the kubeconfig context's; in a pod: the pod's)")
      ("kubeconfig", po::value(&flags.kubeconfig), "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
      ("listen", po::value(&listen)->default_value(":8080"), "address for requests: HOST:PORT, :PORT or [IPv6]:PORT")
      ("metrics-listen", po::value(&metrics_listen)->default_value(":9090"), "address for /v1/stats, /metrics, /healthz, /readyz")
      ("queue-limit", po::value(&queue_limit)->default_value(1000), "requests held per revision while it has no ready pod; more get 503")
      ("queue-timeout-ms", po::value(&queue_timeout_ms)->default_value(60000), "longest hold before 503")
      ("request-timeout-ms", po::value(&request_timeout_ms)->default_value(120000), "deadline of a request from arrival to response (hold included); then 504")
      ("max-attempts", po::value(&max_attempts)->default_value(5), "sends of one request when pods give no response byte (1: no retry)")
      ("connect-timeout-ms", po::value(&connect_timeout_ms)->default_value(1000), "time to connect to a pod before trying another")
      ("max-request-body-bytes", po::value(&max_body)->default_value(16 << 20), "largest request body (else 413)")
      ("max-response-body-bytes", po::value(&max_response_body)->default_value(64 << 20), "largest response body from a pod (else 502)")
      ("max-connections", po::value(&max_connections)->default_value(4096), "open client connections beyond which new ones get 503")
      ("idle-timeout-ms", po::value(&idle_ms)->default_value(60000), "time a client keep-alive connection may stay idle")
      ("read-timeout-ms", po::value(&read_ms)->default_value(30000), "time for a request to arrive once it has begun")
      ("threads", po::value(&threads)->default_value(0), "threads serving clients (0: one per core)")
      ("upstream-threads", po::value(&upstream_threads)->default_value(0), "threads of their own talking to pods (0: the exchanges run on the client-serving threads, no hand-off per request)")
      ("port-name", po::value(&flags.source.port_name), "EndpointSlice port to send to (default: the slice's first TCP port)")
      ("drain-seconds", po::value<double>()->default_value(5), "after SIGTERM: not ready but serving this long (endpoint propagation)")
      ("drain-timeout-seconds", po::value<double>()->default_value(30), "then: longest wait for requests in flight")
      ("log-level", po::value(&flags.log_level)->default_value("info"), "trace, debug, info, warn, error, critical, off")
      ("log-format", po::value(&flags.log_format)->default_value("text"), "text or json");
  po::variables_map values;
  try {
    po::store(po::parse_command_line(argc, argv, options), values);
    po::notify(values);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string(e.what()) + " (see --help)");
  }
  if (values.count("help")) {
    out << options << "\n";
    help = true;
    return flags;
  }
  if (flags.source.inference_service.empty()) return InvalidArgument("--inference-service is required");
  MLSCALE_RETURN_IF_ERROR(ParseListenAddress("listen", listen, flags.server));
  MLSCALE_RETURN_IF_ERROR(ParseListenAddress("metrics-listen", metrics_listen, flags.metrics));
  if (queue_limit < 0) return InvalidArgument("--queue-limit must be >= 0");
  if (queue_timeout_ms < 0) return InvalidArgument("--queue-timeout-ms must be >= 0");
  if (request_timeout_ms < 1) return InvalidArgument("--request-timeout-ms must be >= 1");
  if (max_attempts < 1 || max_attempts > 100) return InvalidArgument("--max-attempts must be 1..100");
  if (connect_timeout_ms < 1) return InvalidArgument("--connect-timeout-ms must be >= 1");
  if (max_body < 1) return InvalidArgument("--max-request-body-bytes must be >= 1");
  if (max_response_body < 1) return InvalidArgument("--max-response-body-bytes must be >= 1");
  if (max_connections < 1) return InvalidArgument("--max-connections must be >= 1");
  if (idle_ms < 1 || read_ms < 1) return InvalidArgument("--idle-timeout-ms and --read-timeout-ms must be >= 1");
  if (threads < 0 || threads > 256 || upstream_threads < 0 || upstream_threads > 256) {
    return InvalidArgument("--threads and --upstream-threads must be 0..256");
  }
  const double drain = values["drain-seconds"].as<double>(), drain_timeout = values["drain-timeout-seconds"].as<double>();
  if (!(drain >= 0) || !(drain_timeout >= 0)) {
    return InvalidArgument("--drain-seconds and --drain-timeout-seconds must be >= 0");
  }
  if (flags.log_format != "text" && flags.log_format != "json") return InvalidArgument("--log-format must be text or json");
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  flags.router.queue_limit = size_t(queue_limit);
  flags.router.queue_timeout = std::chrono::milliseconds(queue_timeout_ms);
  flags.router.request_timeout = std::chrono::milliseconds(request_timeout_ms);
  flags.router.max_attempts = max_attempts;
  flags.upstream.connect_timeout = std::chrono::milliseconds(connect_timeout_ms);
  flags.upstream.max_response_body_bytes = size_t(max_response_body);
  flags.upstream.threads = upstream_threads;
  flags.server.threads = threads > 0 ? threads : cores;
  flags.server.max_body_bytes = size_t(max_body);
  flags.server.max_connections = size_t(max_connections);
  flags.server.idle_timeout = std::chrono::milliseconds(idle_ms);
  flags.server.read_timeout = std::chrono::milliseconds(read_ms);
  flags.server.server_name = "mlscale-router";
  flags.metrics.threads = 1;
  flags.metrics.max_body_bytes = 4096;
  flags.metrics.server_name = "mlscale-router";
  flags.drain = std::chrono::milliseconds(int64_t(drain * 1000));
  flags.drain_timeout = std::chrono::milliseconds(int64_t(drain_timeout * 1000));
  return flags;
}

}  // namespace mlscale::router
