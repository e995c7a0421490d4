#include "mlscale/http/get.h"

#include <array>
#include <functional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace mlscale::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = boost::asio::ip::tcp;

constexpr std::size_t kMaxHeaderBytes = 16 * 1024;

std::string SizeText(std::size_t bytes) {
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes / 1024) + " KiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace

StatusOr<GetReply> BoundedGet(const GetRequest& request) {
  const std::string where = request.address + ":" + std::to_string(request.port) + request.path;
  boost::system::error_code error;
  const auto address = boost::asio::ip::make_address(request.address, error);
  if (error) return InvalidArgument(where + ": '" + request.address + "' is not an IP address");
  if (request.port < 1 || request.port > 65535) return InvalidArgument(where + ": port must be 1..65535");
  // Header and body together, at most: what a reply may send before it is refused.
  const std::size_t max_reply = request.max_body_bytes + kMaxHeaderBytes;
  try {
    // Asynchronous operations, because only they honour the stream's deadline: one expiry
    // covers connect, write and read together. The reply is fed to the parser as it
    // arrives and counted here, so no reply is read past the cap. Not eager: Boost 1.74's
    // eager parsing skips the Content-Length check against the body limit.
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    bhttp::request<bhttp::empty_body> message{bhttp::verb::get, request.path, 11};
    message.set(bhttp::field::host, request.address + ":" + std::to_string(request.port));
    message.set(bhttp::field::user_agent, "mlscale-operator");
    message.set(bhttp::field::connection, "close");
    for (const auto& [name, value] : request.headers) message.set(name, value);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(request.max_body_bytes);
    parser.header_limit(kMaxHeaderBytes);
    std::array<char, 8192> chunk{};
    std::size_t received = 0;
    bool too_large = false;
    std::function<void()> read_more = [&] {
      stream.async_read_some(boost::asio::buffer(chunk), [&](boost::system::error_code read, std::size_t n) {
        received += n;
        if (received > max_reply) {
          too_large = true;
          return;
        }
        for (std::size_t offset = 0; offset < n && !parser.is_done();) {
          offset += parser.put(boost::asio::buffer(chunk.data() + offset, n - offset), error);
          if (error == bhttp::error::need_more) {
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
    stream.expires_after(request.deadline);
    stream.async_connect(tcp::endpoint(address, static_cast<unsigned short>(request.port)),
                         [&](boost::system::error_code connected) {
                           if ((error = connected)) return;
                           bhttp::async_write(stream, message, [&](boost::system::error_code written, std::size_t) {
                             if ((error = written)) return;
                             read_more();
                           });
                         });
    io.run();
    if (too_large || error == bhttp::error::body_limit || error == bhttp::error::header_limit) {
      return Unavailable(where + ": reply larger than " + SizeText(request.max_body_bytes));
    }
    if (error == beast::error::timeout) return Unavailable(where + ": no answer within the deadline");
    if (error) return Unavailable(where + ": " + error.message());
    if (!parser.is_done()) return Unavailable(where + ": incomplete reply");
    GetReply reply;
    reply.status = static_cast<int>(parser.get().result_int());
    reply.body = std::move(parser.get().body());
    return reply;
  } catch (const std::exception& e) {
    return Unavailable(where + ": " + e.what());
  }
}

}  // namespace mlscale::http
