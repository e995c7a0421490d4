// mlscale-router: the request router of an InferenceService (README.md beside this folder).
//
//   mlscale-router --inference-service NAME [--namespace NS] [--kubeconfig F] [--listen :8080]
//                  [--metrics-listen :9090] [--queue-limit N] [--queue-timeout-ms N] ...
//
// SIGTERM/SIGINT: /readyz turns 503 at once; requests are still routed for --drain-seconds
// (while the Service's endpoints drop this pod), then the server stops accepting, answers
// what is in flight (up to --drain-timeout-seconds) and the process exits 0. Exit 1 on bad
// flags, no Kubernetes configuration, or a port that cannot be bound.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <iostream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include "mlscale/http/server.h"
#include "mlscale/kube/client.h"
#include "mlscale/kube/config.h"
#include "mlscale/kube/logging.h"
#include "mlscale/kube/metrics.h"
#include "mlscale/router/flags.h"
#include "mlscale/router/kube_source.h"
#include "mlscale/router/router.h"

namespace {

using namespace mlscale;

int Fail(const std::string& message) {
  std::fprintf(stderr, "mlscale-router: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  bool help = false;
  auto flags = router::ParseRouterFlags(argc, argv, std::cout, help);
  if (!flags.ok()) return Fail(flags.status().message());
  if (help) return 0;
  auto logging = kube::ConfigureLogging(flags->log_format == "json" ? kube::LogFormat::kJson : kube::LogFormat::kText,
                                        flags->log_level);
  if (!logging.ok()) return Fail("--log-level: " + logging.message());

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto config = kube::LoadDefaultConfig(flags->kubeconfig);
  if (!config.ok()) return Fail("kubernetes configuration: " + config.status().message());
  if (flags->source.namespace_name.empty()) flags->source.namespace_name = config->namespace_name;
  config->user_agent = "mlscale-router/" MLSCALE_VERSION;

  kube::Metrics metrics;
  auto client = kube::Client::Create(*config, &metrics);
  if (!client.ok()) return Fail("kubernetes client: " + client.status().message());
  // With --upstream-threads 0 a request, its exchange with the pod and the answer run on
  // the one event loop that accepted the client; the server then holds the loop's last
  // reference (ServerOptions::io_context), and the router goes before it, below.
  std::shared_ptr<boost::asio::io_context> loop;
  if (flags->upstream.threads == 0) {
    loop = std::make_shared<boost::asio::io_context>();
    flags->server.io_context = loop;
  }
  auto upstream = router::UpstreamClient::Create(flags->upstream, std::move(loop));
  if (!upstream.ok()) return Fail(upstream.status().message());
  auto routing = std::make_unique<router::Router>(std::move(*upstream), metrics, flags->router);
  auto source = std::make_unique<router::KubeSource>(**client, *routing, flags->source, &metrics);

  std::atomic<bool> draining{false};
  auto admin = http::Server::Start(
      flags->metrics, http::SyncHandler([&](const http::Request& request) {
        http::Response response;
        if (request.method != "GET" && request.method != "HEAD") {
          response.status = 405;
          response.body = router::ErrorBody("method " + request.method + " not allowed; use GET");
        } else if (request.path == "/v1/stats") {
          response.body = routing->Stats().dump();
        } else if (request.path == "/metrics") {
          response.content_type = "text/plain; version=0.0.4";
          response.body = routing->RenderMetrics();
        } else if (request.path == "/healthz") {
          response.content_type = "text/plain";
          response.body = "ok";
        } else if (request.path == "/readyz") {
          response.content_type = "text/plain";
          const bool ready = source->HasSynced() && !draining.load();
          response.status = ready ? 200 : 503;
          response.body = ready ? "ok" : draining.load() ? "draining" : "caches not synced";
        } else {
          response.status = 404;
          response.body = router::ErrorBody("no such path: " + request.path);
        }
        return response;
      }));
  if (!admin.ok()) return Fail("--metrics-listen: " + admin.status().message());
  auto server = http::Server::Start(flags->server, [&routing](http::Request&& request, http::Responder responder) {
    routing->Handle(std::move(request), std::move(responder));
  });
  if (!server.ok()) return Fail("--listen: " + server.status().message());
  flags->server.io_context.reset();
  spdlog::info("routing for InferenceService {}/{} on {}:{} (stats and metrics on {}:{}), {} threads",
               flags->source.namespace_name, flags->source.inference_service, flags->server.address,
               (*server)->port(), flags->metrics.address, (*admin)->port(), flags->server.threads);

  int received = 0;
  sigwait(&signals, &received);
  draining = true;
  spdlog::info("received {}: not ready; routing for {} ms more", received == SIGTERM ? "SIGTERM" : "SIGINT",
               flags->drain.count());
  std::this_thread::sleep_for(flags->drain);
  const bool drained = (*server)->Drain(flags->drain_timeout);
  spdlog::info(drained ? "drained: every request answered; exiting"
                       : "drain timeout: closing the connections still open; exiting");
  (*server)->Stop();
  source.reset();   // no more endpoint updates into the router
  routing.reset();  // answers anything still held
  (*admin)->Stop();
  return 0;
}
