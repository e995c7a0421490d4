#include "mlscale/launcher/wire.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "mlscale/common/run_token.h"

namespace mlscale::launcher {
namespace {

using nlohmann::json;

int MillisecondsUntil(Clock::time_point deadline) {
  auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(remaining, 0, 60'000));
}

std::string TypeName(const json& value) { return value.is_number_integer() ? "integer" : value.type_name(); }

// Reads an integer field that must exist; errors name the field.
StatusOr<std::int64_t> IntegerField(const json& message, const char* key) {
  auto it = message.find(key);
  if (it == message.end()) return InvalidArgument(std::string("missing field '") + key + "'");
  if (!it->is_number_integer()) {
    return InvalidArgument(std::string("field '") + key + "' must be an integer (got " + TypeName(*it) + ")");
  }
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > INT64_MAX) {
    return InvalidArgument(std::string("field '") + key + "' is out of range");
  }
  return it->get<std::int64_t>();
}

StatusOr<std::string> StringField(const json& message, const char* key) {
  auto it = message.find(key);
  if (it == message.end()) return InvalidArgument(std::string("missing field '") + key + "'");
  if (!it->is_string()) return InvalidArgument(std::string("field '") + key + "' must be a string (got " + TypeName(*it) + ")");
  return it->get<std::string>();
}

}  // namespace

std::string EncodeFrame(const json& message) {
  std::string body = message.dump();
  auto length = static_cast<std::uint32_t>(body.size());
  std::string frame(4, '\0');
  frame[0] = static_cast<char>((length >> 24) & 0xff);
  frame[1] = static_cast<char>((length >> 16) & 0xff);
  frame[2] = static_cast<char>((length >> 8) & 0xff);
  frame[3] = static_cast<char>(length & 0xff);
  return frame + body;
}

StatusOr<std::optional<json>> FrameReader::Next() {
  if (buffer_.size() < 4) return std::optional<json>();
  std::uint32_t length = 0;
  for (int i = 0; i < 4; ++i) length = (length << 8) | static_cast<unsigned char>(buffer_[static_cast<std::size_t>(i)]);
  if (length == 0) return DataLoss("malformed message: empty frame");
  if (length > max_bytes_) {
    return DataLoss("malformed message: " + std::to_string(length) + " bytes exceeds the limit of " +
                    std::to_string(max_bytes_));
  }
  if (buffer_.size() < 4 + std::size_t{length}) return std::optional<json>();
  json message = json::parse(buffer_.begin() + 4, buffer_.begin() + 4 + length, nullptr, /*allow_exceptions=*/false);
  buffer_.erase(0, 4 + std::size_t{length});
  if (message.is_discarded()) return DataLoss("malformed message: not valid JSON");
  if (!message.is_object()) return DataLoss("malformed message: not a JSON object");
  return std::optional<json>(std::move(message));
}

Status SendMessage(int fd, const json& message, Clock::time_point deadline) {
  std::string frame = EncodeFrame(message);
  std::size_t sent = 0;
  while (sent < frame.size()) {
    ssize_t n = ::send(fd, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Unavailable(std::string("send: ") + std::strerror(errno));
    if (Clock::now() >= deadline) return DeadlineExceeded("send: timed out");
    pollfd waiting{fd, POLLOUT, 0};
    ::poll(&waiting, 1, MillisecondsUntil(deadline));
  }
  return Status::Ok();
}

StatusOr<json> ReceiveMessage(int fd, FrameReader& reader, Clock::time_point deadline) {
  while (true) {
    auto next = reader.Next();
    if (!next.ok()) return next.status();
    if (next->has_value()) return std::move(**next);
    char buffer[4096];
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) {
      reader.Append(std::string_view(buffer, static_cast<std::size_t>(n)));
      continue;
    }
    if (n == 0) return Unavailable("connection closed by the peer");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Unavailable(std::string("recv: ") + std::strerror(errno));
    if (Clock::now() >= deadline) return DeadlineExceeded("no message before the deadline");
    pollfd waiting{fd, POLLIN, 0};
    ::poll(&waiting, 1, MillisecondsUntil(deadline));
  }
}

json ToJson(const JoinRequest& join) {
  json message{{"type", "join"},    {"protocol", kProtocolVersion},  {"runId", join.run_id},
               {"rank", join.rank}, {"worldSize", join.world_size}, {"endpoint", join.endpoint.ToString()}};
  if (!join.token.empty()) message["token"] = join.token;
  return message;
}

StatusOr<std::string> MessageType(const json& message) {
  auto type = StringField(message, "type");
  if (!type.ok()) return type.status().WithContext("malformed message");
  return type;
}

StatusOr<JoinRequest> ParseJoin(const json& message) {
  auto fail = [](const Status& status) { return status.WithContext("malformed join message"); };
  if (!message.is_object()) return fail(InvalidArgument("not a JSON object"));
  for (const auto& [key, value] : message.items()) {
    static constexpr const char* kFields[] = {"type", "protocol", "runId", "rank", "worldSize", "endpoint", "token"};
    if (std::none_of(std::begin(kFields), std::end(kFields), [&](const char* f) { return key == f; })) {
      return fail(InvalidArgument("unknown field '" + key + "'"));
    }
  }
  auto type = StringField(message, "type");
  if (!type.ok()) return fail(type.status());
  if (*type != "join") return fail(InvalidArgument("type is '" + *type + "', expected 'join'"));
  auto protocol = IntegerField(message, "protocol");
  if (!protocol.ok()) return fail(protocol.status());
  if (*protocol != kProtocolVersion) {
    return fail(InvalidArgument("protocol version " + std::to_string(*protocol) + ", this launcher speaks " +
                                std::to_string(kProtocolVersion)));
  }
  JoinRequest join;
  auto run_id = StringField(message, "runId");
  if (!run_id.ok()) return fail(run_id.status());
  if (run_id->empty() || run_id->size() > 256) return fail(InvalidArgument("runId must have 1 to 256 characters"));
  join.run_id = std::move(*run_id);
  auto world_size = IntegerField(message, "worldSize");
  if (!world_size.ok()) return fail(world_size.status());
  if (*world_size < 1 || *world_size > kMaxWorldSize) {
    return fail(InvalidArgument("worldSize " + std::to_string(*world_size) + " is not in 1.." +
                                std::to_string(kMaxWorldSize)));
  }
  join.world_size = *world_size;
  auto rank = IntegerField(message, "rank");
  if (!rank.ok()) return fail(rank.status());
  if (*rank < 0 || *rank >= join.world_size) {
    return fail(InvalidArgument("rank " + std::to_string(*rank) + " is not in 0.." +
                                std::to_string(join.world_size - 1)));
  }
  join.rank = *rank;
  auto endpoint_text = StringField(message, "endpoint");
  if (!endpoint_text.ok()) return fail(endpoint_text.status());
  auto endpoint = ParseEndpoint(*endpoint_text);
  if (!endpoint.ok()) return fail(endpoint.status());
  join.endpoint = std::move(*endpoint);
  if (message.contains("token")) {
    auto token = StringField(message, "token");
    if (!token.ok()) return fail(token.status());
    if (token->empty() || token->size() > kMaxRunTokenBytes) {
      return fail(InvalidArgument("token must have 1 to " + std::to_string(kMaxRunTokenBytes) + " characters"));
    }
    join.token = std::move(*token);
  }
  return join;
}

StatusOr<std::vector<Endpoint>> ParsePeers(const json& message, std::string_view run_id, std::int64_t world_size) {
  auto fail = [](const Status& status) { return status.WithContext("malformed peers message"); };
  auto got_run_id = StringField(message, "runId");
  if (!got_run_id.ok()) return fail(got_run_id.status());
  if (*got_run_id != run_id) return fail(InvalidArgument("run id '" + *got_run_id + "', expected '" + std::string(run_id) + "'"));
  auto it = message.find("endpoints");
  if (it == message.end() || !it->is_array()) return fail(InvalidArgument("'endpoints' must be an array"));
  if (static_cast<std::int64_t>(it->size()) != world_size) {
    return fail(InvalidArgument(std::to_string(it->size()) + " endpoints for a world of " + std::to_string(world_size)));
  }
  std::vector<Endpoint> endpoints;
  for (const auto& item : *it) {
    if (!item.is_string()) return fail(InvalidArgument("an endpoint is not a string"));
    auto endpoint = ParseEndpoint(item.get<std::string>());
    if (!endpoint.ok()) return fail(endpoint.status());
    endpoints.push_back(std::move(*endpoint));
  }
  return endpoints;
}

}  // namespace mlscale::launcher
#include "mlscale/common/run_token.h"
