#include "mlscale/kube/client.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "http_transport.h"
#include "mlscale/kube/errors.h"
#include "mlscale/kube/metrics.h"
#include "mlscale/kube/rate_limiter.h"
#include "query.h"

namespace mlscale::kube {
namespace {

constexpr const char* kRequestsMetric = "mlscale_kube_api_requests_total";
constexpr const char* kLatencyMetric = "mlscale_kube_api_request_duration_seconds";

std::string_view PatchContentType(PatchType type) {
  switch (type) {
    case PatchType::kMerge: return "application/merge-patch+json";
    case PatchType::kJson: return "application/json-patch+json";
    case PatchType::kStrategic: return "application/strategic-merge-patch+json";
    case PatchType::kApply: return "application/apply-patch+yaml";
  }
  return "application/merge-patch+json";
}

std::string_view PropagationName(PropagationPolicy policy) {
  switch (policy) {
    case PropagationPolicy::kForeground: return "Foreground";
    case PropagationPolicy::kBackground: return "Background";
    case PropagationPolicy::kOrphan: return "Orphan";
    case PropagationPolicy::kDefault: break;
  }
  return "";
}

// Exponential backoff with full jitter: uniform in [base/2, base], base = 100 ms * 2^attempt, capped.
std::chrono::milliseconds Backoff(int attempt) {
  thread_local std::mt19937 random(std::random_device{}());
  int64_t base = std::min<int64_t>(100LL << std::min(attempt, 10), 10'000);
  std::uniform_int_distribution<int64_t> jitter(base / 2, base);
  return std::chrono::milliseconds(jitter(random));
}

// Retry-After in seconds (the API server sends seconds, never a date); 0 when absent.
int RetryAfterSeconds(const std::string& header) {
  if (header.empty()) return 0;
  try {
    return std::clamp(std::stoi(header), 0, 60);
  } catch (const std::exception&) {
    return 0;
  }
}

bool IsReadVerb(std::string_view verb) { return verb == "get" || verb == "list"; }

// " <name>" of the object a POST creates (its path names only the collection), for the
// trace log; "" otherwise. Parses the body: only called when tracing.
std::string TraceSubject(const std::string& method, const std::string& body) {
  if (method != "POST" || body.empty()) return "";
  const Object object = Object::parse(body, nullptr, /*allow_exceptions=*/false);
  const std::string name = object.is_object() ? NameOf(object) : "";
  return name.empty() ? "" : " " + name;
}

StatusOr<Object> ParseBody(const std::string& body, const std::string& what) {
  Object doc = Object::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    // The bytes are not quoted: they may be (part of) a Secret.
    return DataLoss("malformed JSON in the response to " + what + " (" + std::to_string(body.size()) + " bytes)");
  }
  if (!doc.is_object()) return DataLoss("the response to " + what + " is not a JSON object");
  return doc;
}

// Checks that PEM text holds what it should, so that bad credentials fail at start
// with a clear error rather than at the first TLS handshake.
Status CheckPem(const std::string& pem, bool is_key, const std::string& what) {
  if (pem.empty()) return Status::Ok();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                &BIO_free);
  if (is_key) {
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (key == nullptr) return InvalidArgument(what + " is not a PEM private key");
    EVP_PKEY_free(key);
  } else {
    X509* certificate = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (certificate == nullptr) return InvalidArgument(what + " is not a PEM certificate");
    X509_free(certificate);
  }
  return Status::Ok();
}

}  // namespace

// Bearer tokens from a file are re-read when the file changes (projected tokens rotate).
class TokenSource {
 public:
  explicit TokenSource(const ClientConfig& config) : token_(config.bearer_token), file_(config.token_file) {}
  std::string Token() {
    if (file_.empty()) return token_;
    struct stat info {};
    std::lock_guard lock(mutex_);
    if (stat(file_.c_str(), &info) == 0 &&
        (info.st_mtim.tv_sec != mtime_.tv_sec || info.st_mtim.tv_nsec != mtime_.tv_nsec ||
         info.st_ino != inode_)) {
      std::ifstream in(file_);
      std::ostringstream text;
      text << in.rdbuf();
      std::string token = text.str();
      while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
        token.pop_back();
      }
      if (!token.empty()) {
        token_ = token;
        mtime_ = info.st_mtim;
        inode_ = info.st_ino;
      }
    }
    return token_;
  }

 private:
  std::mutex mutex_;
  std::string token_;
  std::string file_;
  timespec mtime_{};
  ino_t inode_ = 0;
};

