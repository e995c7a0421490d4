// mlscale-serve: the model server of InferenceService pods (README.md beside this folder).
//
//   mlscale-serve --model-repository DIR | --model NAME=PATH ... [--port 8080] [options]
//
// SIGTERM/SIGINT: /v2/health/ready turns 503 at once; requests (in flight and arriving)
// are served for --drain-seconds so load balancers can stop sending; then the server stops
// accepting, answers what is in flight and exits 0. Exit 1 on bad flags or when the port
// cannot be bound.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>
#include <thread>

#include <boost/program_options.hpp>

#include "mlscale/http/server.h"
#include "mlscale/serve/model_repository.h"
#include "mlscale/serve/service.h"

namespace {

using namespace mlscale;
using namespace mlscale::serve;

void Log(const std::string& line) {
  static std::mutex mutex;
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
  std::lock_guard lock(mutex);
  std::fprintf(stderr, "%s mlscale-serve: %s\n", stamp, line.c_str());
  std::fflush(stderr);
}

// "name=value" -> (name, value); error names the flag.
StatusOr<std::pair<std::string, std::string>> SplitAssignment(const std::string& flag, const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return InvalidArgument("--" + flag + " '" + text + "': expected NAME=VALUE");
  }
  return std::pair{text.substr(0, eq), text.substr(eq + 1)};
}

StatusOr<int64_t> ParseCount(const std::string& flag, const std::string& text, int64_t min) {
  try {
    size_t used = 0;
    long long value = std::stoll(text, &used);
    if (used == text.size() && value >= min) return int64_t(value);
  } catch (const std::exception&) {
  }
  return InvalidArgument("--" + flag + ": '" + text + "' is not an integer >= " + std::to_string(min));
}

// "SIZE:DELAY_US" for --model-batching.
StatusOr<BatchingOptions> ParseBatching(const std::string& text, BatchingOptions base) {
  auto colon = text.find(':');
  auto size = ParseCount("model-batching", text.substr(0, colon), 1);
  if (!size.ok()) return size.status();
  base.max_batch_size = int(*size);
  if (colon != std::string::npos) {
    auto delay = ParseCount("model-batching", text.substr(colon + 1), 0);
    if (!delay.ok()) return delay.status();
    base.max_queue_delay = std::chrono::microseconds(*delay);
  }
  return base;
}

struct Flags {
  RepositoryOptions repository;
  http::ServerOptions server;
  double drain_seconds = 5, drain_timeout_seconds = 30, poll_seconds = 2;
};

StatusOr<Flags> ParseFlags(int argc, char** argv, bool& help) {
  namespace po = boost::program_options;
  Flags flags;
  std::vector<std::string> models, pins, model_batching;
  int64_t max_body = 0, max_header = 0, max_connections = 0, read_ms = 0, idle_ms = 0, write_ms = 0, port = 0;
  int64_t max_batch = 1, queue_delay_us = 500, max_queued = 8192, batch_threads = 1;
  int threads = 0;
  po::options_description options(
      "mlscale-serve: serves mlscale-mlp models over the Open Inference Protocol v2 (REST) and KServe v1.\n"
      "Models: --model-repository DIR (DIR/<model>/<version>/model.json) and/or --model NAME=PATH");
  options.add_options()
      ("help", "this help")
      ("model-repository", po::value(&flags.repository.repository), "folder of model folders, each with numbered version folders")
      ("model", po::value(&models)->composing(), "NAME=PATH: a model folder (numbered versions) or one artifact folder (version 1); repeatable")
      ("pin", po::value(&pins)->composing(), "NAME=VERSION: serve this version instead of the newest; repeatable")
      ("address", po::value(&flags.server.address)->default_value("0.0.0.0"), "address to listen on")
      ("port", po::value(&port)->default_value(8080), "port to listen on (0: any free one, printed)")
      ("threads", po::value(&threads)->default_value(0), "HTTP threads (0: one per core)")
      ("max-batch-size", po::value(&max_batch)->default_value(1), "dynamic batching: rows per forward pass for every model (1: off)")
      ("max-queue-delay-us", po::value(&queue_delay_us)->default_value(500), "dynamic batching: longest wait for a batch to fill, microseconds")
      ("max-queued-rows", po::value(&max_queued)->default_value(8192), "dynamic batching: rows queued per model beyond which requests get 503")
      ("batch-threads", po::value(&batch_threads)->default_value(1), "dynamic batching: batches of one model computed at once")
      ("model-batching", po::value(&model_batching)->composing(), "NAME=SIZE[:DELAY_US]: batching for one model (SIZE 1: off); repeatable")
      ("max-body-bytes", po::value(&max_body)->default_value(4 << 20), "largest request body accepted (else 413)")
      ("max-header-bytes", po::value(&max_header)->default_value(16 << 10), "largest request header accepted (else 431)")
      ("max-connections", po::value(&max_connections)->default_value(1024), "open connections beyond which new ones get 503")
      ("read-timeout-ms", po::value(&read_ms)->default_value(10000), "time for a request to arrive once it has begun")
      ("idle-timeout-ms", po::value(&idle_ms)->default_value(60000), "time a keep-alive connection may stay idle")
      ("write-timeout-ms", po::value(&write_ms)->default_value(10000), "time for a client to take a response")
      ("poll-seconds", po::value(&flags.poll_seconds)->default_value(2), "how often the model folders are checked for new versions (0: never)")
      ("drain-seconds", po::value(&flags.drain_seconds)->default_value(5), "after SIGTERM: keep serving (not ready) this long")
      ("drain-timeout-seconds", po::value(&flags.drain_timeout_seconds)->default_value(30), "then: longest wait for requests in flight");
  po::variables_map values;
  try {
    po::store(po::parse_command_line(argc, argv, options), values);
    po::notify(values);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string(e.what()) + " (see --help)");
  }
  if (values.count("help")) {
    std::cout << options << "\n";
    help = true;
    return flags;
  }
  for (const auto& text : models) {
    auto pair = SplitAssignment("model", text);
    if (!pair.ok()) return pair.status();
    flags.repository.models.push_back({pair->first, pair->second});
  }
  for (const auto& text : pins) {
    auto pair = SplitAssignment("pin", text);
    if (!pair.ok()) return pair.status();
    auto version = ParseCount("pin", pair->second, 0);
    if (!version.ok()) return version.status();
    flags.repository.pinned_versions[pair->first] = *version;
  }
  if (max_batch < 1) return InvalidArgument("--max-batch-size must be >= 1");
  if (queue_delay_us < 0) return InvalidArgument("--max-queue-delay-us must be >= 0");
  if (max_queued < 1) return InvalidArgument("--max-queued-rows must be >= 1");
  if (batch_threads < 1 || batch_threads > 64) return InvalidArgument("--batch-threads must be 1..64");
  flags.repository.batching.max_batch_size = int(max_batch);
  flags.repository.batching.max_queue_delay = std::chrono::microseconds(queue_delay_us);
  flags.repository.batching.max_queued_rows = max_queued;
  flags.repository.batching.threads = int(batch_threads);
  for (const auto& text : model_batching) {
    auto pair = SplitAssignment("model-batching", text);
    if (!pair.ok()) return pair.status();
    auto batching = ParseBatching(pair->second, flags.repository.batching);
    if (!batching.ok()) return batching.status();
    flags.repository.model_batching[pair->first] = *batching;
  }
  if (port < 0 || port > 65535) return InvalidArgument("--port must be 0..65535");
  if (max_body < 1 || max_header < 256 || max_connections < 1 || read_ms < 1 || idle_ms < 1 || write_ms < 1) {
    return InvalidArgument("--max-body-bytes, --max-connections and the timeouts must be >= 1, --max-header-bytes >= 256");
  }
  if (flags.drain_seconds < 0 || flags.drain_timeout_seconds < 0 || flags.poll_seconds < 0) {
    return InvalidArgument("--drain-seconds, --drain-timeout-seconds and --poll-seconds must be >= 0");
  }
  flags.server.port = uint16_t(port);
  flags.server.threads = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
  flags.server.max_body_bytes = size_t(max_body);
  flags.server.max_header_bytes = size_t(max_header);
  flags.server.max_connections = size_t(max_connections);
  flags.server.read_timeout = std::chrono::milliseconds(read_ms);
  flags.server.idle_timeout = std::chrono::milliseconds(idle_ms);
  flags.server.write_timeout = std::chrono::milliseconds(write_ms);
  flags.server.server_name = "mlscale-serve";
  return flags;
}

