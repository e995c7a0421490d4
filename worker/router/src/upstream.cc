// Boost.Beast implementation of UpstreamClient. One io_context, run by `threads` threads of
// its own or shared with the router's server; each exchange runs on the strand of its
// connection. A pooled connection is owned by the
// pool while idle and by one exchange while in use, never by two.
#include "mlscale/router/upstream.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace mlscale::router {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Stream = beast::tcp_stream;

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

// Response headers that describe the pod's connection, not the response.
bool IsConnectionHeader(std::string_view lower_name) {
  return lower_name == "connection" || lower_name == "keep-alive" || lower_name == "proxy-connection" ||
         lower_name == "transfer-encoding" || lower_name == "te" || lower_name == "trailer" ||
         lower_name == "upgrade" || lower_name == "content-length" || lower_name == "server" ||
         lower_name == "content-type";
}

class Pool {
 public:
  Pool(size_t max_per_endpoint, std::chrono::milliseconds idle_timeout)
      : max_per_endpoint_(max_per_endpoint), idle_timeout_(idle_timeout) {}

  std::unique_ptr<Stream> Take(const EndpointAddress& endpoint) {
    std::lock_guard lock(mutex_);
    auto it = idle_.find(endpoint);
    if (it == idle_.end()) return nullptr;
    const auto oldest_usable = std::chrono::steady_clock::now() - idle_timeout_;
    auto& entries = it->second;
    while (!entries.empty()) {
      Idle entry = std::move(entries.back());  // most recently used first: the likeliest to be open
      entries.pop_back();
      --count_;
      if (entry.since >= oldest_usable) return std::move(entry.stream);
    }
    return nullptr;
  }

  void Put(const EndpointAddress& endpoint, std::unique_ptr<Stream> stream) {
    std::lock_guard lock(mutex_);
    auto& entries = idle_[endpoint];
    if (entries.size() >= max_per_endpoint_) return;  // closed by the destructor
    stream->expires_never();
    entries.push_back({std::move(stream), std::chrono::steady_clock::now()});
    ++count_;
  }

  void RetainOnly(const std::vector<EndpointAddress>& keep) {
    std::lock_guard lock(mutex_);
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (std::find(keep.begin(), keep.end(), it->first) == keep.end()) {
        count_ -= it->second.size();
        it = idle_.erase(it);
      } else {
        ++it;
      }
    }
  }

  size_t count() const {
    std::lock_guard lock(mutex_);
    return count_;
  }

  void Clear() {
    std::lock_guard lock(mutex_);
    idle_.clear();
    count_ = 0;
  }

 private:
  struct Idle {
    std::unique_ptr<Stream> stream;
    std::chrono::steady_clock::time_point since;
  };
  const size_t max_per_endpoint_;
  const std::chrono::milliseconds idle_timeout_;
  mutable std::mutex mutex_;
  std::map<EndpointAddress, std::deque<Idle>> idle_;
  size_t count_ = 0;
};

class ClientImpl;

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(ClientImpl& client, EndpointAddress endpoint, std::shared_ptr<const UpstreamRequest> request,
           std::function<void(UpstreamResult)> done);
  void Start();

 private:
  void Connect();
  void OnConnect(beast::error_code ec);
  void Write();
  void OnWrite(beast::error_code ec);
  void Read();
  // After the header (`header_only`) and after the whole message.
  void OnRead(beast::error_code ec, bool header_only);
  // No response byte came back: a pooled connection is replaced once, else it is reported.
  void FailedWithoutResponse(const std::string& stage, beast::error_code ec);
  void Finish(UpstreamResult::Outcome outcome, std::string error);

  ClientImpl& client_;
  const EndpointAddress endpoint_;
  const std::shared_ptr<const UpstreamRequest> request_;
  std::function<void(UpstreamResult)> done_;
  // The request line and headers as sent; the body goes from the request itself (no copy).
  std::string head_;
  std::unique_ptr<Stream> stream_;
  bool reused_ = false;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
};