struct Client::State {
  std::unique_ptr<HttpTransport> transport;
  RateLimiter limiter;
  TokenSource tokens;
  Metrics* metrics;
  std::atomic<int64_t> requests_sent{0};

  State(const ClientConfig& config, std::unique_ptr<HttpTransport> http, Metrics* registry)
      : transport(std::move(http)), limiter(config.qps, config.burst), tokens(config), metrics(registry) {}

  HttpRequest Request(const ClientConfig& config, const std::string& method, const std::string& path,
                      const std::string& content_type, const std::string& body) {
    HttpRequest request{method, path, {{"Accept", "application/json"}, {"User-Agent", config.user_agent}},
                        content_type, body};
    std::string token = tokens.Token();
    if (!token.empty()) request.headers.emplace_back("Authorization", "Bearer " + token);
    return request;
  }

  void Record(std::string_view verb, int code, std::chrono::steady_clock::duration elapsed) {
    ++requests_sent;
    if (metrics == nullptr) return;
    std::string code_label = code == 0 ? "error" : std::to_string(code);
    metrics->Add(kRequestsMetric, {{"verb", std::string(verb)}, {"code", code_label}});
    metrics->Observe(kLatencyMetric, {{"verb", std::string(verb)}},
                     std::chrono::duration<double>(elapsed).count());
  }
};

StatusOr<std::unique_ptr<Client>> Client::Create(const ClientConfig& config, Metrics* metrics) {
  MLSCALE_RETURN_IF_ERROR(CheckPem(config.ca_pem, false, "the certificate authority"));
  MLSCALE_RETURN_IF_ERROR(CheckPem(config.client_certificate_pem, false, "the client certificate"));
  MLSCALE_RETURN_IF_ERROR(CheckPem(config.client_key_pem, true, "the client key"));
  if (config.qps <= 0 || config.burst < 1) return InvalidArgument("qps must be > 0 and burst >= 1");
  StatusOr<std::unique_ptr<HttpTransport>> transport = MakeCpprestTransport(config);
  if (!transport.ok()) return transport.status();
  if (metrics != nullptr) {
    metrics->Describe(kRequestsMetric, "API requests sent, by verb and HTTP code (error: no response).");
    metrics->Describe(kLatencyMetric, "API request latency in seconds, by verb.");
  }
  auto state = std::make_unique<State>(config, std::move(*transport), metrics);
  std::unique_ptr<Client> client(new Client(std::move(state)));
  client->config_ = config;
  return client;
}

Client::Client(std::unique_ptr<State> state) : state_(std::move(state)) {}
Client::~Client() = default;

int64_t Client::requests_sent() const { return state_->requests_sent.load(); }

