#include "probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace mlscale::nodeagent {
namespace {

using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// An open socket, closed when it goes out of scope.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Connects to host:port before the deadline; the socket stays non-blocking.
StatusOr<int> Connect(const std::string& host, int port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    return Unavailable("resolving " + host + ": " + gai_strerror(rc));
  }
  sockaddr_in address{};
  std::memcpy(&address, found->ai_addr, sizeof address);
  freeaddrinfo(found);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable(std::string("socket: ") + std::strerror(errno));
  std::string where = host + ":" + std::to_string(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    if (errno != EINPROGRESS) {
      int error = errno;
      close(fd);
      return Unavailable("dial tcp " + where + ": " + std::strerror(error));
    }
    pollfd waiting{fd, POLLOUT, 0};
    if (poll(&waiting, 1, RemainingMs(deadline)) <= 0) {
      close(fd);
      return DeadlineExceeded("dial tcp " + where + ": timeout");
    }
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      close(fd);
      return Unavailable("dial tcp " + where + ": " + std::strerror(error));
    }
  }
  return fd;
}

ProbeResult TcpProbe(const ProbePlan& probe, const std::string& host, Clock::time_point deadline) {
  StatusOr<int> fd = Connect(host, probe.port, deadline);
  if (!fd.ok()) return {false, fd.status().message()};
  close(*fd);
  return {true, ""};
}

ProbeResult HttpProbe(const ProbePlan& probe, const std::string& host, Clock::time_point deadline) {
  StatusOr<int> fd = Connect(host, probe.port, deadline);
  if (!fd.ok()) return {false, fd.status().message()};
  Socket socket(*fd);
  std::string request = "GET " + probe.path + " HTTP/1.1\r\nHost: " + host + ":" +
                        std::to_string(probe.port) +
                        "\r\nUser-Agent: kube-probe/mlscale-test-node\r\nAccept: */*\r\n"
                        "Connection: close\r\n";
  for (const auto& [name, value] : probe.http_headers) request += name + ": " + value + "\r\n";
  request += "\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    pollfd waiting{socket.fd(), POLLOUT, 0};
    if (poll(&waiting, 1, RemainingMs(deadline)) <= 0) return {false, "HTTP probe: timeout sending"};
    ssize_t n = send(socket.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return {false, std::string("HTTP probe: sending: ") + std::strerror(errno)};
    sent += static_cast<size_t>(n);
  }
  std::string response;
  while (response.find("\r\n") == std::string::npos && response.size() < 4096) {
    pollfd waiting{socket.fd(), POLLIN, 0};
    if (poll(&waiting, 1, RemainingMs(deadline)) <= 0) {
      return {false, "HTTP probe: timeout awaiting response headers"};
    }
    char buffer[1024];
    ssize_t n = recv(socket.fd(), buffer, sizeof buffer, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  // "HTTP/1.1 200 OK"
  int code = 0;
  auto space = response.find(' ');
  if (response.rfind("HTTP/", 0) == 0 && space != std::string::npos) {
    code = std::atoi(response.c_str() + space + 1);
  }
  if (code == 0) return {false, "HTTP probe: no HTTP status line in the response"};
  if (code >= 200 && code < 400) return {true, ""};
  return {false, "HTTP probe failed with statuscode: " + std::to_string(code)};
}

ProbeResult ExecProbe(const ProbePlan& probe, const LaunchSpec& exec_base, Clock::time_point deadline) {
  LaunchSpec spec = exec_base;
  spec.argv = probe.command;
  StatusOr<std::unique_ptr<Process>> process = Process::Spawn(spec);
  if (!process.ok()) return {false, process.status().message()};
  for (;;) {
    if (std::optional<ExitStatus> exit = (*process)->Poll()) {
      if (exit->exit_code == 0) return {true, ""};
      return {false, "command exited with code " + std::to_string(exit->exit_code)};
    }
    if (Clock::now() >= deadline) {
      return {false, "command timed out"};  // the Process destructor kills it
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

ProbeResult RunProbe(const ProbePlan& probe, const std::string& pod_ip, const LaunchSpec& exec_base) {
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(probe.timeout_seconds);
  std::string host = probe.host.empty() ? pod_ip : probe.host;
  switch (probe.kind) {
    case ProbePlan::Kind::kExec: return ExecProbe(probe, exec_base, deadline);
    case ProbePlan::Kind::kHttpGet: return HttpProbe(probe, host, deadline);
    case ProbePlan::Kind::kTcpSocket: return TcpProbe(probe, host, deadline);
  }
  return {false, "unknown probe kind"};
}

}  // namespace mlscale::nodeagent
