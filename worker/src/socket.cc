#include "socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

namespace mlscale::worker {

void FileDescriptor::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

std::string ErrnoText() { return std::strerror(errno); }

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : int(std::min<int64_t>(left, 1000));
}

StatusOr<addrinfo*> Resolve(const std::string& host, uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints, &result);
  if (rc != 0) return Unavailable("cannot resolve '" + host + "': " + ::gai_strerror(rc));
  return result;
}

// Waits until `fd` is ready for `events`; false on timeout.
StatusOr<bool> Wait(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, RemainingMs(deadline));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return Internal("poll: " + ErrnoText());
    if (rc > 0) return true;
    if (Clock::now() >= deadline) return false;
  }
}

}  // namespace

StatusOr<FileDescriptor> ListenTcp(const std::string& host, uint16_t port) {
  auto resolved = Resolve(host, port, true);
  if (!resolved.ok()) return resolved.status();
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> info(*resolved, ::freeaddrinfo);
  FileDescriptor fd(::socket(info->ai_family, info->ai_socktype | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Internal("socket: " + ErrnoText());
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), info->ai_addr, info->ai_addrlen) != 0) {
    return Unavailable("cannot bind " + host + ":" + std::to_string(port) + ": " + ErrnoText());
  }
  if (::listen(fd.get(), 128) != 0) return Internal("listen: " + ErrnoText());
  return fd;
}

StatusOr<uint16_t> LocalPort(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return Internal("getsockname: " + ErrnoText());
  }
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
}

StatusOr<FileDescriptor> ConnectTcp(const std::string& host, uint16_t port, Clock::time_point deadline) {
  std::string last_error = "timed out";
  while (Clock::now() < deadline) {
    auto resolved = Resolve(host, port, false);
    if (resolved.ok()) {
      std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> info(*resolved, ::freeaddrinfo);
      FileDescriptor fd(::socket(info->ai_family, info->ai_socktype | SOCK_CLOEXEC, 0));
      if (!fd.valid()) return Internal("socket: " + ErrnoText());
      if (::connect(fd.get(), info->ai_addr, info->ai_addrlen) == 0) {
        ConfigureStream(fd.get());
        return fd;
      }
      last_error = ErrnoText();
    } else {
      last_error = resolved.status().message();  // DNS may not have the name yet
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return DeadlineExceeded("cannot connect to " + host + ":" + std::to_string(port) + ": " + last_error);
}

StatusOr<FileDescriptor> AcceptTcp(int listen_fd, Clock::time_point deadline) {
  while (true) {
    auto ready = Wait(listen_fd, POLLIN, deadline);
    if (!ready.ok()) return ready.status();
    if (!*ready) return DeadlineExceeded("no connection arrived");
    FileDescriptor fd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (fd.valid()) {
      ConfigureStream(fd.get());
      return fd;
    }
    if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) return Internal("accept: " + ErrnoText());
  }
}

void ConfigureStream(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int buffer = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof(buffer));
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

Status SendAll(int fd, const void* data, size_t bytes, Clock::time_point deadline) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = ::send(fd, p, bytes, MSG_NOSIGNAL);
    if (n > 0) {
      p += n;
      bytes -= size_t(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return Unavailable("send: " + ErrnoText());
    auto ready = Wait(fd, POLLOUT, deadline);
    if (!ready.ok()) return ready.status();
    if (!*ready) return DeadlineExceeded("send timed out");
  }
  return Status::Ok();
}

Status ReceiveAll(int fd, void* data, size_t bytes, Clock::time_point deadline) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    ssize_t n = ::recv(fd, p, bytes, 0);
    if (n > 0) {
      p += n;
      bytes -= size_t(n);
      continue;
    }
    if (n == 0) return Unavailable("connection closed");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Unavailable("recv: " + ErrnoText());
    auto ready = Wait(fd, POLLIN, deadline);
    if (!ready.ok()) return ready.status();
    if (!*ready) return DeadlineExceeded("receive timed out");
  }
  return Status::Ok();
}

}  // namespace mlscale::worker
