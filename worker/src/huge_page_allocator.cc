#include "huge_page_allocator.h"

#include <sys/mman.h>

#include <cstdint>

namespace mlscale::worker {
namespace {

uintptr_t RoundUpToHugePage(uintptr_t x) { return (x + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes; }

}  // namespace

void* AllocateHugePages(size_t bytes) {
  const size_t length = RoundUpToHugePage(bytes);
  // Map one page more than needed and unmap what lies outside a 2 MiB-aligned window:
  // a huge page can only back a 2 MiB-aligned range.
  void* mapped = ::mmap(nullptr, length + kHugePageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(mapped);
  const uintptr_t aligned = RoundUpToHugePage(start);
  if (aligned > start) ::munmap(mapped, aligned - start);
  const uintptr_t end = start + length + kHugePageBytes;
  if (end > aligned + length) ::munmap(reinterpret_cast<void*>(aligned + length), end - (aligned + length));
  void* data = reinterpret_cast<void*>(aligned);
  // Refused (EINVAL) where the kernel has no transparent huge pages: ordinary pages then.
  (void)::madvise(data, length, MADV_HUGEPAGE);
  return data;
}

void FreeHugePages(void* data, size_t bytes) { ::munmap(data, RoundUpToHugePage(bytes)); }

}  // namespace mlscale::worker
