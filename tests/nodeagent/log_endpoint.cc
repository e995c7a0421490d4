#include "log_endpoint.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <list>
#include <mutex>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

namespace mlscale::nodeagent {
namespace {

constexpr size_t kMaxRequestHeaderBytes = 16 * 1024;
constexpr int kSocketTimeoutSeconds = 10;
constexpr auto kFollowPoll = std::chrono::milliseconds(100);
constexpr size_t kChunkBytes = 64 * 1024;

std::optional<int64_t> ParseNonNegative(std::string_view text) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

Status ParseBool(std::string_view name, std::string_view value, bool& out) {
  if (value == "true" || value == "1") out = true;
  else if (value == "false" || value == "0" || value.empty()) out = false;
  else return InvalidArgument("query parameter " + std::string(name) + " must be true or false");
  return Status::Ok();
}

std::string SystemError(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  if (code == 0) return "unknown TLS error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

}  // namespace

StatusOr<LogRequest> ParseLogRequest(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query = path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view();
  constexpr std::string_view kPrefix = "/containerLogs/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return NotFound("no such endpoint: only /containerLogs/ is served");
  std::vector<std::string> parts;
  std::string_view rest = path.substr(kPrefix.size());
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    parts.emplace_back(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  bool valid = parts.size() == 3;
  for (const std::string& part : parts) valid = valid && !part.empty() && part != "." && part != "..";
  if (!valid) return InvalidArgument("the path must be /containerLogs/<namespace>/<pod>/<container>");
  LogRequest request;
  request.namespace_name = parts[0];
  request.pod = parts[1];
  request.container = parts[2];
  while (!query.empty()) {
    std::string_view pair = query.substr(0, query.find('&'));
    query = pair.size() < query.size() ? query.substr(pair.size() + 1) : std::string_view();
    std::string_view name = pair.substr(0, pair.find('='));
    std::string_view value = name.size() < pair.size() ? pair.substr(name.size() + 1) : std::string_view();
    if (name == "follow") {
      MLSCALE_RETURN_IF_ERROR(ParseBool(name, value, request.follow));
    } else if (name == "previous") {
      MLSCALE_RETURN_IF_ERROR(ParseBool(name, value, request.previous));
    } else if (name == "tailLines" || name == "limitBytes") {
      std::optional<int64_t> number = ParseNonNegative(value);
      if (!number || (name == "limitBytes" && *number == 0)) {
        return InvalidArgument("query parameter " + std::string(name) + " must be a " +
                               (name == "limitBytes" ? "positive" : "non-negative") + " integer");
      }
      (name == "tailLines" ? request.tail_lines : request.limit_bytes) = *number;
    } else if (name == "timestamps") {
      bool timestamps = false;
      MLSCALE_RETURN_IF_ERROR(ParseBool(name, value, timestamps));
      if (timestamps) {
        return InvalidArgument("timestamps are not recorded by the test node agent (its logs have no per-line times)");
      }
    } else if (name == "sinceSeconds" || name == "sinceTime") {
      return InvalidArgument(std::string(name) + " is not supported by the test node agent (no per-line times)");
    }
  }
  return request;
}

std::vector<LogRun> ParseRuns(std::string_view text) {
  std::vector<LogRun> runs;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    std::optional<int64_t> offset = ParseNonNegative(std::string_view(line).substr(space + 1));
    if (!offset) continue;
    std::string event = line.substr(0, space);
    if (event == "start") {
      runs.push_back({*offset, std::nullopt});
    } else if (event == "end" && !runs.empty() && !runs.back().end && *offset >= runs.back().start) {
      runs.back().end = *offset;
    }
  }
  return runs;
}

StatusOr<LogRun> SelectRun(const std::vector<LogRun>& runs, const LogRequest& request) {
  if (request.previous) {
    if (runs.size() < 2) {
      return InvalidArgument("previous terminated container \"" + request.container + "\" in pod \"" + request.pod +
                             "\" not found");
    }
    return runs[runs.size() - 2];
  }
  if (runs.empty()) {
    return InvalidArgument("container \"" + request.container + "\" in pod \"" + request.pod +
                           "\" is waiting to start");
  }
  return runs.back();
}

int64_t TailOffset(const std::function<std::string(int64_t, size_t)>& read, int64_t begin, int64_t end,
                   int64_t lines) {
  if (lines <= 0) return end;
  int64_t found = 0;
  for (int64_t block_end = end; block_end > begin;) {
    int64_t block_start = std::max(begin, block_end - static_cast<int64_t>(kChunkBytes));
    std::string block = read(block_start, static_cast<size_t>(block_end - block_start));
    for (int64_t i = static_cast<int64_t>(block.size()) - 1; i >= 0; --i) {
      int64_t at = block_start + i;
      if (block[static_cast<size_t>(i)] != '\n' || at == end - 1) continue;
      if (++found == lines) return at + 1;
    }
    block_end = block_start;
  }
  return begin;
}

namespace {

// One TLS connection answered on its own thread; the socket is closed when it ends.
class Connection {
 public:
  Connection(SSL* ssl, int fd) : ssl_(ssl), fd_(fd) {}
  ~Connection() {
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
    close(fd_);
  }
  bool Write(std::string_view data) {
    while (!data.empty()) {
      int written = SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 20)));
      if (written <= 0) return false;
      data.remove_prefix(static_cast<size_t>(written));
    }
    return true;
  }
  bool WriteChunk(std::string_view data) {
    if (data.empty()) return true;
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return Write(size) && Write(data) && Write("\r\n");
  }
  // Reads the request head (up to the blank line); "" on failure or when too long.
  std::string ReadHead() {
    std::string head;
    char buffer[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      if (head.size() > kMaxRequestHeaderBytes) return "";
      int got = SSL_read(ssl_, buffer, sizeof buffer);
      if (got <= 0) return "";
      head.append(buffer, static_cast<size_t>(got));
    }
    return head;
  }
  // The client closed its side (or sent something: it may not, after its request).
  bool PeerGone() {
    pollfd entry{fd_, POLLIN | POLLRDHUP, 0};
    return poll(&entry, 1, 0) > 0 && entry.revents != 0;
  }
  SSL* ssl() { return ssl_; }

