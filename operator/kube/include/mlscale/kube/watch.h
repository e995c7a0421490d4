// A watch that never stops: lists, then watches from the list's resourceVersion; on a
// disconnect or server timeout it resumes from the last version seen (bookmarks keep it
// fresh); on 410 Gone it lists again and hands over the full new state; on any other
// error it retries with jittered exponential backoff, logging each failure. Events and
// lists are delivered on the watcher's own thread, in order.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mlscale/kube/client.h"

namespace mlscale::kube {

struct WatcherOptions {
  std::string label_selector{};
  std::string field_selector{};
  int64_t list_page_size = 500;
  int timeout_seconds = 300;  // server-side timeout of each watch request
  // Applied to every listed or watched object before it is delivered, page by page, so
  // that a large list never exists untransformed all at once (see TrimPod).
  std::function<void(Object&)> transform{};
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{10'000};
  // Fault-injection seam for tests only: called on the watcher's thread after each list
  // was delivered (on_list returned) and before HasSynced() turns true, so a test can
  // act in that window deterministically (e.g. add an informer handler there).
  std::function<void()> after_list_delivered_for_testing{};
};

class Watcher {
 public:
  struct Handlers {
    // The complete current state, first at start and again after each relist. The
    // receiver replaces what it had (objects missing from `items` were deleted).
    std::function<void(std::vector<Object>&& items, const std::string& resource_version)> on_list;
    // Added, Modified or Deleted (bookmarks are consumed by the watcher).
    std::function<void(WatchEvent&& event)> on_event;
  };

  // `client` and `metrics` (optional; counts watch restarts and relists) must outlive
  // the watcher. Nothing happens before Start().
  Watcher(Client& client, Resource resource, std::string namespace_name, WatcherOptions options,
          Handlers handlers, Metrics* metrics = nullptr);
  ~Watcher();  // Stop()s
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  void Start();
  // Ends the current request and joins the thread. Idempotent.
  void Stop();

  bool HasSynced() const { return synced_.load(); }  // the first list was delivered
  std::string LastResourceVersion() const;
  int64_t Restarts() const { return restarts_.load(); }  // watch requests re-opened
  int64_t Relists() const { return relists_.load(); }    // lists after the first (410s)
  const Resource& resource() const { return resource_; }

 private:
  void Run(std::stop_token stop);
  Status ListAndDeliver(std::stop_token stop);
  void SetLastResourceVersion(std::string version);

  Client& client_;
  Resource resource_;
  std::string namespace_{};
  WatcherOptions options_;
  Handlers handlers_;
  Metrics* metrics_;
  mutable std::mutex mutex_;
  std::string last_resource_version_{};
  std::atomic<bool> synced_{false};
  std::atomic<int64_t> restarts_{0};
  std::atomic<int64_t> relists_{0};
  std::jthread thread_;
};

}  // namespace mlscale::kube
