// TCP sockets for the rendezvous and the trainers' data plane: an owning file
// descriptor, listening and connecting with deadlines, and "host:port" endpoints.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "mlscale/common/status.h"

namespace mlscale::launcher {

using Clock = std::chrono::steady_clock;

// Owns one file descriptor and closes it when destroyed. Move-only.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.Release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership: the caller closes the returned descriptor.
  int Release();
  void Reset();

 private:
  int fd_ = -1;
};

// A "host:port" pair; IPv6 hosts are written in brackets ("[::1]:80").
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string ToString() const;
};
// Parses "host:port" (port 1-65535; host non-empty, letters, digits, '.', '-', ':' in brackets).
StatusOr<Endpoint> ParseEndpoint(std::string_view text);

// A TCP socket bound to `address` ("0.0.0.0", "::", "127.0.0.1", ...) and `port`
// (0: any free port), listening, non-blocking, close-on-exec.
StatusOr<FileDescriptor> ListenTcp(const std::string& address, std::uint16_t port);
// Connects to host:port, resolving the name each time. A name that does not resolve
// (yet) and a refused or timed-out connection are kUnavailable: worth retrying. The
// returned socket is non-blocking and close-on-exec.
StatusOr<FileDescriptor> ConnectTcp(const std::string& host, std::uint16_t port, Clock::time_point deadline);

// The local port / numeric local address a socket is bound to.
StatusOr<std::uint16_t> LocalPort(int fd);
StatusOr<std::string> LocalAddress(int fd);
// The numeric address of the other end of a connected socket.
StatusOr<std::string> PeerAddress(int fd);
// Sets or clears FD_CLOEXEC (a descriptor handed to a child must not have it).
Status SetCloseOnExec(int fd, bool close_on_exec);
// Sets or clears O_NONBLOCK.
Status SetNonBlocking(int fd, bool non_blocking);
// True for the wildcard addresses 0.0.0.0 and ::.
bool IsWildcardAddress(std::string_view address);

}  // namespace mlscale::launcher