 private:
  SSL* ssl_;
  int fd_;
};

std::string ReadRange(const std::string& path, int64_t offset, size_t size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(offset);
  std::string data(size, '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  data.resize(static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return data;
}

int64_t FileSize(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0 ? static_cast<int64_t>(info.st_size) : 0;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class TlsLogServer final : public LogServer {
 public:
  TlsLogServer(LogServerOptions options, SSL_CTX* context, int listen_fd, uint16_t port)
      : options_(std::move(options)), context_(context), listen_fd_(listen_fd), port_(port) {
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~TlsLogServer() override {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    close(listen_fd_);
    std::unique_lock lock(mutex_);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);  // wakes blocked reads and writes
    drained_.wait(lock, [this] { return active_ == 0; });
    lock.unlock();
    SSL_CTX_free(context_);
  }
  uint16_t port() const override { return port_; }

 private:
  void Accept() {
    while (!stopping_) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // shut down
      }
      {
        std::lock_guard lock(mutex_);
        if (active_ >= options_.max_connections || stopping_) {
          close(fd);
          continue;
        }
        ++active_;
        open_fds_.push_back(fd);
      }
      std::thread([this, fd] {
        Serve(fd);
        std::lock_guard lock(mutex_);
        open_fds_.remove(fd);
        --active_;
        drained_.notify_all();
      }).detach();
    }
  }

  void Serve(int fd) {
    timeval timeout{kSocketTimeoutSeconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    SSL* ssl = SSL_new(context_);
    if (ssl == nullptr) {
      close(fd);
      return;
    }
    SSL_set_fd(ssl, fd);
    Connection connection(ssl, fd);
    if (SSL_accept(ssl) != 1) {  // includes a client certificate the CA did not sign
      spdlog::debug("log endpoint: TLS handshake refused: {}", OpenSslError());
      return;
    }
    std::string head = connection.ReadHead();
    if (head.empty()) return;
    std::string line = head.substr(0, head.find("\r\n"));
    std::istringstream words(line);
    std::string method, target;
    words >> method >> target;
    if (method != "GET") {
      Answer(connection, 405, "only GET is served");
      return;
    }
    StatusOr<LogRequest> request = ParseLogRequest(target);
    if (!request.ok()) {
      Answer(connection, request.status().code() == StatusCode::kNotFound ? 404 : 400, request.status().message());
      return;
    }
    std::optional<std::string> log_file = options_.log_file(request->namespace_name, request->pod, request->container);
    if (!log_file) {
      Answer(connection, 404, "pod " + request->namespace_name + "/" + request->pod + " does not run on this node");
      return;
    }
    StatusOr<LogRun> run = SelectRun(ParseRuns(ReadText(*log_file + ".runs")), *request);
    if (!run.ok()) {
      Answer(connection, 400, run.status().message());
      return;
    }
    Stream(connection, *request, *log_file, *run);
  }

  void Answer(Connection& connection, int code, const std::string& message) {
    const char* reason = code == 404 ? "Not Found" : code == 405 ? "Method Not Allowed" : "Bad Request";
    connection.Write("HTTP/1.1 " + std::to_string(code) + " " + reason +
                     "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
                     std::to_string(message.size()) + "\r\n\r\n" + message);
  }

  // Sends the run's log from its start (or the tail), then, when following, what the run
  // writes until it ends, the client leaves or the server stops.
  void Stream(Connection& connection, const LogRequest& request, const std::string& log_file, LogRun run) {
    if (!connection.Write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                          "Connection: close\r\n\r\n")) {
      return;
    }
    auto read = [&](int64_t offset, size_t size) { return ReadRange(log_file, offset, size); };
    int64_t position = run.start;
    int64_t end = run.end.value_or(FileSize(log_file));
    if (request.tail_lines) position = TailOffset(read, run.start, end, *request.tail_lines);
    int64_t budget = request.limit_bytes.value_or(INT64_MAX);
    bool follow = request.follow && !request.previous;
    while (!stopping_ && budget > 0) {
      if (position < end) {
        size_t size = static_cast<size_t>(std::min<int64_t>({end - position, budget, int64_t{kChunkBytes}}));
        std::string data = read(position, size);
        if (data.empty()) break;  // the file shrank: nothing more to say
        if (!connection.WriteChunk(data)) return;
        position += static_cast<int64_t>(data.size());
        budget -= static_cast<int64_t>(data.size());
        continue;
      }
      if (!follow || run.end || connection.PeerGone()) break;
      std::this_thread::sleep_for(kFollowPoll);
      std::optional<std::string> still = options_.log_file(request.namespace_name, request.pod, request.container);
      if (!still || *still != log_file) break;  // the pod is gone
      std::vector<LogRun> runs = ParseRuns(ReadText(log_file + ".runs"));
      for (const LogRun& seen : runs) {
        if (seen.start == run.start) run.end = seen.end;
      }
      end = run.end.value_or(FileSize(log_file));
    }
    connection.Write("0\r\n\r\n");
  }

  const LogServerOptions options_;
  SSL_CTX* context_;
  int listen_fd_;
  uint16_t port_;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mutex_;
  std::condition_variable drained_;
  size_t active_ = 0;
  std::list<int> open_fds_;
};

}  // namespace

