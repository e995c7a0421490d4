#include "support.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <csignal>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "mlscale/launcher/socket.h"

namespace mlscale::launcher::testing {

namespace fs = std::filesystem;

ScratchDirectory::ScratchDirectory() {
  std::random_device random;
  path_ = fs::temp_directory_path() / ("mlscale-launcher-test-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(random()));
  fs::create_directories(path_);
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

Started StartProgram(const std::vector<std::string>& argv, const std::map<std::string, std::string>& environment,
                     const fs::path& output, pid_t process_group) {
  CommandSpec spec{argv, environment, output.string(), process_group, std::nullopt};
  auto process = ChildProcess::Start(spec);
  if (!process.ok()) ADD_FAILURE() << "cannot start " << argv[0] << ": " << process.status().ToString();
  EXPECT_TRUE(process.ok());
  return Started{std::move(process).value(), output};
}

int WaitFor(ChildProcess& process, std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (auto exit_code = process.Poll()) return *exit_code;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string ReadText(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

nlohmann::json ReadJson(const fs::path& path) {
  return nlohmann::json::parse(ReadText(path), nullptr, /*allow_exceptions=*/false);
}

bool WaitForFile(const fs::path& path, std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return fs::exists(path);
}

std::uint16_t FreePort() {
  auto socket = ListenTcp("127.0.0.1", 0);
  EXPECT_TRUE(socket.ok());
  auto port = LocalPort(socket->get());
  EXPECT_TRUE(port.ok());
  return *port;
}

HttpReply HttpExchange(const std::string& host, std::uint16_t port, const std::string& request,
                       std::chrono::milliseconds limit) {
  HttpReply reply;
  auto deadline = Clock::now() + limit;
  StatusOr<FileDescriptor> connection = Unavailable("not tried");
  while (Clock::now() < deadline && !(connection = ConnectTcp(host, port, deadline)).ok()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!connection.ok()) {
    reply.error = "no connection: " + connection.status().message();
    return reply;
  }
  int fd = connection->get();
  for (std::size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd writable{fd, POLLOUT, 0};
      ::poll(&writable, 1, 100);
    } else {
      break;  // the server may close early (e.g. after refusing oversized headers)
    }
    if (Clock::now() >= deadline) break;
  }
  std::string received;
  while (Clock::now() < deadline) {
    char buffer[4096];
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) {
      received.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) break;
    pollfd readable{fd, POLLIN, 0};
    ::poll(&readable, 1, 100);
  }
  if (Clock::now() >= deadline) reply.error = "the server did not close the connection in time";
  auto end_of_headers = received.find("\r\n\r\n");
  if (!received.starts_with("HTTP/1.1 ") || end_of_headers == std::string::npos) {
    if (reply.error.empty()) reply.error = "no HTTP response (" + std::to_string(received.size()) + " bytes)";
    return reply;
  }
  reply.status = std::atoi(received.c_str() + 9);
  reply.headers = received.substr(0, end_of_headers);
  reply.body = received.substr(end_of_headers + 4);
  return reply;
}

std::string HttpGet(const std::string& path, const std::string& token) {
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n";
  if (!token.empty()) request += "Authorization: Bearer " + token + "\r\n";
  return request + "\r\n";
}

}  // namespace mlscale::launcher::testing
