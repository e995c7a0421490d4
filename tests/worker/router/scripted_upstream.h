// A TCP server on 127.0.0.1 that answers every request with scripted bytes, for upstream
// behaviour no HTTP server library produces (garbage, a response cut short, a close with
// no answer). It reads one request header (up to "\r\n\r\n"), writes the script, closes.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

namespace mlscale::testing {

class ScriptedUpstream {
 public:
  explicit ScriptedUpstream(std::string script) : script_(std::move(script)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 64);
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedUpstream() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int requests() const { return requests_.load(); }

 private:
  void Run() {
    while (!stop_) {
      pollfd ready{fd_, POLLIN, 0};
      if (::poll(&ready, 1, 50) <= 0) continue;
      int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) continue;
      timeval timeout{0, 500'000};
      ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      std::string received;
      char chunk[4096];
      while (received.find("\r\n\r\n") == std::string::npos) {
        auto got = ::recv(client, chunk, sizeof chunk, 0);
        if (got <= 0) break;
        received.append(chunk, size_t(got));
      }
      ++requests_;
      ::send(client, script_.data(), script_.size(), MSG_NOSIGNAL);
      ::shutdown(client, SHUT_WR);
      // Let the router read what was sent before the close (no reset from unread bytes).
      while (::recv(client, chunk, sizeof chunk, 0) > 0) {
      }
      ::close(client);
    }
  }

  std::string script_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace mlscale::testing
