#include "mlscale/controllers/trainingjob/progress.h"

#include <spdlog/spdlog.h>

#include <array>
#include <functional>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace mlscale::controllers::trainingjob {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

}  // namespace

StatusOr<ProgressReading> ParseProgressReply(std::string_view body) {
  if (body.size() > kMaxProgressReplyBytes) return InvalidArgument("progress reply larger than 64 KiB");
  nlohmann::json reply = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object()) return InvalidArgument("progress reply is not a JSON object");
  ProgressReading reading;
  for (const char* key : {"progress", "result"}) {
    if (!reply.contains(key) || reply[key].is_null()) continue;
    if (!reply[key].is_object()) return InvalidArgument(std::string("progress reply: '") + key + "' must be an object or null");
  }
  if (reply.contains("progress")) reading.progress = reply["progress"];
  if (reply.contains("result")) reading.result = reply["result"];
  if (reply.contains("time")) {
    if (!reply["time"].is_string()) return InvalidArgument("progress reply: 'time' must be a string");
    reading.time = reply["time"].get<std::string>();
  }
  return reading;
}

StatusOr<ProgressReading> FetchProgress(const std::string& address, int port, const std::string& token,
                                        std::chrono::milliseconds deadline) {
  const std::string where = address + ":" + std::to_string(port);
  boost::system::error_code error;
  const auto endpoint_address = boost::asio::ip::make_address(address, error);
  if (error) return InvalidArgument("progress endpoint: '" + address + "' is not an IP address");
  // Headers and body together, at most: what a reply may send before it is refused.
  constexpr size_t kMaxReplyBytes = kMaxProgressReplyBytes + 16 * 1024;
  try {
    // Asynchronous operations, because only they honour the stream's deadline: one
    // expiry covers connect, write and read together. The reply is fed to the parser as
    // it arrives and counted here, so no reply is read past the cap. Not eager: Boost
    // 1.74's eager parsing skips the Content-Length check against the body limit.
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    http::request<http::empty_body> request{http::verb::get, "/v1/progress", 11};
    request.set(http::field::host, where);
    request.set(http::field::authorization, "Bearer " + token);
    request.set(http::field::user_agent, "mlscale-operator");
    request.set(http::field::connection, "close");
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxProgressReplyBytes);
    parser.header_limit(16 * 1024);
    std::array<char, 8192> chunk{};
    size_t received = 0;
    bool too_large = false;
    std::function<void()> read_more = [&] {
      stream.async_read_some(boost::asio::buffer(chunk), [&](boost::system::error_code read, size_t n) {
        received += n;
        if (received > kMaxReplyBytes) {
          too_large = true;
          return;
        }
        for (size_t offset = 0; offset < n && !parser.is_done();) {
          offset += parser.put(boost::asio::buffer(chunk.data() + offset, n - offset), error);
          if (error == http::error::need_more) {
            error = {};
            break;
          }
          if (error) return;
        }
        if (parser.is_done()) return;
        if (read == boost::asio::error::eof) {
          parser.put_eof(error);
          return;
        }
        if ((error = read)) return;
        read_more();
      });
    };
    stream.expires_after(deadline);
    stream.async_connect(tcp::endpoint(endpoint_address, static_cast<unsigned short>(port)),
                         [&](boost::system::error_code connected) {
      if ((error = connected)) return;
      http::async_write(stream, request, [&](boost::system::error_code written, size_t) {
        if ((error = written)) return;
        read_more();
      });
    });
    io.run();
    if (too_large || error == http::error::body_limit || error == http::error::header_limit) {
      return Unavailable("progress endpoint " + where + ": reply larger than " +
                         std::to_string(kMaxProgressReplyBytes / 1024) + " KiB");
    }
    if (error == beast::error::timeout) return Unavailable("progress endpoint " + where + ": no answer within the deadline");
    if (error) return Unavailable("progress endpoint " + where + ": " + error.message());
    if (!parser.is_done()) return Unavailable("progress endpoint " + where + ": incomplete reply");
    const auto& response = parser.get();
    if (response.result() == http::status::unauthorized) {
      return Status(StatusCode::kUnauthenticated, "progress endpoint " + where + " refused the job's token");
    }
    if (response.result() != http::status::ok) {
      return Unavailable("progress endpoint " + where + " answered " + std::to_string(response.result_int()));
    }
    StatusOr<ProgressReading> reading = ParseProgressReply(response.body());
    if (!reading.ok()) return reading.status().WithContext("progress endpoint " + where);
    return reading;
  } catch (const std::exception& e) {
    return Unavailable("progress endpoint " + where + ": " + e.what());
  }
}

ProgressPoller::ProgressPoller(Options options, std::function<void(const std::string&)> on_change)
    : options_(options),
      on_change_(std::move(on_change)),
      budget_(options.writes_per_second, std::max(1, int(options.writes_per_second))),
      thread_([this](std::stop_token stop) { Loop(stop); }) {}

ProgressPoller::~ProgressPoller() {
  thread_.request_stop();
  thread_.join();
}

void ProgressPoller::Track(const std::string& key, const std::string& address, int port, const std::string& token) {
  std::lock_guard lock(mutex_);
  Target& target = targets_[key];
  if (target.address != address || target.port != port) target.latest.reset();
  target.address = address;
  target.port = port;
  target.token = token;
}

void ProgressPoller::Untrack(const std::string& key) {
  std::lock_guard lock(mutex_);
  targets_.erase(key);
}

std::optional<ProgressReading> ProgressPoller::Latest(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = targets_.find(key);
  if (it == targets_.end()) return std::nullopt;
  return it->second.latest;
}

size_t ProgressPoller::Tracked() const {
  std::lock_guard lock(mutex_);
  return targets_.size();
}

void ProgressPoller::Loop(std::stop_token stop) {
  using Clock = std::chrono::steady_clock;
  while (!stop.stop_requested()) {
    // The target polled longest ago that is due; none due: sleep a little.
    std::string key;
    Target target;
    {
      std::lock_guard lock(mutex_);
      const Clock::time_point now = Clock::now();
      for (const auto& [candidate, state] : targets_) {
        if (now - state.last_poll < options_.min_interval) continue;
        if (key.empty() || state.last_poll < target.last_poll) {
          key = candidate;
          target = state;
        }
      }
      if (!key.empty()) targets_[key].last_poll = now;
    }
    if (key.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (!budget_.Acquire(stop)) return;
    StatusOr<ProgressReading> reading = FetchProgress(target.address, target.port, target.token, options_.deadline);
    if (!reading.ok()) {
      spdlog::debug("trainingjob {}: {}", key, reading.status().ToString());
      continue;
    }
    bool changed = false;
    {
      std::lock_guard lock(mutex_);
      auto it = targets_.find(key);
      if (it == targets_.end()) continue;  // untracked meanwhile
      changed = !it->second.latest || !(*it->second.latest == *reading);
      it->second.latest = std::move(*reading);
    }
    if (changed) on_change_(key);
  }
}

}  // namespace mlscale::controllers::trainingjob