class ClientImpl final : public UpstreamClient {
 public:
  ClientImpl(const UpstreamOptions& options, std::shared_ptr<asio::io_context> io)
      : options_(options), io_(std::move(io)), pool_(options.max_idle_per_endpoint, options.idle_timeout) {
    if (options_.threads > 0) {
      work_.emplace(asio::make_work_guard(*io_));
      for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { io_->run(); });
    }
  }

  ~ClientImpl() override {
    pool_.Clear();
    if (work_) {
      work_.reset();
      io_->stop();
      for (auto& thread : threads_) thread.join();
    }
  }

  void Send(const EndpointAddress& endpoint, std::shared_ptr<const UpstreamRequest> request,
            std::function<void(UpstreamResult)> done) override {
    std::make_shared<Exchange>(*this, endpoint, std::move(request), std::move(done))->Start();
  }

  void RetainOnly(const std::vector<EndpointAddress>& keep) override { pool_.RetainOnly(keep); }
  size_t IdleConnections() const override { return pool_.count(); }

  asio::io_context& io() { return *io_; }
  Pool& pool() { return pool_; }
  const UpstreamOptions& options() const { return options_; }

 private:
  UpstreamOptions options_;
  std::shared_ptr<asio::io_context> io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;  // own threads only
  Pool pool_;
  std::vector<std::thread> threads_;
};

// Methods whose requests carry a body by definition: Content-Length even when it is empty.
bool SendsContentLength(std::string_view method, size_t body_size) {
  return body_size > 0 || method == "POST" || method == "PUT" || method == "PATCH";
}

Exchange::Exchange(ClientImpl& client, EndpointAddress endpoint, std::shared_ptr<const UpstreamRequest> request,
                   std::function<void(UpstreamResult)> done)
    : client_(client), endpoint_(std::move(endpoint)), request_(std::move(request)), done_(std::move(done)) {
  // Written by hand, not through Beast's fields (a tree node per header, per request): the
  // method, target and headers come from a request Beast parsed, which refuses CR, LF and
  // bytes outside tokens in them, so they go out as they came in.
  size_t size = request_->method.size() + request_->target.size() + 48;
  for (const auto& [name, value] : request_->headers) size += name.size() + value.size() + 4;
  head_.reserve(size);
  head_.append(request_->method).append(" ").append(request_->target).append(" HTTP/1.1\r\n");
  for (const auto& [name, value] : request_->headers) head_.append(name).append(": ").append(value).append("\r\n");
  if (SendsContentLength(request_->method, request_->body.size())) {
    head_.append("content-length: ").append(std::to_string(request_->body.size())).append("\r\n");
  }
  head_.append("\r\n");
}

void Exchange::Start() {
  stream_ = client_.pool().Take(endpoint_);
  if (stream_) {
    reused_ = true;
    // Initiated here, not posted to the connection's strand: the connection is this
    // exchange's alone now, and a post would cost an I/O thread's wake-up per request.
    Write();
    return;
  }
  Connect();
}

void Exchange::Connect() {
  reused_ = false;
  beast::error_code ec;
  auto address = asio::ip::make_address(endpoint_.ip, ec);
  if (ec) return Finish(UpstreamResult::Outcome::kNoResponse, "endpoint " + endpoint_.ToString() + ": bad address");
  stream_ = std::make_unique<Stream>(asio::make_strand(client_.io()));
  const auto connect_by = std::chrono::steady_clock::now() + client_.options().connect_timeout;
  stream_->expires_at(std::min(connect_by, request_->deadline));
  stream_->async_connect(tcp::endpoint(address, endpoint_.port),
                         [self = shared_from_this()](beast::error_code error) { self->OnConnect(error); });
}

void Exchange::OnConnect(beast::error_code ec) {
  if (ec) {
    if (ec == beast::error::timeout && std::chrono::steady_clock::now() >= request_->deadline) {
      return Finish(UpstreamResult::Outcome::kDeadlineExceeded, "deadline passed while connecting to " + endpoint_.ToString());
    }
    return Finish(UpstreamResult::Outcome::kNoResponse, "connect to " + endpoint_.ToString() + ": " + ec.message());
  }
  beast::error_code ignored;
  stream_->socket().set_option(tcp::no_delay(true), ignored);
  Write();
}

void Exchange::Write() {
  stream_->expires_at(request_->deadline);
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(request_->body)};
  asio::async_write(*stream_, buffers, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->OnWrite(ec);
  });
}

void Exchange::OnWrite(beast::error_code ec) {
  if (ec == beast::error::timeout) {
    return Finish(UpstreamResult::Outcome::kDeadlineExceeded, "deadline passed while sending to " + endpoint_.ToString());
  }
  if (ec) return FailedWithoutResponse("send to", ec);
  Read();
}

void Exchange::Read() {
  buffer_.clear();
  parser_.emplace();
  parser_->header_limit(uint32_t(std::min<size_t>(client_.options().max_response_header_bytes, UINT32_MAX)));
  // Explicitly an optional: an integer argument does not select the limiting overload in Boost 1.74.
  parser_->body_limit(boost::optional<std::uint64_t>(client_.options().max_response_body_bytes));
  if (request_->method == "HEAD") parser_->skip(true);
  // The header first: Boost 1.74's parser does not apply body_limit to a Content-Length
  // in eager mode (which async_read uses), so that limit is checked here.
  bhttp::async_read_header(*stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->OnRead(ec, /*header_only=*/true);
  });
}

