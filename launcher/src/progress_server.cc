// The progress endpoint: a handler on the shared HTTP server (common/http), which bounds
// connections, header and body sizes and every read and write in time.
#include "mlscale/launcher/progress_server.h"

#include <pthread.h>

#include <cctype>
#include <cmath>
#include <csignal>
#include <ctime>
#include <fstream>

#include "mlscale/common/run_token.h"
#include "mlscale/http/server.h"

namespace mlscale::launcher {
namespace {

using nlohmann::json;

constexpr std::string_view kPath = "/v1/progress";
constexpr std::size_t kMaxPhaseBytes = 64;
constexpr std::size_t kMaxEvaluationMetrics = 32;
constexpr std::size_t kMaxMetricNameBytes = 253;  // a sweep's objective metric (api/sweep.h)

http::Response JsonResponse(int status, const json& body) {
  http::Response response;
  response.status = status;
  response.headers.emplace_back("Cache-Control", "no-store");
  response.body = body.dump() + "\n";
  return response;
}

// The token of an "Authorization: Bearer <token>" header (the scheme in any case), or "".
std::string_view BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) return {};
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return {};
  }
  return header.substr(kScheme.size());
}

http::Response Answer(const ProgressServerOptions& options, const http::Request& request) {
  if (request.path != kPath) return JsonResponse(404, {{"error", "not found; the endpoint is GET /v1/progress"}});
  if (request.method != "GET") {
    auto response = JsonResponse(405, {{"error", "only GET"}});
    response.headers.emplace_back("Allow", "GET");
    return response;
  }
  if (!ConstantTimeEquals(BearerToken(request.Header("authorization")), options.token)) {
    auto response = JsonResponse(401, {{"error", "a bearer token (the job's run token) is required"}});
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return response;
  }
  return JsonResponse(200, ProgressDocument(ReadJsonObjectFile(options.progress_file, kMaxProgressFileBytes),
                                            ReadJsonObjectFile(options.result_file, kMaxProgressFileBytes),
                                            std::chrono::system_clock::now()));
}

class Server final : public ProgressServer {
 public:
  explicit Server(std::unique_ptr<http::Server> server) : server_(std::move(server)) {}
  std::uint16_t port() const override { return server_->port(); }

 private:
  std::unique_ptr<http::Server> server_;
};

}  // namespace

std::optional<json> ReadJsonObjectFile(const std::filesystem::path& path, std::size_t max_bytes) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return std::nullopt;
  std::string text(max_bytes + 1, '\0');
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  auto read = static_cast<std::size_t>(file.gcount());
  if (read > max_bytes) return std::nullopt;
  text.resize(read);
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return std::nullopt;
  return parsed;
}

json SanitizeProgress(const json& progress) {
  if (!progress.is_object()) return nullptr;
  json clean = json::object();
  for (const char* key : {"step", "totalSteps", "epoch", "epochs", "loss", "samplesPerSecond", "etaSeconds",
                          "elapsedSeconds"}) {
    auto it = progress.find(key);
    if (it == progress.end() || !it->is_number()) continue;
    if (it->is_number_float() && !std::isfinite(it->get<double>())) continue;
    clean[key] = *it;
  }
  if (auto phase = progress.find("phase"); phase != progress.end() && phase->is_string() &&
                                           phase->get_ref<const std::string&>().size() <= kMaxPhaseBytes) {
    clean["phase"] = *phase;
  }
  // The latest evaluation: an integer step and its finite metrics (at most
  // kMaxEvaluationMetrics, names of at most kMaxMetricNameBytes).
  if (auto evaluation = progress.find("evaluation"); evaluation != progress.end() && evaluation->is_object()) {
    auto step = evaluation->find("step");
    auto metrics = evaluation->find("metrics");
    if (step != evaluation->end() && step->is_number_integer() && metrics != evaluation->end() && metrics->is_object()) {
      json kept = json::object();
      for (const auto& [name, value] : metrics->items()) {
        if (kept.size() >= kMaxEvaluationMetrics || name.size() > kMaxMetricNameBytes || !value.is_number()) continue;
        if (value.is_number_float() && !std::isfinite(value.get<double>())) continue;
        kept[name] = value;
      }
      clean["evaluation"] = {{"step", *step}, {"metrics", std::move(kept)}};
    }
  }
  return clean;
}

json ProgressDocument(const std::optional<json>& progress, const std::optional<json>& result,
                      std::chrono::system_clock::time_point now) {
  return {{"progress", progress ? SanitizeProgress(*progress) : json(nullptr)},
          {"result", result ? *result : json(nullptr)},
          {"time", FormatRfc3339(now)}};
}

std::string FormatRfc3339(std::chrono::system_clock::time_point time) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

StatusOr<std::unique_ptr<ProgressServer>> ProgressServer::Start(const ProgressServerOptions& options) {
  if (options.token.empty()) return InvalidArgument("progress endpoint: no token to require (MLSCALE_RUN_TOKEN)");
  http::ServerOptions server;
  server.address = options.address;
  server.port = options.port;
  server.threads = 1;
  server.max_connections = options.max_connections;
  server.max_header_bytes = options.max_header_bytes;
  server.max_body_bytes = 0;  // GET only: any body is refused (413)
  server.read_timeout = server.idle_timeout = server.write_timeout = options.request_deadline;
  // Signals stay with the main thread (which forwards them to the child): the server's
  // threads inherit a mask that blocks them all.
  sigset_t all, previous;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  auto started = http::Server::Start(server, http::SyncHandler([options](const http::Request& request) {
    return Answer(options, request);
  }));
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (!started.ok()) return started.status().WithContext("progress endpoint");
  return std::unique_ptr<ProgressServer>(std::make_unique<Server>(std::move(*started)));
}

}  // namespace mlscale::launcher