// Calls repository.Refresh() every `period` until destroyed.
class Poller {
 public:
  Poller(ModelRepository& repository, std::chrono::milliseconds period)
      : thread_([this, &repository, period] {
          std::unique_lock lock(mutex_);
          while (!wake_.wait_for(lock, period, [this] { return stopping_; })) {
            lock.unlock();
            repository.Refresh();
            lock.lock();
          }
        }) {}
  ~Poller() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  bool help = false;
  auto flags = ParseFlags(argc, argv, help);
  if (!flags.ok()) {
    std::fprintf(stderr, "mlscale-serve: %s\n", flags.status().message().c_str());
    return 1;
  }
  if (help) return 0;

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ServeMetrics metrics;
  ModelRepository repository(flags->repository, metrics, Log);
  if (Status ok = repository.CheckOptions(); !ok.ok()) {
    std::fprintf(stderr, "mlscale-serve: %s\n", ok.message().c_str());
    return 1;
  }
  repository.Refresh();
  if (Status ok = repository.CheckOptions(); !ok.ok()) {
    std::fprintf(stderr, "mlscale-serve: %s\n", ok.message().c_str());
    return 1;
  }
  for (const auto& status : repository.Statuses()) {
    if (status.serving_version < 0) Log("model " + status.name + " is not ready: " + status.error);
  }

  InferenceService service(repository, metrics, MLSCALE_VERSION);
  auto server = http::Server::Start(flags->server, [&service](http::Request&& request, http::Responder responder) {
    service.Handle(std::move(request), std::move(responder));
  });
  if (!server.ok()) {
    std::fprintf(stderr, "mlscale-serve: %s\n", server.status().message().c_str());
    return 1;
  }
  Log("listening on " + flags->server.address + ":" + std::to_string((*server)->port()) + " (" +
      std::to_string(flags->server.threads) + " threads)");
  std::unique_ptr<Poller> poller;
  if (flags->poll_seconds > 0) {
    poller = std::make_unique<Poller>(repository, std::chrono::milliseconds(int64_t(flags->poll_seconds * 1000)));
  }

  int received = 0;
  sigwait(&signals, &received);
  service.SetDraining();
  Log(std::string("received ") + (received == SIGTERM ? "SIGTERM" : "SIGINT") + ": not ready; serving for " +
      std::to_string(flags->drain_seconds) + " s more");
  std::this_thread::sleep_for(std::chrono::milliseconds(int64_t(flags->drain_seconds * 1000)));
  poller.reset();
  const bool drained = (*server)->Drain(std::chrono::milliseconds(int64_t(flags->drain_timeout_seconds * 1000)));
  Log(drained ? "drained: every request answered; exiting"
              : "drain timeout: closing the connections still open; exiting");
  (*server)->Stop();
  return 0;
}
