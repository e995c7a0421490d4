// Making and mapping POSIX shared-memory segments (internal): what the shared-memory group
// and the per-neighbour channels are built on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "mlscale/common/status.h"

namespace mlscale::worker {

struct MappedSegment {
  std::string name;  // "/mlscale-<16 hex digits>"
  void* base = nullptr;
  size_t bytes = 0;
};

// Makes a segment of `bytes` under a fresh random name, its pages reserved (a full
// /dev/shm fails here rather than with SIGBUS later) and mapped populated (no page faults
// in the first collectives). The caller unmaps it and unlinks the name.
StatusOr<MappedSegment> CreateSharedSegment(size_t bytes);
// Maps the segment `name` (populated); FailedPrecondition unless it has `bytes` bytes,
// InvalidArgument when `name` is not a segment name.
StatusOr<MappedSegment> OpenSharedSegment(const std::string& name, size_t bytes);

// 64 random bits from the system's entropy source (segment names and nonces).
uint64_t RandomWord();

}  // namespace mlscale::worker
