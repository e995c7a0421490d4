#include "shared_memory_channel.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#include "shared_memory_segment.h"

namespace mlscale::worker {

namespace {

constexpr uint64_t kMagic = 0x4d4c534843303031ull;  // "MLSHC001"
constexpr size_t kHeaderBytes = 4096;
// As much as a TCP socket's buffers hold (ConfigureStream): a ring step's chunk fits.
constexpr size_t kRingBytes = size_t(4) << 20;

}  // namespace

struct SharedMemoryChannel::Header {
  uint64_t magic;
  uint64_t nonce;
  alignas(64) std::atomic<uint64_t> written;  // bytes the writer has put in, ever
  alignas(64) std::atomic<uint64_t> read;     // bytes the reader has taken out, ever
};
static_assert(sizeof(std::atomic<uint64_t>) == 8 && std::atomic<uint64_t>::is_always_lock_free);

SharedMemoryChannel::SharedMemoryChannel(std::string name, uint64_t nonce, void* base, size_t bytes, bool owner)
    : name_(std::move(name)), nonce_(nonce), base_(base), bytes_(bytes), owner_unlinked_(!owner) {
  static_assert(sizeof(Header) <= kHeaderBytes);
}

SharedMemoryChannel::~SharedMemoryChannel() {
  ::munmap(base_, bytes_);
  if (!owner_unlinked_) ::shm_unlink(name_.c_str());
}

StatusOr<std::unique_ptr<SharedMemoryChannel>> SharedMemoryChannel::Create() {
  auto segment = CreateSharedSegment(kHeaderBytes + kRingBytes);
  if (!segment.ok()) return segment.status();
  const uint64_t nonce = RandomWord();
  Header* header = new (segment->base) Header{};
  header->nonce = nonce;
  header->written.store(0);
  header->read.store(0);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  header->magic = kMagic;
  return std::unique_ptr<SharedMemoryChannel>(
      new SharedMemoryChannel(segment->name, nonce, segment->base, segment->bytes, true));
}

StatusOr<std::unique_ptr<SharedMemoryChannel>> SharedMemoryChannel::Open(const std::string& name, uint64_t nonce) {
  auto segment = OpenSharedSegment(name, kHeaderBytes + kRingBytes);
  if (!segment.ok()) return segment.status();
  const Header* header = static_cast<const Header*>(segment->base);
  if (header->magic != kMagic || header->nonce != nonce) {
    ::munmap(segment->base, segment->bytes);
    return FailedPrecondition(name + " is not this run's channel");
  }
  return std::unique_ptr<SharedMemoryChannel>(
      new SharedMemoryChannel(name, nonce, segment->base, segment->bytes, false));
}

void SharedMemoryChannel::Unlink() {
  if (owner_unlinked_) return;
  ::shm_unlink(name_.c_str());
  owner_unlinked_ = true;
}

char* SharedMemoryChannel::ring() const { return static_cast<char*>(base_) + kHeaderBytes; }

size_t SharedMemoryChannel::Write(const void* data, size_t bytes) {
  Header* h = header();
  const uint64_t written = h->written.load(std::memory_order_relaxed);
  const uint64_t read = h->read.load(std::memory_order_acquire);  // the reader is done with those bytes
  const size_t k = std::min<size_t>(bytes, kRingBytes - size_t(written - read));
  if (k == 0) return 0;
  const size_t at = size_t(written % kRingBytes), first = std::min(k, kRingBytes - at);
  std::memcpy(ring() + at, data, first);
  std::memcpy(ring(), static_cast<const char*>(data) + first, k - first);
  h->written.store(written + k, std::memory_order_release);
  return k;
}

size_t SharedMemoryChannel::Read(void* data, size_t bytes) {
  Header* h = header();
  const uint64_t read = h->read.load(std::memory_order_relaxed);
  const uint64_t written = h->written.load(std::memory_order_acquire);  // those bytes are in
  const size_t k = std::min<size_t>(bytes, size_t(written - read));
  if (k == 0) return 0;
  const size_t at = size_t(read % kRingBytes), first = std::min(k, kRingBytes - at);
  std::memcpy(data, ring() + at, first);
  std::memcpy(static_cast<char*>(data) + first, ring(), k - first);
  h->read.store(read + k, std::memory_order_release);
  return k;
}

}  // namespace mlscale::worker
