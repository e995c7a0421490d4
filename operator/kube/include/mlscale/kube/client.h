// A Kubernetes API client: every verb on any resource, objects as JSON. Thread-safe;
// one Client is shared by everything in a process. Requests pass a client-side rate
// limiter (ClientConfig::qps/burst); transient failures (connection errors, 429 with
// Retry-After, 5xx) are retried with exponential backoff up to ClientConfig::max_retries.
// Every call takes CallOptions (a stop token and a deadline). Listed items carry
// apiVersion and kind (the API server omits them). Failures are Status values (see
// errors.h); response bytes are never quoted in them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/kube/config.h"
#include "mlscale/kube/resource.h"
#include "mlscale/kube/metrics.h"

namespace mlscale::kube {


struct ListOptions {
  std::string label_selector{};   // "app=x,tier!=db"
  std::string field_selector{};   // "spec.nodeName=n1"
  int64_t limit = 0;            // page size; 0 = no paging
  std::string continue_token{};   // from the previous page
  std::string resource_version{}; // "" = most recent (quorum read); "0" = any cached
};

struct ObjectList {
  std::vector<Object> items;
  std::string resource_version{};  // of the list: start a watch here
  std::string continue_token{};    // "" on the last page
};

enum class PatchType {
  kMerge,      // application/merge-patch+json (RFC 7386)
  kJson,       // application/json-patch+json (RFC 6902), body is an array of operations
  kStrategic,  // application/strategic-merge-patch+json (built-in kinds only)
  kApply,      // server-side apply (application/apply-patch+yaml); needs a field manager
};

struct PatchOptions {
  std::string field_manager{};  // required for kApply
  bool force = false;         // kApply: take ownership of conflicting fields
  std::string subresource{};    // "status", "scale" or ""
};

enum class PropagationPolicy { kDefault, kForeground, kBackground, kOrphan };

struct DeleteOptions {
  PropagationPolicy propagation = PropagationPolicy::kDefault;
  std::optional<int64_t> grace_period_seconds{};
  std::string precondition_uid{};               // delete only this incarnation
  std::string precondition_resource_version{};  // delete only this version
};

struct WatchOptions {
  std::string label_selector{};
  std::string field_selector{};
  std::string resource_version{};      // start after this version ("" = now)
  bool allow_bookmarks = true;       // server sends BOOKMARK events with fresh versions
  int timeout_seconds = 300;         // server ends the stream after this; 0 = server default
};

// What bounds one call, as a Go context does: `stop` abandons it (kCancelled) and
// `deadline` too (kDeadlineExceeded), including the wait for the rate limiter and any
// retries. Unset: only ClientConfig::request_timeout per attempt.
struct CallOptions {
  std::stop_token stop{};
  std::optional<std::chrono::steady_clock::time_point> deadline{};
  // A CallOptions with the deadline `timeout` from now.
  static CallOptions Within(std::chrono::milliseconds timeout, std::stop_token stop = {}) {
    return {std::move(stop), std::chrono::steady_clock::now() + timeout};
  }
};

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark };
  Type type;
  Object object;  // for kBookmark only metadata.resourceVersion is meaningful
};
std::string_view WatchEventTypeName(WatchEvent::Type type);

