// Boost.Beast implementation of mlscale::http::Server.
//
// One io_context run by `threads` threads; each connection is a Session on its own strand,
// so a session's steps never run concurrently. A session is a loop:
//   wait for a first byte (idle_timeout) -> read the header (read_timeout starts) ->
//   maybe "100 Continue" -> read the body (same deadline) -> hand the request to the
//   Handler (no timer: the handler owns the time) -> write the response (write_timeout)
//   -> loop while keep-alive and not draining.
// Parse failures are answered (400/413/431) and close the connection; timeouts close it.
#include "mlscale/http/server.h"

#include <algorithm>
#include <cctype>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace mlscale::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

std::string ErrorBody(std::string_view message) {
  // The messages below are fixed ASCII without quotes or backslashes: no escaping needed.
  return std::string("{\"error\": \"") + std::string(message) + "\"}";
}

class ServerImpl;

class Session : public std::enable_shared_from_this<Session>, public Responder::Sink {
 public:
  Session(ServerImpl& server, tcp::socket socket);
  ~Session() override;

  void Start();
  // Drain: closes the connection when it waits for a request; otherwise it closes after
  // its response. Called on any thread.
  void CloseIfIdle();
  void CloseNow();
  void Send(Response response) override;

 private:
  void WaitForRequest();
  void ReadHeader();
  void OnHeader(beast::error_code ec);
  void ReadBody();
  void OnBody(beast::error_code ec);
  void OnReadError(beast::error_code ec);
  void Dispatch();
  void Write(Response response);
  void WriteError(int status, std::string_view message);
  void OnWrite(beast::error_code ec);
  void LingerThenClose();
  void Close();

  ServerImpl& server_;
  beast::tcp_stream stream_;
  std::string remote_address_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  bool idle_ = true;        // waiting for the first byte of a request (strand only)
  bool keep_alive_ = true;  // of the current request
  bool refused_ = false;    // the response is a parse error: linger before closing
  size_t discarded_ = 0;
  bool closed_ = false;
};

class ServerImpl final : public Server {
 public:
  ServerImpl(const ServerOptions& options, Handler handler)
      : options_(options), handler_(std::move(handler)),
        io_(options.io_context ? options.io_context : std::make_shared<asio::io_context>()),
        shared_io_(options.io_context != nullptr), acceptor_(asio::make_strand(*io_)) {}

  ~ServerImpl() override { Stop(); }

  Status Listen() {
    beast::error_code ec;
    auto address = asio::ip::make_address(options_.address, ec);
    if (ec) return InvalidArgument("http server: address '" + options_.address + "' is not an IP address");
    tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Unavailable("http server: cannot listen on " + options_.address + ":" +
                         std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { io_->run(); });
    return Status::Ok();
  }

  uint16_t port() const override { return port_; }
  size_t connections() const override {
    std::lock_guard lock(mutex_);
    return sessions_.size();
  }

  bool Drain(std::chrono::milliseconds deadline) override {
    draining_ = true;
    asio::post(acceptor_.get_executor(), [this] { CloseAcceptor(); });
    for (auto& session : LiveSessions()) session->CloseIfIdle();
    std::unique_lock lock(mutex_);
    return drained_.wait_for(lock, deadline, [this] { return sessions_.empty(); });
  }

  void Stop() override {
    std::call_once(stopped_, [this] {
      draining_ = true;
      asio::post(acceptor_.get_executor(), [this] { CloseAcceptor(); });
      for (auto& session : LiveSessions()) session->CloseNow();
      // Without the work guard the threads return once every connection has closed; a
      // shared context may hold other work (a proxy's exchanges) until their deadlines.
      work_.reset();
      if (shared_io_) {
        asio::post(*io_, [this] { written_off_.store(true); io_->stop(); });
      }
      for (auto& thread : threads_) thread.join();
      written_off_.store(true);
    });
  }

  const ServerOptions& options() const { return options_; }
  bool draining() const { return draining_; }
  // After Stop(): nothing is written any more (a Responder destroyed later, e.g. with a
  // shared context's pending work, must not touch a stopped loop).
  bool stopped() const { return written_off_.load(); }

  void Dispatch(Request&& request, Responder responder) {
    try {
      handler_(std::move(request), std::move(responder));
    } catch (const std::exception&) {
      // The Responder, if it was not moved elsewhere, answers 500 as it is destroyed.
    }
  }

  void Register(Session* session, std::weak_ptr<Session> weak) {
    std::lock_guard lock(mutex_);
    sessions_.emplace(session, std::move(weak));
  }
  void Unregister(Session* session) {
    std::lock_guard lock(mutex_);
    sessions_.erase(session);
    if (sessions_.empty()) drained_.notify_all();
  }

