// Why the areas are never overwritten while a peer still reads them (see the header for
// the phases):
//   - staging half h = j % 2 is written by its rank before it posts phase j and read by
//     every rank after the wait for j and before that rank posts j + 1. The next write
//     to the same half is for a phase j' >= j + 2, after its writer waited for j' - 1 >=
//     j + 1, that is after every reader posted j + 1.
//   - the result area is written after the wait for a reduce-scatter phase j (each rank
//     its own sub-range, before it posts j + 1) and read after the wait for j + 1 and
//     before the reader posts j + 2; the next write follows the wait for a later
//     reduce-scatter phase, at least j + 2.
//   - single copy: between the two waits, share r of every rank's buffer is read and
//     written by rank r alone (each rank reads its own buffer only in its own share), so
//     no byte is read while another rank writes it; the second wait keeps every buffer
//     unchanged by its owner until no rank reads or writes it any more. Its halves
//     (reduce-scatter, all-gather) touch a subset of those bytes between the same waits.
#include "shared_memory_group.h"

#include "shared_memory_segment.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstring>
#include <fstream>
#include <new>
#include <thread>

namespace mlscale::worker {

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kMagic = 0x4d4c53484d303033ull;  // "MLSHM003"
constexpr size_t kPage = 4096;

static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free,
              "the flags in shared memory must be lock-free atomics");

// Staging half per rank and piece of a large message: 1 MiB, less for large groups so
// that the segment stays within 16 MiB (/dev/shm is often 64 MiB in a container).
size_t HalfBytes(int world_size) {
  size_t half = std::min<size_t>(size_t(1) << 20, (size_t(16) << 20) / size_t(2 * world_size + 1));
  return std::max(kPage, half / kPage * kPage);
}

std::string ErrnoText(int error) { return std::strerror(error); }

void SpinPause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Cross-process futex (not FUTEX_PRIVATE: the word is in a shared mapping).
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::milliseconds timeout) {
  timespec t{time_t(timeout.count() / 1000), long(timeout.count() % 1000) * 1000000L};
  (void)::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &t, nullptr, 0);
}
void FutexWakeAll(std::atomic<uint32_t>* word) {
  (void)::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

// target = sources[0] + sources[1] + ... + sources[n - 1] (n >= 2), in that order for
// every element, in sub-blocks that stay in the L1 cache: the partial sums of more than
// two sources go to a scratch sub-block and only the last addition writes the target, so
// `target` may be one of the sources (the single-copy path sums into the rank's own block).
void SumInRankOrder(char* target, const char* const* sources, int n, size_t count, DataType type) {
  constexpr size_t kSubBlockBytes = size_t(16) << 10;
  alignas(64) char scratch[kSubBlockBytes];
  const size_t element = DataTypeSize(type);
  const size_t block = kSubBlockBytes / element;
  for (size_t first = 0; first < count; first += block) {
    const size_t m = std::min(block, count - first), offset = first * element;
    const char* partial = sources[0] + offset;
    for (int k = 1; k < n; ++k) {
      char* sum = k == n - 1 ? target + offset : scratch;
      ReduceSum(sum, partial, sources[k] + offset, m, type);
      partial = sum;
    }
  }
}

}  // namespace

// Single copy: the blocks read from the peers, together (the rank's own block beside
// them). 1 MiB, retuned on an AMD EPYC (Zen 4, 1 MiB L2 per core) against 64 KiB-2 MiB
// (tests/bench/results/allreduce.md, session 10): at 4 ranks, 512 KiB-4 MiB took 10-25 %
// less time than with 256 KiB; 2 MiB was slower again.
constexpr size_t kSingleCopyBlocksBytes = size_t(1024) << 10;

// One rank's words, on a cache line of their own.
struct alignas(64) RankSlot {
  std::atomic<uint64_t> posted;  // phases posted
  std::atomic<uint64_t> buffer;  // single copy: the address of this collective's buffer (0: withdrawn)
  // Single copy: the phase of the collective this rank left early (its buffer withdrawn).
  std::atomic<uint64_t> released;
  int64_t process;               // the process id, as this rank's pid namespace sees it
  uint64_t probe_address;        // where CanReachPeers reads this rank's probe word
};

