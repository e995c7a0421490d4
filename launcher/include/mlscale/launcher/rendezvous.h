// The rendezvous: every rank's launcher learns every rank's data-plane endpoint, and
// no trainer starts before all ranks have the table (a barrier). Rank 0's launcher
// listens on MASTER_PORT; the others connect with retries and jittered backoff (rank
// 0's name may not resolve yet) and send their endpoint; rank 0 answers with the full
// table once every rank has joined. Rank 0 waits at most `timeout` for the others; a
// rank that never arrives is an error naming the missing ranks, on rank 0 and (sent by
// rank 0) on the ranks that joined. The others try to reach rank 0 for `timeout`, and
// once joined wait for its answer up to `timeout` + 3 s.
// A rank that disconnects before every rank has joined may join again (a restarted
// pod); one that disconnects after the table went out fails the rendezvous.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/launcher/socket.h"

namespace mlscale::launcher {

struct RendezvousOptions {
  std::string run_id;           // every rank must give the same one
  // MLSCALE_RUN_TOKEN: every join must present rank 0's (compared in constant time;
  // empty on rank 0: joins must present none). A wrong one is refused at once and
  // logged without the token.
  std::string token;
  std::int64_t rank = 0;
  std::int64_t world_size = 1;
  std::string master_host;      // rank 0's launcher (MASTER_ADDR)
  std::uint16_t master_port = 0;  // (MASTER_PORT)
  std::string bind_address = "0.0.0.0";  // where rank 0 listens
  // The host others reach this rank's data plane at. Empty: the bind address when it
  // is not a wildcard, else the local address of the connection with rank 0 (for rank
  // 0: the address the others connected to).
  std::string advertise_host;
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
};

// Runs the rendezvous for this rank, whose data plane listens on `data_port`.
// Returns the endpoints of all ranks, in rank order.
StatusOr<std::vector<Endpoint>> Rendezvous(const RendezvousOptions& options, std::uint16_t data_port);

}  // namespace mlscale::launcher