StatusOr<std::unique_ptr<LogServer>> LogServer::Start(LogServerOptions options) {
  if (!options.log_file) return InvalidArgument("log server: no log_file lookup");
  SSL_CTX* context = SSL_CTX_new(TLS_server_method());
  if (context == nullptr) return Internal("log server: " + OpenSslError());
  auto fail = [context](Status status) {
    SSL_CTX_free(context);
    return status;
  };
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(context, options.cert_file.c_str()) != 1) {
    return fail(InvalidArgument("log server: cannot load the serving certificate " + options.cert_file + ": " +
                                OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(context, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(context) != 1) {
    return fail(InvalidArgument("log server: cannot load the key " + options.key_file +
                                " (or it does not match the certificate): " + OpenSslError()));
  }
  if (SSL_CTX_load_verify_locations(context, options.client_ca_file.c_str(), nullptr) != 1) {
    return fail(InvalidArgument("log server: cannot load the client CA " + options.client_ca_file + ": " +
                                OpenSslError()));
  }
  SSL_CTX_set_client_CA_list(context, SSL_load_client_CA_file(options.client_ca_file.c_str()));
  SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(Unavailable(SystemError("log server: socket")));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(options.port);
  if (inet_pton(AF_INET, options.address.c_str(), &address.sin_addr) != 1) {
    close(fd);
    return fail(InvalidArgument("log server: address '" + options.address + "' is not an IPv4 address"));
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(fd, 64) != 0) {
    Status error = Unavailable(SystemError("log server: listening on " + options.address + ":" +
                                           std::to_string(options.port)));
    close(fd);
    return fail(error);
  }
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  return std::unique_ptr<LogServer>(new TlsLogServer(std::move(options), context, fd, ntohs(address.sin_port)));
}

}  // namespace mlscale::nodeagent