 private:
  // On the acceptor's strand.
  void CloseAcceptor() {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  }

  // The sessions alive now, collected under the lock and used outside it (the last
  // reference released would re-enter Unregister).
  std::vector<std::shared_ptr<Session>> LiveSessions() {
    std::vector<std::shared_ptr<Session>> alive;
    std::lock_guard lock(mutex_);
    for (auto& [session, weak] : sessions_) {
      if (auto strong = weak.lock()) alive.push_back(std::move(strong));
    }
    return alive;
  }

  void Accept() {
    acceptor_.async_accept(asio::make_strand(*io_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec) {
        // Out of file descriptors (EMFILE) or the like: retry shortly, not in a busy loop,
        // and keep serving the connections already open meanwhile.
        accept_retry_.expires_after(std::chrono::milliseconds(50));
        accept_retry_.async_wait([this](beast::error_code wait_error) {
          if (!wait_error) Accept();
        });
        return;
      }
      if (draining_) return;  // the socket closes as it goes out of scope
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (connections() >= options_.max_connections) {
        RefuseOverLimit(socket);
      } else {
        std::make_shared<Session>(*this, std::move(socket))->Start();
      }
      Accept();
    });
  }

  // Best effort, never blocking: a fresh socket's send buffer takes this small answer.
  static void RefuseOverLimit(tcp::socket& socket) {
    static const std::string kBody = ErrorBody("too many connections");
    static const std::string kAnswer = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                       "Connection: close\r\nContent-Length: " +
                                       std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
    beast::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(kAnswer), ignored);
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    socket.close(ignored);
  }

  const ServerOptions options_;
  const Handler handler_;
  std::atomic<bool> draining_ = false;
  std::atomic<bool> written_off_ = false;
  mutable std::mutex mutex_;
  std::condition_variable drained_;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;
  std::once_flag stopped_;
  uint16_t port_ = 0;
  // Declared after what sessions touch in their destructors: the io_context is destroyed
  // first, and with it every session its pending handlers still hold.
  // The last owner of a shared context is expected to be this server (see ServerOptions).
  std::shared_ptr<asio::io_context> io_;
  const bool shared_io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_->get_executor()};
  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_{acceptor_.get_executor()};
  std::vector<std::thread> threads_;
};

// The read buffer holds only bytes the parser has not consumed yet: a header, or a chunk
// header line (whose length Beast does not limit itself). Bounding it turns an endless
// line into error::buffer_overflow (400) instead of unbounded memory.
Session::Session(ServerImpl& server, tcp::socket socket)
    : server_(server), stream_(std::move(socket)), buffer_(server.options().max_header_bytes + 8192) {
  beast::error_code ec;
  auto endpoint = stream_.socket().remote_endpoint(ec);
  if (!ec) remote_address_ = endpoint.address().to_string();
}

Session::~Session() { server_.Unregister(this); }

void Session::Start() {
  server_.Register(this, weak_from_this());
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->WaitForRequest(); });
}

void Session::CloseIfIdle() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    if (self->idle_) self->Close();
  });
}

void Session::CloseNow() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
}

void Session::WaitForRequest() {
  if (closed_ || server_.draining()) return Close();
  if (buffer_.size() > 0) {  // a pipelined request is already here
    idle_ = false;
    return ReadHeader();
  }
  idle_ = true;
  stream_.expires_after(server_.options().idle_timeout);
  stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t bytes) {
    if (ec) return self->Close();  // closed by the client, idle too long, or drained
    self->buffer_.commit(bytes);
    self->idle_ = false;
    self->ReadHeader();
  });
}

void Session::ReadHeader() {
  parser_.emplace();
  parser_->header_limit(uint32_t(std::min<size_t>(server_.options().max_header_bytes, UINT32_MAX)));
  parser_->body_limit(server_.options().max_body_bytes);
  stream_.expires_after(server_.options().read_timeout);
  bhttp::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->OnHeader(ec);
  });
}

void Session::OnHeader(beast::error_code ec) {
  if (ec) return OnReadError(ec);
  if (parser_->is_done()) return Dispatch();
  const auto& header = parser_->get();
  if (beast::iequals(header[bhttp::field::expect], "100-continue")) {
    // The client waits for this before sending the body (curl does for bodies over 1 KiB).
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(stream_, asio::buffer(kContinue), [self = shared_from_this()](beast::error_code e, size_t) {
      if (e) return self->Close();
      self->ReadBody();
    });
    return;
  }
  ReadBody();
}

