// HttpTransport on cpprestsdk. The only file of mlscale_kube that includes cpprestsdk.
#include <boost/asio/ssl.hpp>
#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>

#include <algorithm>
#include <exception>
#include <string>
#include <vector>

#include "http_transport.h"

namespace mlscale::kube {
namespace {

namespace http = web::http;

// Loads the CA and client credentials from memory into the TLS context.
void ConfigureTls(const ClientConfig& config, boost::asio::ssl::context& context) {
  if (!config.ca_pem.empty()) {
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

std::string ReadAll(http::http_response& response) {
  std::vector<unsigned char> bytes = response.extract_vector().get();
  return std::string(bytes.begin(), bytes.end());
}

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
    client_ = std::make_unique<http::client::http_client>(base_, ClientSettings(config.request_timeout));
  }

  StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    try {
      http::http_response response = client_->request(BuildRequest(request)).get();
      HttpResponse out = Head(response);
      out.body = ReadAll(response);
      return out;
    } catch (const std::exception& e) {
      return TransportError(request.method + " " + request.path_and_query, e.what());
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
      if (out.status < 200 || out.status >= 300) {
        out.body = ReadAll(response);
        return out;
      }
      // Read whatever has arrived in one go (a line at a time costs a task per event)
      // and wait for one byte only when nothing is buffered; hand out complete lines.
      concurrency::streams::streambuf<uint8_t> body = response.body().streambuf();
      std::string pending;
      std::vector<uint8_t> chunk(64 * 1024);
      for (bool open = true; open && !stop.stop_requested();) {
        size_t available = std::min(body.in_avail(), chunk.size());
        if (available == 0) {
          auto next = body.bumpc().get();
          if (next == concurrency::streams::streambuf<uint8_t>::traits::eof()) {
            open = false;
          } else {
            pending.push_back(static_cast<char>(next));
          }
        } else {
          size_t n = body.getn(chunk.data(), available).get();
          pending.append(reinterpret_cast<const char*>(chunk.data()), n);
        }
        size_t start = 0;
        for (size_t newline; (newline = pending.find('\n', start)) != std::string::npos; start = newline + 1) {
          if (!on_line(std::string_view(pending).substr(start, newline - start))) return out;
        }
        pending.erase(0, start);
      }
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