class Client {
 public:
  // Builds a client for `config`. `metrics` (optional, must outlive the client) counts
  // requests by verb and HTTP code. Errors: unreadable credentials, bad server URL.
  static StatusOr<std::unique_ptr<Client>> Create(const ClientConfig& config,
                                                  Metrics* metrics = nullptr);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // `namespace_name` is ignored for cluster-scoped resources. `subresource` "" or
  // "status"/"scale"/... addresses a subresource of the object.
  StatusOr<Object> Get(const Resource& resource, const std::string& namespace_name,
                       const std::string& name, const std::string& subresource = "",
                       const CallOptions& call = {});
  // One page (or everything when options.limit == 0). namespace "" = all namespaces.
  StatusOr<ObjectList> List(const Resource& resource, const std::string& namespace_name,
                            const ListOptions& options = {}, const CallOptions& call = {});
  // Every page, following continue tokens; the result's resource_version is the first page's.
  StatusOr<ObjectList> ListAll(const Resource& resource, const std::string& namespace_name,
                               ListOptions options = {}, const CallOptions& call = {});
  // The namespace comes from the object's metadata when `namespace_name` is "".
  StatusOr<Object> Create(const Resource& resource, const std::string& namespace_name,
                          const Object& object, const CallOptions& call = {});
  // POST `body` to a subresource of an object, e.g. a TokenRequest to
  // serviceaccounts/<name>/token; returns what the server answers.
  StatusOr<Object> CreateSubresource(const Resource& resource, const std::string& namespace_name,
                                     const std::string& name, const std::string& subresource,
                                     const Object& body, const CallOptions& call = {});
  // PUT with the object's metadata.resourceVersion: a stale version fails with kConflict.
  StatusOr<Object> Update(const Resource& resource, const Object& object,
                          const std::string& subresource = "", const CallOptions& call = {});
  StatusOr<Object> UpdateStatus(const Resource& resource, const Object& object, const CallOptions& call = {}) {
    return Update(resource, object, "status", call);
  }
  StatusOr<Object> Patch(const Resource& resource, const std::string& namespace_name,
                         const std::string& name, PatchType type, const Object& patch,
                         const PatchOptions& options = {}, const CallOptions& call = {});
  // Returns OK when deleted or deletion started; NotFound when absent.
  Status Delete(const Resource& resource, const std::string& namespace_name,
                const std::string& name, const DeleteOptions& options = {}, const CallOptions& call = {});

  // Runs one watch request and calls `on_event` for each event as it arrives, until the
  // server ends the stream (returns OK: resume from the last version seen), `stop` is
  // requested (returns OK), or an error (a 410 arrives as IsGone). `on_event` returning
  // false ends the watch. Use Watcher (watch.h) for a watch that never stops.
  Status WatchStream(const Resource& resource, const std::string& namespace_name,
                     const WatchOptions& options,
                     const std::function<bool(WatchEvent&&)>& on_event,
                     std::stop_token stop = {});

  // Read-modify-write with optimistic concurrency: reads the object, applies `mutate`
  // (which returns false to skip writing), updates; on kConflict re-reads and tries
  // again, up to `attempts` times. Returns the written (or unchanged) object.
  StatusOr<Object> UpdateWithRetry(const Resource& resource, const std::string& namespace_name,
                                   const std::string& name,
                                   const std::function<bool(Object&)>& mutate,
                                   const std::string& subresource = "", int attempts = 10,
                                   const CallOptions& call = {});

  // GETs a text stream (e.g. pods/<name>/log?follow=true) and calls `on_line` with each
  // line (without its newline) as it arrives, until the body ends (OK), `on_line` returns
  // false or `stop` is requested (OK). `path_and_query` is a resource path
  // (Resource::Path(...)) with its query already encoded. A line longer than
  // ClientConfig::max_watch_line_bytes ends it with kResourceExhausted, as does a reader
  // more than ClientConfig::max_watch_backlog_bytes behind the server; an HTTP error
  // is a Status carrying the server's message.
  Status StreamLines(const std::string& path_and_query, const std::function<bool(std::string_view)>& on_line,
                     std::stop_token stop = {});

  const ClientConfig& config() const { return config_; }
  // Requests sent so far (after rate limiting, including retries).
  int64_t requests_sent() const;

 private:
  struct State;  // transport, rate limiter, token source, counters
  explicit Client(std::unique_ptr<State> state);
  // One logical request: rate limit, send, retry transient failures, map errors.
  StatusOr<Object> Call(std::string_view verb, const std::string& method, const std::string& path,
                        const std::string& content_type, const std::string& body, const CallOptions& call);

  ClientConfig config_;
  std::unique_ptr<State> state_;
};

// Whether the CustomResourceDefinition `name` (e.g. "podgroups.scheduling.x-k8s.io") is
// installed: true, false (404), or the error (e.g. PermissionDenied) when it cannot be told.
// Controllers of optional resources ask this before starting an informer that would never sync.
StatusOr<bool> CustomResourceDefinitionInstalled(Client& client, const std::string& name,
                                                 const CallOptions& options = CallOptions::Within(std::chrono::seconds(10)));

}  // namespace mlscale::kube