StatusOr<Object> Client::Call(std::string_view verb, const std::string& method, const std::string& path,
                              const std::string& content_type, const std::string& body, const CallOptions& call) {
  using Clock = std::chrono::steady_clock;
  const std::string what = method + " " + path;
  auto cut_short = [&]() -> Status {
    if (call.stop.stop_requested()) return Cancelled(what + ": cancelled");
    if (call.deadline && Clock::now() >= *call.deadline) return DeadlineExceeded(what + ": deadline exceeded");
    return Status::Ok();
  };
  // Sleeps interruptibly, never past the deadline; false when cut short.
  auto wait = [&](Clock::duration duration) {
    Clock::time_point until = Clock::now() + duration;
    if (call.deadline && *call.deadline < until) return false;  // would outlast the deadline
    std::mutex mutex;
    std::condition_variable_any cv;
    std::unique_lock lock(mutex);
    cv.wait_until(lock, call.stop, until, [] { return false; });
    return !call.stop.stop_requested();
  };
  Status last;
  for (int attempt = 0;; ++attempt) {
    MLSCALE_RETURN_IF_ERROR(cut_short());
    if (std::chrono::nanoseconds throttled = state_->limiter.Reserve(); throttled.count() > 0 && !wait(throttled)) {
      Status short_status = cut_short();
      return short_status.ok() ? DeadlineExceeded(what + ": the client rate limit would outlast the deadline")
                               : short_status;
    }
    HttpRequest request = state_->Request(config_, method, path, content_type, body);
    auto started = Clock::now();
    Clock::time_point attempt_deadline = started + config_.request_timeout;
    if (call.deadline) attempt_deadline = std::min(attempt_deadline, *call.deadline);
    StatusOr<HttpResponse> response = state_->transport->Send(request, attempt_deadline, call.stop);
    const Clock::duration elapsed = Clock::now() - started;
    state_->Record(verb, response.ok() ? response->status : 0, elapsed);
    // A request timeline (--log-level trace; tests/bench/scale/timeline.py reads these lines).
    if (spdlog::should_log(spdlog::level::trace)) {
      spdlog::trace("kube: {}{} -> {} in {:.1f} ms", what, TraceSubject(method, body), response.ok() ? response->status : 0,
                    std::chrono::duration<double, std::milli>(elapsed).count());
    }

    std::chrono::milliseconds backoff = Backoff(attempt);
    if (!response.ok()) {
      last = response.status();
      if (last.code() == StatusCode::kCancelled || last.code() == StatusCode::kResourceExhausted) return last;
      // A mutation may have reached the server before the connection broke; only
      // reads, and requests that never connected, are safe to repeat.
      bool never_sent = last.message().rfind(kNotSent, 0) == 0;
      if (!IsReadVerb(verb) && !never_sent) return last;
    } else if (response->status >= 200 && response->status < 300) {
      return ParseBody(response->body, what);
    } else {
      last = StatusFromHttp(response->status, response->body).WithContext(what);
      int retry_after = RetryAfterSeconds(response->retry_after);
      bool retryable = response->status == 429 ||
                       (response->status >= 500 &&
                        (IsReadVerb(verb) || retry_after > 0 || response->status == 503));
      if (!retryable) return last;
      if (retry_after > 0) backoff = std::chrono::seconds(retry_after);
    }
    if (attempt >= config_.max_retries) return last;
    spdlog::debug("kube: {} failed ({}), retrying in {} ms", what, last.ToString(), backoff.count());
    if (!wait(backoff)) {
      Status short_status = cut_short();
      return short_status.ok() ? last : short_status;
    }
  }
}

namespace {
// List items arrive without apiVersion/kind; stamp them from the resource.
void StampTypeMeta(const Resource& resource, Object& item) {
  if (!item.contains("apiVersion") || !item["apiVersion"].is_string() || item["apiVersion"].get<std::string>().empty()) {
    item["apiVersion"] = resource.ApiVersion();
  }
  if (!resource.kind.empty() &&
      (!item.contains("kind") || !item["kind"].is_string() || item["kind"].get<std::string>().empty())) {
    item["kind"] = resource.kind;
  }
}
}  // namespace

StatusOr<Object> Client::Get(const Resource& resource, const std::string& namespace_name,
                             const std::string& name, const std::string& subresource, const CallOptions& call) {
  if (name.empty()) return InvalidArgument("get " + resource.plural + ": empty name");
  return Call("get", "GET", resource.Path(namespace_name, name, subresource), "", "", call);
}

StatusOr<ObjectList> Client::List(const Resource& resource, const std::string& namespace_name,
                                  const ListOptions& options, const CallOptions& call) {
  std::string path = resource.Path(namespace_name) +
                     QueryString({{"labelSelector", options.label_selector},
                                  {"fieldSelector", options.field_selector},
                                  {"limit", options.limit > 0 ? std::to_string(options.limit) : ""},
                                  {"continue", options.continue_token},
                                  {"resourceVersion", options.resource_version}});
  StatusOr<Object> doc = Call("list", "GET", path, "", "", call);
  if (!doc.ok()) return doc.status();
  ObjectList list;
  auto items = doc->find("items");
  if (items != doc->end() && !items->is_null()) {
    if (!items->is_array()) return DataLoss("list " + path + ": items is not an array");
    list.items.reserve(items->size());
    for (Object& item : *items) {
      if (!item.is_object()) return DataLoss("list " + path + ": an item is not an object");
      StampTypeMeta(resource, item);
      list.items.push_back(std::move(item));
    }
  }
  const Object& metadata = doc->value("metadata", Object::object());
  if (metadata.is_object()) {
    list.resource_version = metadata.value("resourceVersion", "");
    list.continue_token = metadata.value("continue", "");
  }
  return list;
}

