#include "mlscale/kube/watch.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <random>

#include "mlscale/kube/errors.h"
#include "mlscale/kube/metrics.h"

namespace mlscale::kube {
namespace {

constexpr const char* kRestartsMetric = "mlscale_kube_watch_restarts_total";
constexpr const char* kRelistsMetric = "mlscale_kube_watch_relists_total";

// Sleeps for `duration` or until stop is requested; returns false on stop.
bool SleepFor(std::chrono::milliseconds duration, std::stop_token stop) {
  std::mutex mutex;
  std::condition_variable_any cv;
  std::unique_lock lock(mutex);
  cv.wait_for(lock, stop, duration, [] { return false; });
  return !stop.stop_requested();
}

std::chrono::milliseconds Jittered(std::chrono::milliseconds base) {
  thread_local std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int64_t> jitter(base.count() / 2, base.count());
  return std::chrono::milliseconds(jitter(random));
}

}  // namespace

Watcher::Watcher(Client& client, Resource resource, std::string namespace_name, WatcherOptions options,
                 Handlers handlers, Metrics* metrics)
    : client_(client),
      resource_(std::move(resource)),
      namespace_(std::move(namespace_name)),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      metrics_(metrics) {
  if (metrics_ != nullptr) {
    metrics_->Describe(kRestartsMetric, "Watch requests re-opened after the previous one ended, by resource.");
    metrics_->Describe(kRelistsMetric, "Full relists after a watch expired (410 Gone), by resource.");
  }
}

Watcher::~Watcher() { Stop(); }

void Watcher::Start() {
  if (thread_.joinable()) return;
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void Watcher::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

std::string Watcher::LastResourceVersion() const {
  std::lock_guard lock(mutex_);
  return last_resource_version_;
}

void Watcher::SetLastResourceVersion(std::string version) {
  std::lock_guard lock(mutex_);
  last_resource_version_ = std::move(version);
}

Status Watcher::ListAndDeliver(std::stop_token stop) {
  ListOptions list_options;
  list_options.label_selector = options_.label_selector;
  list_options.field_selector = options_.field_selector;
  list_options.limit = options_.list_page_size;
  std::vector<Object> items;
  std::string version;
  for (bool first = true; first || !list_options.continue_token.empty(); first = false) {
    StatusOr<ObjectList> page = client_.List(resource_, namespace_, list_options);
    if (!page.ok()) return page.status();
    if (stop.stop_requested()) return Status::Ok();
    if (first) version = page->resource_version;
    for (Object& item : page->items) {
      if (options_.transform) options_.transform(item);
      items.push_back(std::move(item));
    }
    list_options.continue_token = page->continue_token;
  }
  SetLastResourceVersion(version);
  if (handlers_.on_list) handlers_.on_list(std::move(items), version);
  if (options_.after_list_delivered_for_testing) options_.after_list_delivered_for_testing();
  synced_ = true;
  return Status::Ok();
}

void Watcher::Run(std::stop_token stop) {
  const Labels labels = {{"resource", resource_.plural}};
  bool need_list = true;
  int failures = 0;
  while (!stop.stop_requested()) {
    Status status;
    if (need_list) {
      status = ListAndDeliver(stop);
      if (status.ok()) need_list = false;
    }
    if (status.ok() && !need_list) {
      WatchOptions watch;
      watch.label_selector = options_.label_selector;
      watch.field_selector = options_.field_selector;
      watch.resource_version = LastResourceVersion();
      watch.timeout_seconds = options_.timeout_seconds;
      int64_t events = 0;
      auto opened = std::chrono::steady_clock::now();
      status = client_.WatchStream(
          resource_, namespace_, watch,
          [&](WatchEvent&& event) {
            ++events;
            std::string version = ResourceVersionOf(event.object);
            if (event.type != WatchEvent::Type::kBookmark && handlers_.on_event) {
              if (options_.transform) options_.transform(event.object);
              handlers_.on_event(std::move(event));
            }
            if (!version.empty()) SetLastResourceVersion(std::move(version));
            return true;
          },
          stop);
      if (stop.stop_requested()) break;
      // A server that ends watches at once without events would otherwise spin us.
      if (status.ok() && events == 0 && std::chrono::steady_clock::now() - opened < std::chrono::seconds(1)) {
        status = Unavailable("the watch ended at once without events");
      }
      if (status.ok() || events > 0) failures = 0;
      ++restarts_;
      if (metrics_ != nullptr) metrics_->Add(kRestartsMetric, labels);
      if (IsGone(status)) {
        spdlog::info("kube: watch of {} expired at version {} ({}); listing again", resource_.plural,
                     LastResourceVersion(), status.message());
        need_list = true;
        ++relists_;
        if (metrics_ != nullptr) metrics_->Add(kRelistsMetric, labels);
        continue;  // relist at once: nothing is wrong with the server
      }
    }
    if (!status.ok()) {
      ++failures;
      auto base = std::min<std::chrono::milliseconds>(options_.max_backoff,
                                                      options_.initial_backoff * (1 << std::min(failures, 16)));
      auto wait = Jittered(base);
      spdlog::warn("kube: {} of {} failed: {}; retrying in {} ms", need_list ? "list" : "watch",
                   resource_.plural, status.ToString(), wait.count());
      if (!SleepFor(wait, stop)) break;
    }
  }
}

}  // namespace mlscale::kube
