// A one-way byte stream from a rank to its right ring neighbour on the same host, through
// a ring buffer in a POSIX shared-memory segment (internal; the TCP ring negotiates one
// per neighbour pair whose host identities match when not every rank shares one host, so
// a job spread over hosts still uses shared memory between the ranks of each host while
// the algorithm, and so every bit of the result, stays the ring's).
//
// One writer and one reader: the writer advances `written`, the reader `read`; each
// only reads the other's counter (acquire) and publishes its own (release). Neither
// blocks: Write and Read move what fits and return how much; the ring's Exchange waits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "mlscale/common/status.h"

namespace mlscale::worker {

class SharedMemoryChannel {
 public:
  // Makes a channel under a fresh random name (the writer's side); fails (the link stays
  // on TCP) when /dev/shm cannot hold it.
  static StatusOr<std::unique_ptr<SharedMemoryChannel>> Create();
  // Opens the channel `name` the writer made; fails unless it carries `nonce`.
  static StatusOr<std::unique_ptr<SharedMemoryChannel>> Open(const std::string& name, uint64_t nonce);
  ~SharedMemoryChannel();  // unmaps (and unlinks the name if this side made it and it is still there)
  SharedMemoryChannel(const SharedMemoryChannel&) = delete;
  SharedMemoryChannel& operator=(const SharedMemoryChannel&) = delete;

  const std::string& name() const { return name_; }
  uint64_t nonce() const { return nonce_; }
  // Removes the name from /dev/shm once the reader has it mapped.
  void Unlink();

  // Copies up to `bytes` of `data` into the channel; returns how many fitted (0: full).
  size_t Write(const void* data, size_t bytes);
  // Copies up to `bytes` out of the channel into `data`; returns how many there were.
  size_t Read(void* data, size_t bytes);

 private:
  struct Header;
  SharedMemoryChannel(std::string name, uint64_t nonce, void* base, size_t bytes, bool owner);
  Header* header() const { return static_cast<Header*>(base_); }
  char* ring() const;

  std::string name_;
  uint64_t nonce_;
  void* base_;
  size_t bytes_;
  bool owner_unlinked_;
};

}  // namespace mlscale::worker