StatusOr<ObjectList> Client::ListAll(const Resource& resource, const std::string& namespace_name,
                                     ListOptions options, const CallOptions& call) {
  ObjectList all;
  for (bool first = true;; first = false) {
    StatusOr<ObjectList> page = List(resource, namespace_name, options, call);
    if (!page.ok()) return page.status();
    if (first) all.resource_version = page->resource_version;
    for (Object& item : page->items) all.items.push_back(std::move(item));
    if (page->continue_token.empty()) return all;
    options.continue_token = page->continue_token;
  }
}

StatusOr<Object> Client::Create(const Resource& resource, const std::string& namespace_name,
                                const Object& object, const CallOptions& call) {
  std::string ns = namespace_name.empty() ? NamespaceOf(object) : namespace_name;
  if (resource.namespaced && ns.empty()) {
    return InvalidArgument("create " + resource.plural + ": no namespace given or in metadata");
  }
  return Call("create", "POST", resource.Path(ns), "application/json", object.dump(), call);
}

StatusOr<Object> Client::CreateSubresource(const Resource& resource, const std::string& namespace_name,
                                           const std::string& name, const std::string& subresource,
                                           const Object& body, const CallOptions& call) {
  if (name.empty() || subresource.empty()) {
    return InvalidArgument("create " + resource.plural + ": a subresource needs an object name and a subresource");
  }
  return Call("create", "POST", resource.Path(namespace_name, name, subresource), "application/json", body.dump(),
              call);
}

StatusOr<Object> Client::Update(const Resource& resource, const Object& object, const std::string& subresource,
                                const CallOptions& call) {
  std::string name = NameOf(object);
  if (name.empty()) return InvalidArgument("update " + resource.plural + ": the object has no metadata.name");
  return Call("update", "PUT", resource.Path(NamespaceOf(object), name, subresource), "application/json",
              object.dump(), call);
}

StatusOr<Object> Client::Patch(const Resource& resource, const std::string& namespace_name,
                               const std::string& name, PatchType type, const Object& patch,
                               const PatchOptions& options, const CallOptions& call) {
  if (name.empty()) return InvalidArgument("patch " + resource.plural + ": empty name");
  if (type == PatchType::kApply && options.field_manager.empty()) {
    return InvalidArgument("server-side apply needs a field manager");
  }
  std::string path = resource.Path(namespace_name, name, options.subresource) +
                     QueryString({{"fieldManager", options.field_manager},
                                  {"force", type == PatchType::kApply && options.force ? "true" : ""}});
  return Call(type == PatchType::kApply ? "apply" : "patch", "PATCH", path,
              std::string(PatchContentType(type)), patch.dump(), call);
}

Status Client::Delete(const Resource& resource, const std::string& namespace_name, const std::string& name,
                      const DeleteOptions& options, const CallOptions& call) {
  if (name.empty()) return InvalidArgument("delete " + resource.plural + ": empty name");
  Object body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (options.propagation != PropagationPolicy::kDefault) {
    body["propagationPolicy"] = PropagationName(options.propagation);
  }
  if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
  if (!options.precondition_uid.empty()) body["preconditions"]["uid"] = options.precondition_uid;
  if (!options.precondition_resource_version.empty()) {
    body["preconditions"]["resourceVersion"] = options.precondition_resource_version;
  }
  return Call("delete", "DELETE", resource.Path(namespace_name, name), "application/json", body.dump(), call)
      .status();
}

StatusOr<Object> Client::UpdateWithRetry(const Resource& resource, const std::string& namespace_name,
                                         const std::string& name, const std::function<bool(Object&)>& mutate,
                                         const std::string& subresource, int attempts, const CallOptions& call) {
  Status last;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    StatusOr<Object> current = Get(resource, namespace_name, name, "", call);
    if (!current.ok()) return current.status();
    Object object = std::move(*current);
    if (!mutate(object)) return object;
    StatusOr<Object> written = Update(resource, object, subresource, call);
    if (written.ok() || !IsConflict(written.status())) return written;
    last = written.status();
    std::this_thread::sleep_for(Backoff(attempt) / 10);
  }
  return last.WithContext("gave up after " + std::to_string(attempts) + " conflicting updates");
}

