// The rendezvous wire format: every message is a 4-byte big-endian length followed by
// that many bytes of JSON (an object), at most kMaxMessageBytes. Messages:
//   join   rank -> rank 0  {"type":"join","protocol":1,"runId","rank","worldSize","endpoint"[,"token"]}
//          ("token": MLSCALE_RUN_TOKEN, present when the job has one)
//   peers  rank 0 -> rank  {"type":"peers","runId","endpoints":["host:port", ... in rank order]}
//   ready  rank -> rank 0  {"type":"ready","rank"}        (barrier: "I have the table")
//   go     rank 0 -> rank  {"type":"go"}                  (every rank has the table)
//   error  rank 0 -> rank  {"type":"error","message"}     (the rendezvous failed; why)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"
#include "mlscale/launcher/socket.h"

namespace mlscale::launcher {

inline constexpr std::uint32_t kMaxMessageBytes = 1 << 20;
inline constexpr int kProtocolVersion = 1;
// The most ranks one rendezvous accepts (the same bound as a TrainingJob's replicas).
inline constexpr std::int64_t kMaxWorldSize = 4096;

// The length prefix and the JSON text of `message`.
std::string EncodeFrame(const nlohmann::json& message);

// Cuts a byte stream into messages. Feed it what arrives; Next() returns each
// complete message, nothing while one is incomplete, or an error for a frame that is
// too long, empty, not JSON or not a JSON object (the stream is unusable after that).
class FrameReader {
 public:
  explicit FrameReader(std::uint32_t max_bytes = kMaxMessageBytes) : max_bytes_(max_bytes) {}
  void Append(std::string_view bytes) { buffer_.append(bytes); }
  StatusOr<std::optional<nlohmann::json>> Next();

 private:
  std::uint32_t max_bytes_;
  std::string buffer_;
};

// Writes one message to a non-blocking socket, waiting for it to drain until `deadline`.
Status SendMessage(int fd, const nlohmann::json& message, Clock::time_point deadline);
// Reads one message from a non-blocking socket until `deadline`; kUnavailable when the
// peer closes the connection, kDeadlineExceeded when the deadline passes.
StatusOr<nlohmann::json> ReceiveMessage(int fd, FrameReader& reader, Clock::time_point deadline);

struct JoinRequest {
  std::string run_id;
  std::int64_t rank = 0;
  std::int64_t world_size = 0;
  Endpoint endpoint;  // the rank's data-plane endpoint
  std::string token;  // the run token; empty: none given
};
nlohmann::json ToJson(const JoinRequest& join);
// Checks every field: type, protocol, non-empty runId (<= 256 bytes), 0 <= rank <
// worldSize <= kMaxWorldSize, a valid endpoint, an optional non-empty token of at most
// kMaxRunTokenBytes, and no other fields. Error messages never quote the token.
StatusOr<JoinRequest> ParseJoin(const nlohmann::json& message);

// The message's "type" field, or an error when it is missing or not a string.
StatusOr<std::string> MessageType(const nlohmann::json& message);
// A peers message: the endpoints, checked (world_size of them, each valid, run id matches).
StatusOr<std::vector<Endpoint>> ParsePeers(const nlohmann::json& message, std::string_view run_id,
                                           std::int64_t world_size);

}  // namespace mlscale::launcher
