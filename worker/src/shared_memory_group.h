// AllReduce through one POSIX shared-memory segment for the ranks of a job that share a
// host (internal; the TCP ring negotiates it at rendezvous, see tcp_ring.cc).
//
// Layout: a header with one sequence word per rank ("phases posted", each on its own
// cache line) and a futex word, then two staging halves per rank and one result area.
// Every collective is a fixed sequence of phases: a rank writes into its staging half
// (phase j uses half j % 2), posts phase j, and waits until every rank posted j.
// Messages travel in pieces of one staging half.
//   - direct (small messages, and all at 2 ranks; one phase per piece): each rank sums
//     all staging halves itself;
//   - reduce-scatter + gather (large, two phases per piece): rank r sums sub-range r of
//     every half into the result area, posts, and after the second wait every rank
//     copies the whole result out;
//   - single copy (large messages, when every rank can read and write every other rank's
//     memory: process_vm_readv/writev, checked at rendezvous; two phases per message):
//     each rank posts its buffer's address; rank r reads share r of every rank's buffer
//     straight from the peers, sums it and writes the sum into share r of every buffer;
//     the second phase says all shares are written. No staging: each byte is read and
//     written once per rank instead of staged, read twice and written (2 bytes of memory
//     traffic per byte instead of 5), as OpenMPI's vader reads a peer's buffer (CMA).
// Sums always run over ranks 0, 1, ..., n - 1 in that order, whichever path, so the result
// does not depend on timing or message size and is the same on every rank. A rank never writes an area before
// every rank has posted the phase that followed that area's last read (the proof is in
// shared_memory_group.cc).
// Waiting spins for a short time, then gives the CPU away with sched_yield for a longer
// one, then sleeps on a futex: on a machine with fewer cores than ranks, pure spinning
// starves the rank that would post, and going to sleep at once costs a wake-up (and an
// idle CPU) per wait, twice per collective.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "mlscale/common/status.h"
#include "mlscale/worker/communicator.h"

namespace mlscale::worker {

struct SharedMemoryOptions {
  // Messages up to this size (any size with 2 ranks) take the direct path: one wait per
  // piece instead of two.
  size_t direct_max_bytes = 64 << 10;
  // How long a wait spins, then how long it yields the CPU (sched_yield: a rank that is
  // runnable on this CPU, the one waited for included, runs at once) before it sleeps on
  // the futex.
  int spin_microseconds = 10;
  int yield_microseconds = 1000;
  // Messages from this size up take the single-copy path when it is enabled.
  size_t single_copy_min_bytes = 16 << 10;
};

class SharedMemoryGroup {
 public:
  // The largest group a segment is made for (beyond it the ring stays on TCP).
  static constexpr int kMaxRanks = 64;

  // Creates a new segment for `world_size` ranks under a fresh random name (rank 0);
  // fails (the caller falls back to TCP) when /dev/shm cannot hold it.
  static StatusOr<std::unique_ptr<SharedMemoryGroup>> Create(int world_size, const SharedMemoryOptions& options);
  // Opens the segment `name` that rank 0 created; fails unless it carries `nonce` and
  // has the layout for `world_size` ranks (a segment of another host's /dev/shm, or of
  // another run, never matches).
  static StatusOr<std::unique_ptr<SharedMemoryGroup>> Open(const std::string& name, uint64_t nonce, int rank,
                                                           int world_size, const SharedMemoryOptions& options);
  ~SharedMemoryGroup();  // unmaps (and unlinks the name if it still exists and this rank made it)
  SharedMemoryGroup(const SharedMemoryGroup&) = delete;
  SharedMemoryGroup& operator=(const SharedMemoryGroup&) = delete;

  const std::string& name() const { return name_; }
  uint64_t nonce() const { return nonce_; }
  // Removes the name from /dev/shm (once every rank has it mapped): nothing is left
  // behind even when a process is killed later.
  void Unlink();

