// Collective communication between the ranks of one training job.
//
// Three implementations, chosen from the environment the launcher sets (torchrun names):
//   - one process (no WORLD_SIZE, or WORLD_SIZE=1): no communication;
//   - under mpirun (OMPI_COMM_WORLD_SIZE is set): MPI_COMM_WORLD, MLSCALE_* ignored;
//   - otherwise a ring AllReduce over TCP between the endpoints in MLSCALE_PEERS
//     ("host:port,host:port,...", one per rank in rank order). MLSCALE_LISTEN_FD is an
//     inherited socket, already bound and listening, that is this rank's endpoint (when
//     absent the rank binds MLSCALE_PEERS[RANK] itself). Peers must present the same
//     MLSCALE_RUN_TOKEN (compared in constant time; refusals are logged without it)
//     and MLSCALE_RUN_ID or they are turned away. All peers must connect within
//     MLSCALE_CONNECT_TIMEOUT_SECONDS (default 120) or the error names the missing ranks.
//     Ranks on one host sum through shared memory when all of them can (see TcpRingOptions).
// A rank that dies (or fails and exits) makes every other rank's next collective fail with
// StatusCode::kAborted and a message that starts "rank N", within a second or two, never
// a hang: each pair of ranks keeps a control connection that a watchdog thread watches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::worker {

enum class DataType { kFloat32, kFloat64, kBFloat16, kInt32, kInt64 };
size_t DataTypeSize(DataType type);
std::string_view DataTypeName(DataType type);

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "single", "tcp-ring" or "mpi".
  virtual std::string_view name() const = 0;
  // What AllReduce travels over: for the ring "shared-memory" (every rank on one host),
  // "tcp+shared-memory" (this rank reaches a ring neighbour through shared memory, other
  // hops are TCP) or "tcp"; else name().
  virtual std::string_view transport() const { return name(); }

  // Replaces `count` elements of `type` at `data` by their sum over all ranks. Every rank
  // calls it with the same count and type. bfloat16 sums are accumulated in float32.
  virtual Status AllReduceSum(void* data, size_t count, DataType type) = 0;
  // Copies `bytes` bytes at `data` on rank `root` to every other rank.
  virtual Status Broadcast(void* data, size_t bytes, int root) = 0;
  // The two halves of an AllReduce, for a sharded optimizer step: ReduceScatterSum leaves
  // the sum over all ranks (the same bits AllReduceSum gives) in this rank's share of the
  // `count` elements (ShareOf; the rest is unspecified); AllGather copies every rank's
  // share of `count` elements to every other rank. The defaults are an AllReduceSum and a
  // Broadcast per share: correct, but dearer than one AllReduceSum (see ShardsCheaply).
  virtual Status ReduceScatterSum(void* data, size_t count, DataType type) { return AllReduceSum(data, count, type); }
  virtual Status AllGather(void* data, size_t count, DataType type);
  // Whether ReduceScatterSum and AllGather of `count` elements of `type` together move
  // about what one AllReduceSum of them does.
  virtual bool ShardsCheaply(size_t /*count*/, DataType /*type*/) const { return false; }
  virtual Status Barrier() = 0;
  // Ends the job cleanly: after every rank has called it, peers closing their connections
  // are no longer failures. Tells the peers about `failure` when it is not OK, so that
  // they report this rank's error rather than a lost connection.
  virtual Status Shutdown(const Status& failure) = 0;
};

// Rank `rank`'s share of `count` elements over `size` ranks: [first, second).
inline std::pair<size_t, size_t> ShareOf(size_t count, int rank, int size) {
  return {count * size_t(rank) / size_t(size), count * size_t(rank + 1) / size_t(size)};
}

// target[i] = first[i] + second[i] for `count` elements of `type` (the reduction every
// implementation uses). `target` may be `first` or `second` itself (a sum in place) but
// must not overlap them otherwise.
void ReduceSum(void* target, const void* first, const void* second, size_t count, DataType type);
// Sums `count` elements of `source` into `target` (target = target + source).
inline void ReduceSum(void* target, const void* source, size_t count, DataType type) {
  ReduceSum(target, target, source, count, type);
}

std::unique_ptr<Communicator> CreateSingleProcessCommunicator();

