// Small RAII and I/O helpers for the TCP transport (internal).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "mlscale/common/status.h"

namespace mlscale::worker {

using Clock = std::chrono::steady_clock;

// Owns a file descriptor.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A listening TCP socket on host:port (SO_REUSEADDR; port 0 picks a free one).
StatusOr<FileDescriptor> ListenTcp(const std::string& host, uint16_t port);
// The port a bound socket listens on.
StatusOr<uint16_t> LocalPort(int fd);

// Connects to host:port, retrying refused connections until `deadline`.
StatusOr<FileDescriptor> ConnectTcp(const std::string& host, uint16_t port, Clock::time_point deadline);
// Accepts one connection, waiting until `deadline`.
StatusOr<FileDescriptor> AcceptTcp(int listen_fd, Clock::time_point deadline);

// Makes `fd` non-blocking with TCP_NODELAY and large buffers.
void ConfigureStream(int fd);

// Sends or receives exactly `bytes`, waiting until `deadline`. Unavailable on a closed
// connection, DeadlineExceeded on timeout.
Status SendAll(int fd, const void* data, size_t bytes, Clock::time_point deadline);
Status ReceiveAll(int fd, void* data, size_t bytes, Clock::time_point deadline);

}  // namespace mlscale::worker
