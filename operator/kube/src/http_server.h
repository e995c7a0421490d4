// A minimal HTTP/1.1 server for /metrics, /healthz and /readyz: GET only, one
// connection at a time, each closed after its response. Internal to mlscale_kube.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "mlscale/common/status.h"

namespace mlscale::kube {

class HttpServer {
 public:
  struct Reply {
    int status = 200;
    std::string body;
    std::string content_type = "text/plain; charset=utf-8";
  };
  using Handler = std::function<Reply(const std::string& path)>;

  // Listens on "host:port" (port 0: any free port) and serves on its own thread.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& address, Handler handler);
  ~HttpServer();  // stops listening and joins
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  int port() const { return port_; }

 private:
  HttpServer(int listen_fd, int wake_fd, int port, Handler handler);
  void Serve();
  void Answer(int connection);

  int listen_fd_;
  int wake_fd_;  // eventfd: written to stop Serve()
  int port_;
  Handler handler_;
  std::thread thread_;
};

}  // namespace mlscale::kube
