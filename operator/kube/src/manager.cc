#include "mlscale/kube/manager.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <csignal>
#include <thread>

#include "mlscale/http/server.h"

namespace mlscale::kube {
namespace {

std::atomic<int> g_signal{0};
extern "C" void OnTerminationSignal(int signal) { g_signal.store(signal); }

// Installs the termination handlers for its lifetime; every way out of Run restores
// the default dispositions, so a failed setup never leaves SIGTERM ignored.
class SignalHandlers {
 public:
  explicit SignalHandlers(bool install) : installed_(install) {
    if (!installed_) return;
    g_signal = 0;
    std::signal(SIGTERM, OnTerminationSignal);
    std::signal(SIGINT, OnTerminationSignal);
  }
  ~SignalHandlers() {
    if (!installed_) return;
    std::signal(SIGTERM, SIG_DFL);
    std::signal(SIGINT, SIG_DFL);
    // A signal that arrived meanwhile still ends the process.
    if (int pending = g_signal.exchange(0); pending != 0) std::raise(pending);
  }
  SignalHandlers(const SignalHandlers&) = delete;
  SignalHandlers& operator=(const SignalHandlers&) = delete;
  bool Received() const { return installed_ && g_signal.load() != 0; }

 private:
  bool installed_;
};

// Serves `handle` on "host:port" ("" host: every interface) with the shared server's
// limits: many slow or idle clients cannot keep a probe or a scrape from being answered.
StatusOr<std::unique_ptr<http::Server>> Serve(const std::string& address,
                                              std::function<http::Response(const std::string& path)> handle) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("address '" + address + "' is not host:port");
  http::ServerOptions options;
  options.address = colon == 0 ? "0.0.0.0" : address.substr(0, colon);
  if (options.address.size() > 2 && options.address.front() == '[' && options.address.back() == ']') {
    options.address = options.address.substr(1, options.address.size() - 2);  // [::]:8080
  }
  const std::string port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    return InvalidArgument("address '" + address + "' has no port number (0-65535)");
  }
  options.port = static_cast<uint16_t>(std::stoi(port));
  options.max_connections = 64;
  options.max_body_bytes = 4096;  // GETs only
  options.read_timeout = std::chrono::seconds(5);
  options.write_timeout = std::chrono::seconds(5);
  options.idle_timeout = std::chrono::seconds(30);
  return http::Server::Start(options, http::SyncHandler([handle = std::move(handle)](const http::Request& request) {
    if (request.method != "GET" && request.method != "HEAD") {
      return http::Response{405, "text/plain; charset=utf-8", {{"Allow", "GET"}}, "only GET\n"};
    }
    return handle(request.path);
  }));
}

http::Response Text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8") {
  return http::Response{status, std::move(content_type), {}, std::move(body)};
}

}  // namespace

StatusOr<std::unique_ptr<Manager>> Manager::Create(ManagerOptions options) {
  std::unique_ptr<Manager> manager(new Manager(std::move(options)));
  StatusOr<std::unique_ptr<Client>> client = Client::Create(manager->options_.client, &manager->metrics_);
  if (!client.ok()) return client.status();
  manager->client_ = std::move(*client);
  manager->informers_ = std::make_unique<InformerFactory>(*manager->client_, &manager->metrics_);
  return manager;
}

Manager::Manager(ManagerOptions options) : options_(std::move(options)) {}

Manager::~Manager() {
  for (auto& controller : controllers_) controller->Stop();
  if (informers_) informers_->StopAll();
}

Controller& Manager::AddController(ControllerOptions options, ReconcileFunction reconcile) {
  controllers_.push_back(std::make_unique<Controller>(std::move(options), std::move(reconcile), &metrics_));
  return *controllers_.back();
}

bool Manager::Leading() const { return !options_.leader_election || (elector_ && elector_->IsLeader()); }

bool Manager::Ready() const { return informers_->AllSynced(); }

void Manager::RunControllers(std::stop_token stop) {
  while (!informers_->WaitForSync(std::chrono::seconds(30), stop)) {
    if (stop.stop_requested()) return;
    spdlog::warn("manager: caches not synced after 30 s; still waiting");
  }
  for (auto& controller : controllers_) controller->Start(stop);
  spdlog::info("manager: {} controller(s) running", controllers_.size());
  std::mutex mutex;
  std::condition_variable_any cv;
  std::unique_lock lock(mutex);
  cv.wait(lock, stop, [] { return false; });
  // Stop in place: each worker finishes its current reconcile; queued keys are dropped
  // (the next leader starts from a full list anyway).
  for (auto& controller : controllers_) controller->Stop();
}

Status Manager::Run(std::stop_token stop, bool handle_signals) {
  SignalHandlers signals(handle_signals);
  std::unique_ptr<http::Server> metrics_server;
  std::unique_ptr<http::Server> probe_server;
  if (!options_.metrics_address.empty()) {
    StatusOr<std::unique_ptr<http::Server>> server = Serve(options_.metrics_address, [this](const std::string& path) {
      if (path == "/metrics") return Text(200, metrics_.Render(), "text/plain; version=0.0.4; charset=utf-8");
      return Text(404, "not found\n");
    });
    if (!server.ok()) return server.status().WithContext("metrics address");
    metrics_server = std::move(*server);
    metrics_port_ = metrics_server->port();
  }
  if (!options_.health_probe_address.empty()) {
    StatusOr<std::unique_ptr<http::Server>> server =
        Serve(options_.health_probe_address, [this](const std::string& path) {
          if (path == "/healthz") return Text(200, "ok\n");
          if (path == "/readyz") return Ready() ? Text(200, "ok\n") : Text(503, "caches not synced\n");
          return Text(404, "not found\n");
        });
    if (!server.ok()) return server.status().WithContext("health probe address");
    probe_server = std::move(*server);
    health_port_ = probe_server->port();
  }
  spdlog::info("manager: /metrics on port {}, /healthz and /readyz on port {}", metrics_port_.load(),
               health_port_.load());

  std::stop_source running;  // requested on signal, on `stop`, or when leadership is lost
  std::atomic<bool> lost_leadership{false};
  if (options_.leader_election) {
    StatusOr<std::unique_ptr<LeaderElector>> elector = LeaderElector::Create(
        options_.client, *options_.leader_election,
        LeaderCallbacks{[this](std::stop_token leading) { RunControllers(leading); },
                        [&] {
                          if (!running.stop_requested()) {
                            lost_leadership = true;
                            running.request_stop();
                          }
                        },
                        [](const std::string& identity) { spdlog::info("manager: leader is {}", identity); }},
        &metrics_);
    if (!elector.ok()) return elector.status();
    elector_ = std::move(*elector);
  }
  informers_->StartAll();
  std::jthread work;
  if (elector_) {
    work = std::jthread([this, token = running.get_token()] { elector_->Run(token); });
  } else {
    work = std::jthread([this, token = running.get_token()] { RunControllers(token); });
  }

  while (!running.stop_requested() && !stop.stop_requested() && !signals.Received()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (signals.Received()) spdlog::info("manager: signal {} received; shutting down", g_signal.exchange(0));
  running.request_stop();
  work.join();  // controllers stopped; lease released when we led
  informers_->StopAll();
  if (lost_leadership) return Status(StatusCode::kAborted, "leadership lost; exiting so that a fresh process can stand by");
  return Status::Ok();
}

}  // namespace mlscale::kube