void Exchange::OnRead(beast::error_code ec, bool header_only) {
  using Outcome = UpstreamResult::Outcome;
  if (!ec && header_only) {
    const auto length = parser_->content_length();
    if (length && *length > client_.options().max_response_body_bytes) {
      return Finish(Outcome::kResponseTooLarge, "response from " + endpoint_.ToString() + " exceeds the size limit (" +
                                                    std::to_string(*length) + " body bytes)");
    }
    if (!parser_->is_done()) {
      bhttp::async_read(*stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code error, size_t) {
        self->OnRead(error, /*header_only=*/false);
      });
      return;
    }
  }
  if (!ec) {
    auto message = parser_->release();
    UpstreamResult result;
    result.outcome = Outcome::kResponse;
    result.status = int(message.result_int());
    for (const auto& field : message) {
      std::string name = Lower({field.name_string().data(), field.name_string().size()});
      std::string value(field.value().data(), field.value().size());
      if (name == "content-type") {
        result.content_type = std::move(value);
      } else if (!IsConnectionHeader(name)) {
        result.headers.emplace_back(std::move(name), std::move(value));
      }
    }
    result.body = std::move(message.body());
    // Reuse only a connection left exactly at a message boundary.
    if (message.keep_alive() && !message.need_eof() && buffer_.size() == 0) {
      client_.pool().Put(endpoint_, std::move(stream_));
    }
    stream_.reset();
    auto done = std::move(done_);
    done(std::move(result));
    return;
  }
  if (ec == beast::error::timeout) {
    return Finish(Outcome::kDeadlineExceeded, "deadline passed waiting for " + endpoint_.ToString());
  }
  const bool got_bytes = parser_->got_some() || buffer_.size() > 0;
  if (!got_bytes) return FailedWithoutResponse("response from", ec);
  if (ec == bhttp::error::body_limit || ec == bhttp::error::header_limit) {
    return Finish(Outcome::kResponseTooLarge, "response from " + endpoint_.ToString() + " exceeds the size limit (" +
                                                  ec.message() + ")");
  }
  if (ec == bhttp::error::partial_message || ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == bhttp::error::end_of_stream) {
    return Finish(Outcome::kMalformedResponse, "connection to " + endpoint_.ToString() + " closed mid-response");
  }
  return Finish(Outcome::kMalformedResponse, "malformed response from " + endpoint_.ToString() + ": " + ec.message());
}

void Exchange::FailedWithoutResponse(const std::string& stage, beast::error_code ec) {
  if (reused_ && std::chrono::steady_clock::now() < request_->deadline) {
    // The pod closed an idle pooled connection (or is going away): a fresh connection
    // tells which, and costs no retry of the router's.
    stream_.reset();
    return Connect();
  }
  Finish(UpstreamResult::Outcome::kNoResponse, stage + " " + endpoint_.ToString() + ": " + ec.message());
}

void Exchange::Finish(UpstreamResult::Outcome outcome, std::string error) {
  stream_.reset();  // a failed connection is never pooled
  UpstreamResult result;
  result.outcome = outcome;
  result.error = std::move(error);
  auto done = std::move(done_);
  done(std::move(result));
}

}  // namespace

StatusOr<std::unique_ptr<UpstreamClient>> UpstreamClient::Create(const UpstreamOptions& options,
                                                                 std::shared_ptr<asio::io_context> io_context) {
  if (options.threads < 0 || options.threads > 256) return InvalidArgument("upstream threads must be 0..256");
  if (options.threads == 0 && !io_context) return InvalidArgument("upstream threads 0 needs a shared io_context");
  if (options.threads > 0 && io_context) return InvalidArgument("upstream: either threads of its own or a shared io_context");
  if (options.connect_timeout.count() < 1) return InvalidArgument("upstream connect timeout must be >= 1 ms");
  if (options.max_response_body_bytes < 1 || options.max_response_header_bytes < 256) {
    return InvalidArgument("upstream response limits: body >= 1 byte, header >= 256 bytes");
  }
  if (!io_context) io_context = std::make_shared<asio::io_context>();
  return std::unique_ptr<UpstreamClient>(std::make_unique<ClientImpl>(options, std::move(io_context)));
}

}  // namespace mlscale::router