std::string_view WatchEventTypeName(WatchEvent::Type type) {
  switch (type) {
    case WatchEvent::Type::kAdded: return "ADDED";
    case WatchEvent::Type::kModified: return "MODIFIED";
    case WatchEvent::Type::kDeleted: return "DELETED";
    case WatchEvent::Type::kBookmark: return "BOOKMARK";
  }
  return "UNKNOWN";
}

Status Client::WatchStream(const Resource& resource, const std::string& namespace_name,
                           const WatchOptions& options, const std::function<bool(WatchEvent&&)>& on_event,
                           std::stop_token stop) {
  std::string path = resource.Path(namespace_name) +
                     QueryString({{"watch", "true"},
                                  {"resourceVersion", options.resource_version},
                                  {"allowWatchBookmarks", options.allow_bookmarks ? "true" : ""},
                                  {"timeoutSeconds", options.timeout_seconds > 0 ? std::to_string(options.timeout_seconds) : ""},
                                  {"labelSelector", options.label_selector},
                                  {"fieldSelector", options.field_selector}});
  if (!state_->limiter.Acquire(stop)) return Status::Ok();
  HttpRequest request = state_->Request(config_, "GET", path, "", "");
  Status failure;
  auto on_line = [&](std::string_view line) {
    if (line.empty() || line == "\r") return true;
    Object doc = Object::parse(line, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("type") || !doc["type"].is_string() ||
        !doc.contains("object") || !doc["object"].is_object()) {
      // Not quoted: the line may hold a Secret.
      failure = DataLoss("watch " + path + ": malformed event (" + std::to_string(line.size()) + " bytes)");
      return false;
    }
    const std::string type = doc["type"].get<std::string>();
    WatchEvent event;
    if (type == "ADDED") event.type = WatchEvent::Type::kAdded;
    else if (type == "MODIFIED") event.type = WatchEvent::Type::kModified;
    else if (type == "DELETED") event.type = WatchEvent::Type::kDeleted;
    else if (type == "BOOKMARK") event.type = WatchEvent::Type::kBookmark;
    else if (type == "ERROR") {
      const Object& status = doc["object"];
      int code = status.contains("code") && status["code"].is_number_integer() ? status["code"].get<int>() : 500;
      failure = StatusFromHttp(code, status.dump()).WithContext("watch " + path);
      return false;
    } else {
      failure = DataLoss("watch " + path + ": unknown event type '" + type.substr(0, 32) + "'");
      return false;
    }
    event.object = std::move(doc["object"]);
    return on_event(std::move(event));
  };
  auto idle = std::chrono::seconds(options.timeout_seconds > 0 ? options.timeout_seconds + 30 : 3600);
  auto started = std::chrono::steady_clock::now();
  StatusOr<HttpResponse> response = state_->transport->Stream(request, on_line, idle, stop);
  state_->Record("watch", response.ok() ? response->status : 0, std::chrono::steady_clock::now() - started);
  if (!response.ok()) return response.status();
  if (response->status < 200 || response->status >= 300) {
    return StatusFromHttp(response->status, response->body).WithContext("watch " + path);
  }
  return failure;
}

Status Client::StreamLines(const std::string& path_and_query,
                           const std::function<bool(std::string_view)>& on_line, std::stop_token stop) {
  if (!state_->limiter.Acquire(stop)) return Status::Ok();
  HttpRequest request = state_->Request(config_, "GET", path_and_query, "", "");
  auto started = std::chrono::steady_clock::now();
  // A followed log may stay quiet for long: the stream ends with the container or `stop`.
  StatusOr<HttpResponse> response = state_->transport->Stream(request, on_line, std::chrono::hours(24), stop);
  state_->Record("get", response.ok() ? response->status : 0, std::chrono::steady_clock::now() - started);
  if (!response.ok()) return response.status();
  if (response->status < 200 || response->status >= 300) {
    return StatusFromHttp(response->status, response->body).WithContext("GET " + path_and_query);
  }
  return Status::Ok();
}

StatusOr<bool> CustomResourceDefinitionInstalled(Client& client, const std::string& name, const CallOptions& options) {
  StatusOr<nlohmann::json> found =
      client.Get({"apiextensions.k8s.io", "v1", "customresourcedefinitions", false}, "", name, "", options);
  if (found.ok()) return true;
  if (IsNotFound(found.status())) return false;
  return found.status();
}

}  // namespace mlscale::kube
