#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mlscale::kube {
namespace {

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

void WriteAll(int fd, const std::string& data) {
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = send(fd, data.data() + written, data.size() - written, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    written += static_cast<size_t>(n);
  }
}

}  // namespace

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address, Handler handler) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("health address '" + address + "' is not host:port");
  std::string host = address.substr(0, colon);
  if (host.empty()) host = "0.0.0.0";
  int port = 0;
  try {
    port = std::stoi(address.substr(colon + 1));
  } catch (const std::exception&) {
    return InvalidArgument("health address '" + address + "' has no numeric port");
  }
  sockaddr_in socket_address{};
  socket_address.sin_family = AF_INET;
  socket_address.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &socket_address.sin_addr) != 1) {
    return InvalidArgument("health address '" + address + "': not an IPv4 address");
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&socket_address), sizeof socket_address) != 0 || listen(fd, 16) != 0) {
    std::string why = std::strerror(errno);
    close(fd);
    return Unavailable("cannot listen on " + address + ": " + why);
  }
  socklen_t length = sizeof socket_address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&socket_address), &length);
  int wake = eventfd(0, EFD_CLOEXEC);
  if (wake < 0) {
    close(fd);
    return Internal(std::string("eventfd: ") + std::strerror(errno));
  }
  return std::unique_ptr<HttpServer>(new HttpServer(fd, wake, ntohs(socket_address.sin_port), std::move(handler)));
}

HttpServer::HttpServer(int listen_fd, int wake_fd, int port, Handler handler)
    : listen_fd_(listen_fd), wake_fd_(wake_fd), port_(port), handler_(std::move(handler)) {
  thread_ = std::thread([this] { Serve(); });
}

HttpServer::~HttpServer() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
  thread_.join();
  close(listen_fd_);
  close(wake_fd_);
}

void HttpServer::Serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    int connection = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) continue;
    Answer(connection);
    close(connection);
  }
}

void HttpServer::Answer(int connection) {
  // Read the request head, bounded in size and time so a slow client cannot wedge us.
  std::string head;
  char buffer[2048];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
    pollfd fd = {connection, POLLIN, 0};
    if (poll(&fd, 1, 2000) <= 0) return;
    ssize_t n = recv(connection, buffer, sizeof buffer, 0);
    if (n <= 0) return;
    head.append(buffer, static_cast<size_t>(n));
  }
  Reply reply;
  size_t method_end = head.find(' ');
  size_t path_end = method_end == std::string::npos ? std::string::npos : head.find(' ', method_end + 1);
  if (path_end == std::string::npos) {
    reply = {400, "malformed request\n"};
  } else if (head.compare(0, method_end, "GET") != 0) {
    reply = {405, "only GET\n"};
  } else {
    std::string path = head.substr(method_end + 1, path_end - method_end - 1);
    path = path.substr(0, path.find('?'));
    reply = handler_(path);
  }
  WriteAll(connection, "HTTP/1.1 " + std::to_string(reply.status) + " " + std::string(ReasonPhrase(reply.status)) +
                           "\r\nContent-Type: " + reply.content_type + "\r\nContent-Length: " +
                           std::to_string(reply.body.size()) + "\r\nConnection: close\r\n\r\n" + reply.body);
}

}  // namespace mlscale::kube