void Session::ReadBody() {
  bhttp::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->OnBody(ec);
  });
}

void Session::OnBody(beast::error_code ec) {
  if (ec) return OnReadError(ec);
  Dispatch();
}

void Session::OnReadError(beast::error_code ec) {
  keep_alive_ = false;
  if (ec == bhttp::error::header_limit) return WriteError(431, "request header fields too large");
  if (ec == bhttp::error::body_limit) return WriteError(413, "request body too large");
  // The client went away (end_of_stream, partial_message, socket errors) or was too slow
  // (timeout): nobody to answer. Any other parse error is the client's malformed request.
  static const auto& kHttpErrors = bhttp::make_error_code(bhttp::error::bad_method).category();
  if (ec.category() == kHttpErrors && ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
    return WriteError(400, "malformed HTTP request");
  }
  Close();
}

void Session::Dispatch() {
  stream_.expires_never();
  auto message = parser_->release();
  parser_.reset();
  keep_alive_ = message.keep_alive();
  Request request;
  request.method = std::string(message.method_string().data(), message.method_string().size());
  request.target = std::string(message.target().data(), message.target().size());
  auto question = request.target.find('?');
  request.path = request.target.substr(0, question);
  if (question != std::string::npos) request.query = request.target.substr(question + 1);
  request.headers.reserve(8);
  for (const auto& field : message) {
    auto name = field.name_string();
    auto value = field.value();
    request.headers.emplace_back(Lower({name.data(), name.size()}), std::string(value.data(), value.size()));
  }
  request.body = std::move(message.body());
  request.remote_address = remote_address_;
  server_.Dispatch(std::move(request), Responder(shared_from_this()));
}

void Session::Send(Response response) {
  if (server_.stopped()) return;
  asio::dispatch(stream_.get_executor(),
                 [self = shared_from_this(), response = std::move(response)]() mutable {
                   self->Write(std::move(response));
                 });
}

void Session::Write(Response response) {
  if (closed_) return;
  response_ = {};
  response_.version(11);
  response_.result(unsigned(response.status));
  response_.set(bhttp::field::server, server_.options().server_name);
  if (!response.content_type.empty()) response_.set(bhttp::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) response_.insert(name, value);
  response_.body() = std::move(response.body);
  response_.keep_alive(keep_alive_ && !server_.draining());
  response_.prepare_payload();
  stream_.expires_after(server_.options().write_timeout);
  bhttp::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->OnWrite(ec);
  });
}

void Session::WriteError(int status, std::string_view message) {
  keep_alive_ = false;
  refused_ = true;
  Response response;
  response.status = status;
  response.body = ErrorBody(message);
  Write(std::move(response));
}

void Session::OnWrite(beast::error_code ec) {
  if (!ec && refused_) return LingerThenClose();
  if (ec || !response_.keep_alive()) return Close();
  WaitForRequest();
}

// A refused client may still be sending what we refused. Closing a socket with unread
// bytes resets the connection, and the reset can destroy the answer before the client
// reads it; so stop sending, read and discard for a bounded time and size, then close.
void Session::LingerThenClose() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.expires_after(std::chrono::seconds(1));
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t bytes) {
    self->discarded_ += bytes;
    if (ec || self->discarded_ > (1u << 20)) return self->Close();
    self->LingerThenClose();
  });
}

}  // namespace

std::string_view Request::Header(std::string_view lower_case_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_case_name) return value;
  }
  return {};
}

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    if (sink_) Send(Response{500, "application/json", {}, ErrorBody("internal error: request dropped")});
    sink_ = std::move(other.sink_);
  }
  return *this;
}

Responder::~Responder() {
  if (sink_) Send(Response{500, "application/json", {}, ErrorBody("internal error: request dropped")});
}

void Responder::Send(Response response) {
  if (!sink_) return;  // already answered
  auto sink = std::move(sink_);
  sink_.reset();
  sink->Send(std::move(response));
}

Handler SyncHandler(std::function<Response(const Request&)> handle) {
  return [handle = std::move(handle)](Request&& request, Responder responder) {
    responder.Send(handle(request));
  };
}

StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options, Handler handler) {
  if (options.threads < 1) return InvalidArgument("http server: threads must be >= 1");
  if (options.max_connections < 1) return InvalidArgument("http server: max_connections must be >= 1");
  if (!handler) return InvalidArgument("http server: no handler");
  auto server = std::make_unique<ServerImpl>(options, std::move(handler));
  MLSCALE_RETURN_IF_ERROR(server->Listen());
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace mlscale::http
