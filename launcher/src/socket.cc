#include "mlscale/launcher/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>

namespace mlscale::launcher {
namespace {

std::string ErrnoText(int error) { return std::strerror(error); }

struct AddrInfoDeleter {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};
using AddrInfoList = std::unique_ptr<addrinfo, AddrInfoDeleter>;

StatusOr<AddrInfoList> Resolve(const std::string& host, std::uint16_t port, int flags) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags;
  addrinfo* result = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
    // A name that does not resolve yet (a pod's DNS record appears late) is transient.
    return Unavailable("cannot resolve '" + host + "': " + gai_strerror(rc));
  }
  return AddrInfoList(result);
}

StatusOr<std::string> NumericHost(const sockaddr_storage& address, socklen_t length) {
  char host[NI_MAXHOST];
  int rc = getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, host, sizeof host, nullptr, 0,
                       NI_NUMERICHOST);
  if (rc != 0) return Internal(std::string("getnameinfo: ") + gai_strerror(rc));
  return std::string(host);
}

}  // namespace

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    Reset();
    fd_ = other.Release();
  }
  return *this;
}

int FileDescriptor::Release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void FileDescriptor::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string Endpoint::ToString() const {
  bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

StatusOr<Endpoint> ParseEndpoint(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("endpoint \"" + std::string(text) + "\" is not host:port: " + why);
  };
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("no ':'");
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return bad("an IPv6 host must be in brackets");
  }
  if (host.empty()) return bad("empty host");
  if (host.size() > 253) return bad("host longer than 253 characters");
  for (char c : host) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_';
    if (!ok) return bad("invalid character in host");
  }
  unsigned port = 0;
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || error != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return bad("port must be 1-65535");
  }
  return Endpoint{std::string(host), static_cast<std::uint16_t>(port)};
}

StatusOr<FileDescriptor> ListenTcp(const std::string& address, std::uint16_t port) {
  auto addresses = Resolve(address, port, AI_PASSIVE | AI_NUMERICHOST);
  if (!addresses.ok()) return InvalidArgument("bind address '" + address + "' is not a numeric address");
  const addrinfo* info = addresses->get();
  FileDescriptor fd(::socket(info->ai_family, info->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, info->ai_protocol));
  if (!fd.valid()) return Internal("socket: " + ErrnoText(errno));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), info->ai_addr, info->ai_addrlen) != 0) {
    int error = errno;
    return Unavailable("cannot listen on " + Endpoint{address, port}.ToString() + ": " + ErrnoText(error));
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) return Internal("listen: " + ErrnoText(errno));
  return fd;
}

StatusOr<FileDescriptor> ConnectTcp(const std::string& host, std::uint16_t port, Clock::time_point deadline) {
  auto addresses = Resolve(host, port, 0);
  if (!addresses.ok()) return addresses.status();
  std::string last_error = "no address";
  for (const addrinfo* info = addresses->get(); info != nullptr; info = info->ai_next) {
    FileDescriptor fd(::socket(info->ai_family, info->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, info->ai_protocol));
    if (!fd.valid()) return Internal("socket: " + ErrnoText(errno));
    if (::connect(fd.get(), info->ai_addr, info->ai_addrlen) == 0) return fd;
    if (errno != EINPROGRESS) {
      last_error = ErrnoText(errno);
      continue;
    }
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd waiting{fd.get(), POLLOUT, 0};
    int ready = ::poll(&waiting, 1, static_cast<int>(std::max<long long>(remaining, 0)));
    if (ready <= 0) {
      last_error = ready == 0 ? "connection timed out" : ErrnoText(errno);
      continue;
    }
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error == 0) return fd;
    last_error = ErrnoText(error);
  }
  return Unavailable("cannot connect to " + Endpoint{host, port}.ToString() + ": " + last_error);
}

StatusOr<std::uint16_t> LocalPort(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return Internal("getsockname: " + ErrnoText(errno));
  }
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  return Internal("not an IP socket");
}

StatusOr<std::string> LocalAddress(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return Internal("getsockname: " + ErrnoText(errno));
  }
  return NumericHost(address, length);
}

StatusOr<std::string> PeerAddress(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return Internal("getpeername: " + ErrnoText(errno));
  }
  return NumericHost(address, length);
}

Status SetCloseOnExec(int fd, bool close_on_exec) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) return Internal("fcntl(F_GETFD): " + ErrnoText(errno));
  flags = close_on_exec ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (::fcntl(fd, F_SETFD, flags) != 0) return Internal("fcntl(F_SETFD): " + ErrnoText(errno));
  return Status::Ok();
}

Status SetNonBlocking(int fd, bool non_blocking) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return Internal("fcntl(F_GETFL): " + ErrnoText(errno));
  flags = non_blocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) != 0) return Internal("fcntl(F_SETFL): " + ErrnoText(errno));
  return Status::Ok();
}

bool IsWildcardAddress(std::string_view address) {
  return address.empty() || address == "0.0.0.0" || address == "::" || address == "[::]";
}

}  // namespace mlscale::launcher