struct SharedMemoryGroup::Header {
  uint64_t magic;
  uint64_t nonce;
  uint64_t world_size;
  uint64_t half_bytes;
  alignas(64) std::atomic<uint32_t> epoch;     // futex word: bumped by a post that has sleepers
  alignas(64) std::atomic<uint32_t> sleepers;  // ranks in (or entering) a futex wait
  RankSlot slots[kMaxRanks];
};

namespace {

constexpr size_t kDataOffset = 2 * kPage;  // the header's pages

size_t SegmentBytes(int world_size) { return kDataOffset + size_t(2 * world_size + 1) * HalfBytes(world_size); }

}  // namespace

SharedMemoryGroup::SharedMemoryGroup(std::string name, uint64_t nonce, int rank, int world_size, size_t half_bytes,
                                     void* base, size_t bytes, const SharedMemoryOptions& options)
    : name_(std::move(name)), nonce_(nonce), rank_(rank), world_size_(world_size), half_bytes_(half_bytes),
      base_(base), bytes_(bytes), options_(options) {
  static_assert(sizeof(Header) <= kDataOffset, "the header must fit before the data");
}

SharedMemoryGroup::~SharedMemoryGroup() {
  ::munmap(base_, bytes_);
  if (!owner_unlinked_) ::shm_unlink(name_.c_str());
}

