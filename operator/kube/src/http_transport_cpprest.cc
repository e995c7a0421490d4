// HttpTransport on cpprestsdk. The only file of mlscale_kube that includes cpprestsdk.
#include <boost/asio/ssl.hpp>
#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http_transport.h"

namespace mlscale::kube {
namespace {

namespace http = web::http;

// Loads the CA and client credentials from memory into the TLS context.
void ConfigureTls(const ClientConfig& config, boost::asio::ssl::context& context) {
  if (!config.ca_pem.empty()) {
    // cpprestsdk has loaded the system's roots already (set_default_verify_paths): a
    // kubeconfig that names a CA means that CA alone, so start from an empty store.
    SSL_CTX_set_cert_store(context.native_handle(), X509_STORE_new());
    context.add_certificate_authority(boost::asio::buffer(config.ca_pem));
  }
  if (!config.client_certificate_pem.empty()) {
    context.use_certificate_chain(boost::asio::buffer(config.client_certificate_pem));
  }
  if (!config.client_key_pem.empty()) {
    context.use_private_key(boost::asio::buffer(config.client_key_pem),
                            boost::asio::ssl::context::pem);
  }
}

http::method MethodOf(const std::string& name) { return http::method(name); }

http::http_request BuildRequest(const HttpRequest& request) {
  http::http_request out(MethodOf(request.method));
  out.set_request_uri(web::uri(request.path_and_query));
  for (const auto& [name, value] : request.headers) out.headers().add(name, value);
  if (!request.body.empty() || !request.content_type.empty()) {
    out.set_body(request.body, request.content_type);
  }
  return out;
}

using Clock = std::chrono::steady_clock;

// How a body's reading ended.
enum class BodyEnd {
  kEnded,      // the server ended the body
  kStopped,    // `on_bytes` returned false, or the stop token was requested
  kFellBehind  // more than `max_backlog` bytes arrived that `on_bytes` had not taken yet
};

// Reads the body as it arrives, handing each piece to `on_bytes` (false: stop reading);
// whatever has arrived is taken in one go, and one byte is waited for only when nothing
// is buffered. cpprestsdk reads the socket into the body's buffer as fast as the server
// sends, whatever the reader's pace, so what it holds unread is bounded here.
BodyEnd ReadBody(http::http_response& response, const std::function<bool(std::string_view)>& on_bytes,
                 size_t max_backlog, const std::stop_token& stop = {}) {
  concurrency::streams::streambuf<uint8_t> body = response.body().streambuf();
  std::vector<uint8_t> chunk(64 * 1024);
  while (!stop.stop_requested()) {
    size_t buffered = body.in_avail();
    if (buffered > max_backlog) return BodyEnd::kFellBehind;
    size_t available = std::min(buffered, chunk.size());
    if (available == 0) {
      auto next = body.bumpc().get();
      if (next == concurrency::streams::streambuf<uint8_t>::traits::eof()) return BodyEnd::kEnded;
      char byte = static_cast<char>(next);
      if (!on_bytes(std::string_view(&byte, 1))) return BodyEnd::kStopped;
    } else {
      size_t n = body.getn(chunk.data(), available).get();
      if (!on_bytes(std::string_view(reinterpret_cast<const char*>(chunk.data()), n))) return BodyEnd::kStopped;
    }
  }
  return BodyEnd::kStopped;
}

// The whole body, or kResourceExhausted past `limit` bytes (the rest is not read).
StatusOr<std::string> ReadAll(http::http_response& response, size_t limit, const std::string& what) {
  if (response.headers().content_length() > limit) {
    return Status(StatusCode::kResourceExhausted, what + ": the response body (" +
                  std::to_string(response.headers().content_length()) + " bytes) exceeds the limit of " +
                  std::to_string(limit) + " bytes");
  }
  std::string out;
  BodyEnd end = ReadBody(response, [&](std::string_view bytes) {
    if (out.size() + bytes.size() > limit) return false;
    out.append(bytes);
    return true;
  }, limit);
  if (end != BodyEnd::kEnded) {
    return Status(StatusCode::kResourceExhausted,
                  what + ": the response body exceeds the limit of " + std::to_string(limit) + " bytes");
  }
  return out;
}

// Cancels requests at their deadlines: one thread per transport, however many calls.
class DeadlineWatch {
 public:
  using Key = std::pair<Clock::time_point, uint64_t>;
  DeadlineWatch() : thread_([this](std::stop_token stop) { Run(stop); }) {}
  Key Add(Clock::time_point deadline, pplx::cancellation_token_source source) {
    std::lock_guard lock(mutex_);
    Key key{deadline, next_id_++};
    entries_.emplace(key, std::move(source));
    changed_.notify_all();
    return key;
  }
  void Remove(const Key& key) {
    std::lock_guard lock(mutex_);
    entries_.erase(key);
  }