struct TcpRingOptions {
  int rank = 0;
  int world_size = 1;
  std::vector<std::string> peers;  // "host:port" per rank
  int listen_fd = -1;              // bound and listening; -1: bind peers[rank]
  std::string run_id;
  std::string token;  // every peer must present the same (empty: none)
  double connect_timeout_seconds = 120;  // for all peers to connect
  // AllReduce through a shared-memory segment when every rank is on this host and can
  // open it (MLSCALE_TRANSPORT=auto, the default); false keeps it on TCP
  // (MLSCALE_TRANSPORT=tcp).
  bool shared_memory = true;
  // When not every rank shares this host: each ring hop between two ranks that do goes
  // through a shared-memory channel, the others over TCP (the same algorithm, so the same
  // bits as all-TCP). Ranks share a host when their identities are equal; empty: this
  // process's (the boot id and which /dev/shm it sees: pods of one node differ).
  std::string host_identity;
  // Shared memory: messages up to this size (any size with 2 ranks) are summed by every
  // rank from all ranks' copies (one wait); larger ones by reduce-scatter and gather (two
  // waits per MiB). Measured in tests/bench/results/allreduce.md.
  // Every path of either transport sums each element in one fixed order of the ranks
  // (shared memory: 0, 1, ..., n - 1; TCP: the ring's, from the rank that starts the
  // element's chunk), so the result never depends on timing or on the path taken.
  size_t direct_max_bytes = 64 << 10;
  // Shared memory: messages from this size up are read and written straight from and to
  // the peers' buffers (process_vm_readv/writev, one copy instead of staging) when every
  // rank can reach every other's memory (checked at rendezvous; not across pid
  // namespaces). Unset: 16 KiB with 2 ranks, 512 KiB with more (measured on 2 cores,
  // tests/bench/results/allreduce.md). SIZE_MAX: never.
  std::optional<size_t> single_copy_min_bytes;
  // TCP: messages up to this size are passed whole around the ring (n - 1 steps, an
  // all-gather) and summed by every rank, instead of the ring's 2 (n - 1) steps of
  // reduce-scatter and all-gather; the sum is the same bits (the ring's order).
  size_t tcp_direct_max_bytes = 64 << 10;
  // How long a wait spins before it sleeps (on a futex in shared memory, in poll on TCP)
  // (MLSCALE_SPIN_MICROSECONDS); -1: 10 us when the host has a CPU for every rank, else 0
  // (a spinning rank would hold the CPU of the rank it waits for).
  int spin_microseconds = -1;
  // Shared memory: how long a wait then gives the CPU away (sched_yield) before it sleeps
  // on a futex (MLSCALE_YIELD_MICROSECONDS). Waking from a futex costs a wake-up and an
  // idle CPU per wait, twice per collective; with 4 ranks on 2 cores that was 40 % of a
  // 512 KiB AllReduce (tests/bench/results/allreduce.md, session 15).
  int yield_microseconds = 1000;
};

// Connects to every peer (a control connection per pair, a data connection to each ring
// neighbour). Fails naming the ranks that did not arrive before the timeout, or at once
// with kUnauthenticated when a peer refuses this rank's token. A connection with a
// wrong token is turned away without failing the job (a stray must not stop it).
StatusOr<std::unique_ptr<Communicator>> ConnectTcpRing(const TcpRingOptions& options);

// MPI_COMM_WORLD (MPI_Init_thread at MPI_THREAD_SERIALIZED on first use; finalized when
// the last MPI communicator is destroyed).
StatusOr<std::unique_ptr<Communicator>> CreateMpiCommunicator();

// Where this process runs in the job, from the environment described above.
struct ProcessEnvironment {
  enum class Mode { kSingle, kTcpRing, kMpi };
  Mode mode = Mode::kSingle;
  int rank = 0, world_size = 1, local_rank = 0;
  TcpRingOptions tcp;
};
StatusOr<ProcessEnvironment> ReadProcessEnvironment();

// The communicator for `environment`.
StatusOr<std::unique_ptr<Communicator>> CreateCommunicator(const ProcessEnvironment& environment);

// Splits "host:port".
StatusOr<std::pair<std::string, uint16_t>> ParseEndpoint(const std::string& endpoint);

}  // namespace mlscale::worker