StatusOr<std::unique_ptr<SharedMemoryGroup>> SharedMemoryGroup::Create(int world_size,
                                                                        const SharedMemoryOptions& options) {
  if (world_size < 2 || world_size > kMaxRanks) {
    return FailedPrecondition("shared memory is for 2 to " + std::to_string(kMaxRanks) + " ranks");
  }
  auto segment = CreateSharedSegment(SegmentBytes(world_size));
  if (!segment.ok()) return segment.status();
  const uint64_t nonce = RandomWord();
  Header* header = new (segment->base) Header{};
  header->nonce = nonce;
  header->world_size = uint64_t(world_size);
  header->half_bytes = HalfBytes(world_size);
  for (auto& slot : header->slots) {
    slot.posted.store(0);
    slot.buffer.store(0);
    slot.released.store(0);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  header->magic = kMagic;
  auto group = std::unique_ptr<SharedMemoryGroup>(new SharedMemoryGroup(
      segment->name, nonce, 0, world_size, HalfBytes(world_size), segment->base, segment->bytes, options));
  group->owner_unlinked_ = false;
  group->PublishProcess();
  return group;
}

StatusOr<std::unique_ptr<SharedMemoryGroup>> SharedMemoryGroup::Open(const std::string& name, uint64_t nonce,
                                                                      int rank, int world_size,
                                                                      const SharedMemoryOptions& options) {
  if (world_size < 2 || world_size > kMaxRanks || rank < 1 || rank >= world_size) {
    return FailedPrecondition("no shared-memory group of " + std::to_string(world_size) + " ranks has rank " +
                              std::to_string(rank));
  }
  auto segment = OpenSharedSegment(name, SegmentBytes(world_size));
  if (!segment.ok()) {
    if (segment.status().code() != StatusCode::kFailedPrecondition) return segment.status();
    return FailedPrecondition(name + " does not have the layout of a group of " + std::to_string(world_size));
  }
  const Header* header = static_cast<const Header*>(segment->base);
  if (header->magic != kMagic || header->nonce != nonce || header->world_size != uint64_t(world_size) ||
      header->half_bytes != HalfBytes(world_size)) {
    ::munmap(segment->base, segment->bytes);
    return FailedPrecondition(name + " is not this run's segment");
  }
  auto group = std::unique_ptr<SharedMemoryGroup>(new SharedMemoryGroup(
      name, nonce, rank, world_size, HalfBytes(world_size), segment->base, segment->bytes, options));
  group->PublishProcess();
  return group;
}

void SharedMemoryGroup::Unlink() {
  if (owner_unlinked_) return;
  ::shm_unlink(name_.c_str());
  owner_unlinked_ = true;
}

char* SharedMemoryGroup::Staging(int rank, uint64_t phase) const {
  return static_cast<char*>(base_) + kDataOffset + (size_t(rank) * 2 + size_t(phase % 2)) * half_bytes_;
}

char* SharedMemoryGroup::Result() const {
  return static_cast<char*>(base_) + kDataOffset + size_t(2 * world_size_) * half_bytes_;
}

void SharedMemoryGroup::Post() {
  Header* h = header();
  ++phase_;
  h->slots[rank_].posted.store(phase_, std::memory_order_seq_cst);
  // Paired with WaitAll's increment of `sleepers` before its last check: either the
  // sleeper sees this phase or this post sees the sleeper.
  if (h->sleepers.load(std::memory_order_seq_cst) > 0) WakeAll();
}

void SharedMemoryGroup::WakeAll() {
  header()->epoch.fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(&header()->epoch);
}

Status SharedMemoryGroup::WaitAll(const std::atomic<bool>& failed) {
  Header* h = header();
  const uint64_t target = phase_;
  auto ready = [&](std::memory_order order) {
    for (int k = 0; k < world_size_; ++k) {
      if (k != rank_ && h->slots[k].posted.load(order) < target) return false;
    }
    return true;
  };
  auto aborted = [] { return Status(StatusCode::kAborted, "a peer failed"); };
  if (ready(std::memory_order_acquire)) return Status::Ok();
  if (options_.spin_microseconds > 0) {
    const auto until = Clock::now() + std::chrono::microseconds(options_.spin_microseconds);
    for (unsigned i = 1;; ++i) {
      SpinPause();
      if (ready(std::memory_order_acquire)) return Status::Ok();
      if (i % 64 == 0) {
        if (failed.load(std::memory_order_relaxed)) return aborted();
        if (Clock::now() >= until) break;
      }
    }
  }
  if (options_.yield_microseconds > 0) {
    const auto until = Clock::now() + std::chrono::microseconds(options_.yield_microseconds);
    do {
      ::sched_yield();
      if (ready(std::memory_order_acquire)) return Status::Ok();
      if (failed.load(std::memory_order_relaxed)) return aborted();
    } while (Clock::now() < until);
  }
  while (true) {
    const uint32_t epoch = h->epoch.load(std::memory_order_seq_cst);
    h->sleepers.fetch_add(1, std::memory_order_seq_cst);
    const bool done = ready(std::memory_order_seq_cst);
    // The timeout bounds how late a failure recorded without a wake-up is noticed.
    if (!done && !failed.load()) FutexWait(&h->epoch, epoch, std::chrono::milliseconds(100));
    h->sleepers.fetch_sub(1, std::memory_order_seq_cst);
    if (done || ready(std::memory_order_acquire)) return Status::Ok();
    if (failed.load()) return aborted();
  }
}

namespace {

// What rank `rank` of the group with `nonce` keeps in its probe word.
uint64_t ProbeValue(uint64_t nonce, int rank) { return nonce ^ (0x9e3779b97f4a7c15ull * uint64_t(rank + 1)); }

}  // namespace

void SharedMemoryGroup::PublishProcess() {
  probe_ = ProbeValue(nonce_, rank_);
  RankSlot& slot = header()->slots[rank_];
  slot.process = int64_t(::getpid());
  slot.probe_address = reinterpret_cast<uintptr_t>(&probe_);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

bool SharedMemoryGroup::CanReachPeers() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (int k = 0; k < world_size_; ++k) {
    if (k == rank_) continue;
    const RankSlot& slot = header()->slots[k];
    uint64_t value = 0;
    iovec local{&value, sizeof value};
    iovec remote{reinterpret_cast<void*>(uintptr_t(slot.probe_address)), sizeof value};
    // A pid of another namespace names another process (or none): its word does not match.
    if (::process_vm_readv(pid_t(slot.process), &local, 1, &remote, 1, 0) != ssize_t(sizeof value) ||
        value != ProbeValue(nonce_, k)) {
      return false;
    }
    // Writing the same value back checks the permission to write and changes nothing.
    if (::process_vm_writev(pid_t(slot.process), &local, 1, &remote, 1, 0) != ssize_t(sizeof value)) return false;
  }
  return true;
}

Status SharedMemoryGroup::CopyWithPeer(int rank, size_t offset, void* local, size_t bytes, bool to_peer) const {
  const RankSlot& slot = header()->slots[rank];
  // Sequentially consistent with AbandonSingleCopy's store: a peer that saw this rank had
  // not yet posted the collective's phase knows this load sees its withdrawal.
  char* remote_base = reinterpret_cast<char*>(uintptr_t(slot.buffer.load(std::memory_order_seq_cst)));
  if (remote_base == nullptr) {
    return Status(StatusCode::kAborted, "rank " + std::to_string(rank) + " left the collective");
  }
  for (size_t done = 0; done < bytes;) {
    iovec here{static_cast<char*>(local) + done, bytes - done};
    iovec there{remote_base + offset + done, bytes - done};
    const ssize_t k = to_peer ? ::process_vm_writev(pid_t(slot.process), &here, 1, &there, 1, 0)
                              : ::process_vm_readv(pid_t(slot.process), &here, 1, &there, 1, 0);
    if (k <= 0) {
      return Status(StatusCode::kAborted, std::string(to_peer ? "writing" : "reading") + " rank " +
                                              std::to_string(rank) + "'s buffer: " +
                                              (k < 0 ? ErrnoText(errno) : std::string("nothing moved")));
    }
    done += size_t(k);
  }
  return Status::Ok();
}

Status SharedMemoryGroup::SingleCopyCollective(SingleCopy what, char* data, size_t count, DataType type,
                                               const std::atomic<bool>& failed) {
  header()->slots[rank_].buffer.store(reinterpret_cast<uintptr_t>(data), std::memory_order_relaxed);
  Post();  // publishes the address with the phase
  const uint64_t entered = phase_;
  Status status = WaitAll(failed);
  if (status.ok()) status = CopyShare(what, data, count, type);
  if (!status.ok()) return AbandonSingleCopy(entered, std::move(status));
  Post();
  return WaitAll(failed);  // past the copies: no peer touches this buffer any more
}

Status SharedMemoryGroup::CopyShare(SingleCopy what, char* data, size_t count, DataType type) {
  const int n = world_size_;
  const size_t element = DataTypeSize(type);
  // A block for each peer (in rank order, this rank's left out), each a multiple of the
  // cache line and starting on one.
  const size_t block_bytes = std::max<size_t>(64, kSingleCopyBlocksBytes / size_t(n - 1) / 64 * 64);
  if (!blocks_) blocks_ = std::make_unique<char[]>(size_t(n - 1) * block_bytes + 64);
  char* const blocks = blocks_.get() + (64 - reinterpret_cast<uintptr_t>(blocks_.get()) % 64) % 64;
  const auto [first, last] = ShareOf(count, rank_, n);
  const size_t block = block_bytes / element;
  const char* sources[kMaxRanks];
  for (size_t begin = first; begin < last; begin += block) {
    const size_t m = std::min(block, last - begin), offset = begin * element, bytes = m * element;
    char* own = data + offset;
    if (what != SingleCopy::kAllGather) {
      for (int k = 0; k < n; ++k) {
        if (k == rank_) {
          sources[k] = own;
        } else {
          char* copy = blocks + size_t(k < rank_ ? k : k - 1) * block_bytes;
          MLSCALE_RETURN_IF_ERROR(CopyWithPeer(k, offset, copy, bytes, false));
          sources[k] = copy;
        }
      }
      SumInRankOrder(own, sources, n, m, type);
    }
    if (what == SingleCopy::kReduceScatter) continue;
    for (int k = 0; k < n; ++k) {
      if (k != rank_) MLSCALE_RETURN_IF_ERROR(CopyWithPeer(k, offset, own, bytes, true));
    }
  }
  return Status::Ok();
}

Status SharedMemoryGroup::AbandonSingleCopy(uint64_t entered, Status status) {
  Header* h = header();
  RankSlot& own = h->slots[rank_];
  own.buffer.store(0, std::memory_order_seq_cst);
  own.released.store(entered, std::memory_order_seq_cst);
  // A peer may still be copying from or into this buffer (it read the address before the
  // withdrawal): wait until each one is provably done with it, so that the caller gets a
  // buffer no other process writes any more.
  const auto until = Clock::now() + std::chrono::seconds(2);
  for (int k = 0; k < world_size_; ++k) {
    if (k == rank_) continue;
    const RankSlot& peer = h->slots[k];
    while (Clock::now() < until) {
      const uint64_t posted = peer.posted.load(std::memory_order_seq_cst);
      // Not yet in this collective (it will see the withdrawal), past its copies, or left
      // the collective too.
      if (posted != entered || peer.released.load(std::memory_order_seq_cst) >= entered) break;
      if (::kill(pid_t(peer.process), 0) != 0 && errno == ESRCH) break;  // gone
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  return status;
}

Status SharedMemoryGroup::ReduceScatterSum(void* data, size_t count, DataType type, const std::atomic<bool>& failed) {
  if (count == 0) return Status::Ok();
  return SingleCopyCollective(SingleCopy::kReduceScatter, static_cast<char*>(data), count, type, failed);
}

Status SharedMemoryGroup::AllGather(void* data, size_t count, DataType type, const std::atomic<bool>& failed) {
  if (count == 0) return Status::Ok();
  return SingleCopyCollective(SingleCopy::kAllGather, static_cast<char*>(data), count, type, failed);
}

Status SharedMemoryGroup::AllReduceSum(void* data, size_t count, DataType type, const std::atomic<bool>& failed) {
  if (count == 0) return Status::Ok();
  const int n = world_size_;
  const size_t element = DataTypeSize(type);
  char* user = static_cast<char*>(data);
  const char* sources[kMaxRanks];
  const size_t piece_elements = half_bytes_ / element;
  if (single_copy_ && count * element >= options_.single_copy_min_bytes) {
    return SingleCopyCollective(SingleCopy::kAllReduce, user, count, type, failed);
  }
  // Direct: every rank reads n copies of each piece, one wait. Reduce-scatter + gather
  // reads about two, with a second wait: it pays from 256 KiB up at 4 ranks; at 2 ranks
  // direct reads no more and never loses (tests/bench/results/allreduce.md).
  if (n == 2 || count * element <= options_.direct_max_bytes) {
    for (size_t offset = 0; offset < count; offset += piece_elements) {
      const size_t m = std::min(piece_elements, count - offset);
      const uint64_t phase = phase_ + 1;
      std::memcpy(Staging(rank_, phase), user + offset * element, m * element);
      Post();
      MLSCALE_RETURN_IF_ERROR(WaitAll(failed));
      for (int k = 0; k < n; ++k) sources[k] = Staging(k, phase);
      SumInRankOrder(user + offset * element, sources, n, m, type);
    }
    return Status::Ok();
  }
  for (size_t offset = 0; offset < count; offset += piece_elements) {
    const size_t m = std::min(piece_elements, count - offset);
    char* piece = user + offset * element;
    const uint64_t phase = phase_ + 1;
    std::memcpy(Staging(rank_, phase), piece, m * element);
    Post();
    MLSCALE_RETURN_IF_ERROR(WaitAll(failed));
    const size_t first = m * size_t(rank_) / size_t(n), last = m * size_t(rank_ + 1) / size_t(n);
    for (int k = 0; k < n; ++k) sources[k] = Staging(k, phase) + first * element;
    SumInRankOrder(Result() + first * element, sources, n, last - first, type);
    Post();
    MLSCALE_RETURN_IF_ERROR(WaitAll(failed));
    std::memcpy(piece, Result(), m * element);
  }
  return Status::Ok();
}

std::string SharedMemoryHostIdentity() {
  std::string boot_id;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot_id;
  struct stat st{};
  std::string shm = ::stat("/dev/shm", &st) == 0
                        ? std::to_string(uint64_t(st.st_dev)) + ":" + std::to_string(uint64_t(st.st_ino))
                        : "none";
  return "boot=" + boot_id + " shm=" + shm;
}

}  // namespace mlscale::worker