  // Whether this rank can read and write the memory of every other rank of the group
  // (process_vm_readv/writev of a word each rank published when it made or opened the
  // segment). Fails across pid namespaces, where ptrace is restricted, or in a sandbox.
  // Call after every rank has made or opened the segment.
  bool CanReachPeers();
  // Turns the single-copy path on; every rank must agree (each rank's CanReachPeers).
  void EnableSingleCopy() { single_copy_ = true; }
  bool single_copy() const { return single_copy_; }

  // Sums `count` elements at `data` over all ranks, in place. `failed` is polled while
  // waiting; once it is true the call returns kAborted (the caller knows which peer failed).
  Status AllReduceSum(void* data, size_t count, DataType type, const std::atomic<bool>& failed);
  // The halves of the single-copy AllReduce (Communicator::ReduceScatterSum, AllGather;
  // shares as ShareOf): rank r sums share r of every buffer into its own only, or writes
  // its own share r into every other buffer. The same two phases and bytes as half of an
  // AllReduce each. Only when ShardsCheaply.
  Status ReduceScatterSum(void* data, size_t count, DataType type, const std::atomic<bool>& failed);
  Status AllGather(void* data, size_t count, DataType type, const std::atomic<bool>& failed);
  bool ShardsCheaply(size_t bytes) const { return single_copy_ && bytes >= options_.single_copy_min_bytes; }
  // Wakes every rank sleeping in a wait (after a failure was recorded).
  void WakeAll();

 private:
  struct Header;

  SharedMemoryGroup(std::string name, uint64_t nonce, int rank, int world_size, size_t half_bytes, void* base,
                    size_t bytes, const SharedMemoryOptions& options);
  // Publishes this rank's next phase.
  void Post();
  // What a single-copy collective does with share r of the buffers between its two phases.
  enum class SingleCopy { kAllReduce, kReduceScatter, kAllGather };
  Status SingleCopyCollective(SingleCopy what, char* data, size_t count, DataType type,
                              const std::atomic<bool>& failed);
  // Between a single-copy collective's two phases: sums share rank_ of every buffer into
  // this rank's (unless all-gather) and writes it into every other buffer (unless
  // reduce-scatter).
  Status CopyShare(SingleCopy what, char* data, size_t count, DataType type);
  // A single-copy collective left early (a peer failed, or a copy did): withdraws this
  // rank's buffer and waits (at most 2 s) until no live peer is still copying from or
  // into it, then returns `status`. `entered` is the phase posted on entering.
  Status AbandonSingleCopy(uint64_t entered, Status status);
  // Copies `bytes` from `offset` of `rank`'s posted buffer to `local`, or (to_peer) from
  // `local` there; fails once that rank has withdrawn its buffer.
  Status CopyWithPeer(int rank, size_t offset, void* local, size_t bytes, bool to_peer) const;
  // Publishes this process's id and the address of probe_ for CanReachPeers.
  void PublishProcess();
  // Waits until every rank has posted this rank's last phase.
  Status WaitAll(const std::atomic<bool>& failed);
  char* Staging(int rank, uint64_t phase) const;
  char* Result() const;
  Header* header() const { return static_cast<Header*>(base_); }

  std::string name_;
  uint64_t nonce_;
  int rank_, world_size_;
  size_t half_bytes_;
  void* base_;
  size_t bytes_;
  SharedMemoryOptions options_;
  bool owner_unlinked_ = true;  // rank 0 clears it until Unlink
  uint64_t phase_ = 0;          // phases this rank posted
  bool single_copy_ = false;
  uint64_t probe_ = 0;          // what peers read (and write back) in CanReachPeers
  std::unique_ptr<char[]> blocks_;  // single copy: a block of each peer's buffer
};

// Says which host, and which /dev/shm, this process sees: ranks whose identities differ
// never try each other's segment (the nonce check decides for those that match).
std::string SharedMemoryHostIdentity();

}  // namespace mlscale::worker