 private:
  void Run(std::stop_token stop) {
    std::unique_lock lock(mutex_);
    while (!stop.stop_requested()) {
      Clock::time_point now = Clock::now();
      while (!entries_.empty() && entries_.begin()->first.first <= now) {
        entries_.begin()->second.cancel();
        entries_.erase(entries_.begin());
      }
      if (entries_.empty()) {
        changed_.wait(lock, stop, [this] { return !entries_.empty(); });
      } else {
        Clock::time_point next = entries_.begin()->first.first;
        changed_.wait_until(lock, stop, next, [this, next] { return entries_.begin()->first.first < next; });
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable_any changed_;
  std::map<Key, pplx::cancellation_token_source> entries_;
  uint64_t next_id_ = 0;
  std::jthread thread_;  // last: joined before the entries go
};

HttpResponse Head(const http::http_response& response) {
  HttpResponse out;
  out.status = response.status_code();
  auto it = response.headers().find("Retry-After");
  if (it != response.headers().end()) out.retry_after = it->second;
  return out;
}

Status TransportError(const std::string& what, const std::string& cause) {
  // cpprestsdk's messages for failures before any byte of the request left intact.
  for (const char* marker : {"Failed to connect", "resolv", "Failed to write request", "SSL handshake", "refused"}) {
    if (cause.find(marker) != std::string::npos) return Unavailable(std::string(kNotSent) + what + ": " + cause);
  }
  if (cause.find("timed out") != std::string::npos || cause.find("Timeout") != std::string::npos) {
    return DeadlineExceeded(what + ": " + cause);
  }
  return Unavailable(what + ": " + cause);
}

class CpprestTransport final : public HttpTransport {
 public:
  CpprestTransport(const ClientConfig& config, web::uri base) : config_(config), base_(std::move(base)) {
    // cpprestsdk's own timeout, in whole seconds, is a backstop; Send's deadline is exact.
    auto backstop = std::chrono::ceil<std::chrono::seconds>(config.request_timeout) + std::chrono::seconds(1);
    client_ = std::make_unique<http::client::http_client>(base_, ClientSettings(backstop));
  }

  StatusOr<HttpResponse> Send(const HttpRequest& request, Clock::time_point deadline,
                              std::stop_token stop) override {
    const std::string what = request.method + " " + request.path_and_query;
    if (stop.stop_requested()) return Cancelled(what + ": cancelled before it was sent");
    if (Clock::now() >= deadline) return DeadlineExceeded(what + ": the deadline passed before it was sent");
    pplx::cancellation_token_source cancel;
    std::stop_callback on_stop(stop, [&cancel] { cancel.cancel(); });
    DeadlineWatch::Key watched = deadlines_.Add(deadline, cancel);
    struct Unwatch {
      DeadlineWatch& watch;
      DeadlineWatch::Key key;
      ~Unwatch() { watch.Remove(key); }
    } unwatch{deadlines_, watched};
    try {
      http::http_response response = client_->request(BuildRequest(request), cancel.get_token()).get();
      HttpResponse out = Head(response);
      StatusOr<std::string> body = ReadAll(response, config_.max_response_bytes, what);
      if (!body.ok()) {
        cancel.cancel();  // closes the connection: nothing more of this body is read
        return body.status();
      }
      out.body = std::move(*body);
      return out;
    } catch (const std::exception& e) {
      if (stop.stop_requested()) return Cancelled(what + ": cancelled");
      if (Clock::now() >= deadline) return DeadlineExceeded(what + ": no complete answer within the deadline");
      return TransportError(what, e.what());
    }
  }

  StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                const std::function<bool(std::string_view)>& on_line,
                                std::chrono::seconds idle_timeout, std::stop_token stop) override {
    // A client per stream: its inactivity timeout differs, and closing it on stop
    // must not disturb other requests.
    http::client::http_client client(base_, ClientSettings(idle_timeout));
    pplx::cancellation_token_source cancel;
    std::stop_callback on_stop(stop, [&cancel] { cancel.cancel(); });
    try {
      http::http_response response = client.request(BuildRequest(request), cancel.get_token()).get();
      HttpResponse out = Head(response);
      const std::string what = "stream " + request.path_and_query;
      if (out.status < 200 || out.status >= 300) {
        StatusOr<std::string> body = ReadAll(response, config_.max_response_bytes, what);
        if (!body.ok()) return body.status();
        out.body = std::move(*body);
        return out;
      }
      // Hand out complete lines; a line longer than the limit ends the stream.
      std::string pending;
      Status too_long;
      BodyEnd end = ReadBody(response, [&](std::string_view bytes) {
        pending.append(bytes);
        size_t start = 0;
        auto over = [&](size_t length) {
          if (length <= config_.max_watch_line_bytes) return false;
          too_long = Status(StatusCode::kResourceExhausted, what + ": a line exceeds the limit of " +
                                                                std::to_string(config_.max_watch_line_bytes) + " bytes");
          return true;
        };
        for (size_t newline; (newline = pending.find('\n', start)) != std::string::npos; start = newline + 1) {
          if (over(newline - start)) return false;
          if (!on_line(std::string_view(pending).substr(start, newline - start))) return false;
        }
        pending.erase(0, start);
        return !over(pending.size());
      }, config_.max_watch_backlog_bytes, stop);
      if (end != BodyEnd::kEnded) cancel.cancel();  // closes the connection: nothing more is read
      if (!too_long.ok()) return too_long;
      if (end == BodyEnd::kFellBehind) {
        return Status(StatusCode::kResourceExhausted,
                      what + ": the reader fell more than " + std::to_string(config_.max_watch_backlog_bytes) +
                          " bytes behind the server");
      }
      if (end == BodyEnd::kStopped) return out;
      if (!pending.empty() && !stop.stop_requested()) on_line(pending);  // a last line without newline
      return out;
    } catch (const std::exception& e) {
      if (stop.stop_requested()) return HttpResponse{200, "", ""};
      return TransportError("stream " + request.path_and_query, e.what());
    }
  }

 private:
  http::client::http_client_config ClientSettings(std::chrono::seconds timeout) const {
    http::client::http_client_config settings;
    settings.set_timeout(timeout);
    settings.set_validate_certificates(!config_.insecure_skip_tls_verify);
    ClientConfig tls = config_;
    settings.set_ssl_context_callback(
        [tls](boost::asio::ssl::context& context) { ConfigureTls(tls, context); });
    return settings;
  }

  ClientConfig config_;
  web::uri base_;
  std::unique_ptr<http::client::http_client> client_;
  DeadlineWatch deadlines_;
};

}  // namespace

StatusOr<std::unique_ptr<HttpTransport>> MakeCpprestTransport(const ClientConfig& config) {
  if (config.server.empty()) return InvalidArgument("no server URL");
  if (!web::uri::validate(config.server)) return InvalidArgument("malformed server URL '" + config.server + "'");
  web::uri base(config.server);
  if (base.scheme() != "https" && base.scheme() != "http") {
    return InvalidArgument("server URL '" + config.server + "' must be http or https");
  }
  if (base.host().empty()) return InvalidArgument("server URL '" + config.server + "' has no host");
  try {
    return std::unique_ptr<HttpTransport>(std::make_unique<CpprestTransport>(config, base));
  } catch (const std::exception& e) {
    return InvalidArgument("cannot build an HTTP client for '" + config.server + "': " + e.what());
  }
}

}  // namespace mlscale::kube
