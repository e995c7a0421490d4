// A test client that sends raw bytes over loopback TCP, for requests no HTTP client
// library would send, and reads responses with a Content-Length body (what
// mlscale::http::Server sends). Shared by the tests of common/http and mlscale-serve.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>

namespace mlscale::testing {

// A client socket that sends raw bytes, for requests no HTTP client library would send.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }
  // False when the server has closed the connection (EPIPE/ECONNRESET).
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      auto sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent <= 0) return false;
      bytes.remove_prefix(size_t(sent));
    }
    return true;
  }
  // Reads one response (header + Content-Length body); empty when the connection closed
  // (or nothing came within 5 s) before a complete one.
  std::string ReadResponse() {
    while (true) {
      auto end = pending_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        auto at = pending_.find("Content-Length: ");
        if (at != std::string::npos && at < end) length = std::stoul(pending_.substr(at + 16));
        if (pending_.starts_with("HTTP/1.1 100")) length = 0;
        if (pending_.size() >= end + 4 + length) {
          auto response = pending_.substr(0, end + 4 + length);
          pending_.erase(0, end + 4 + length);
          return response;
        }
      }
      char chunk[4096];
      auto got = ::recv(fd_, chunk, sizeof chunk, 0);
      if (got <= 0) return {};
      pending_.append(chunk, size_t(got));
    }
  }
  // True when the server closed the connection (read returns 0 or reset) within 5 s.
  bool ClosedByServer() {
    char chunk[4096];
    while (true) {
      auto got = ::recv(fd_, chunk, sizeof chunk, 0);
      if (got == 0) return true;
      if (got < 0) return errno == ECONNRESET;
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

// The status code of a response ("HTTP/1.1 404 ..." -> 404), 0 when there is none.
inline int StatusOf(const std::string& response) {
  if (!response.starts_with("HTTP/1.1 ")) return 0;
  return std::stoi(response.substr(9, 3));
}

inline std::string BodyOf(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }

struct Exchanged {
  int status = 0;    // 0: no response
  std::string body;
  std::string raw;   // the whole response, headers included
};

// One request on a fresh connection ("Connection: close"), its response.
inline Exchanged Exchange(uint16_t port, std::string_view method, std::string_view path, std::string_view body = {},
                          std::string_view extra_headers = {}) {
  RawConnection connection(port);
  std::string request = std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n";
  if (!body.empty() || method == "POST") request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += std::string(extra_headers) + "\r\n" + std::string(body);
  Exchanged result;
  if (!connection.connected() || !connection.Send(request)) return result;
  result.raw = connection.ReadResponse();
  result.status = StatusOf(result.raw);
  if (result.status != 0) result.body = BodyOf(result.raw);
  return result;
}

}  // namespace mlscale::testing
