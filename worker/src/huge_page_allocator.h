// Memory for the trainer's large flat vectors (parameters, gradients, optimizer state).
//
// An allocation of at least kHugePageMinBytes is its own mapping, 2 MiB-aligned, rounded up
// to whole 2 MiB pages and advised onto transparent huge pages (madvise MADV_HUGEPAGE).
// Why: the shared-memory AllReduce copies a peer's gradients with process_vm_readv/writev,
// and the kernel pins every page it copies. With 4 KiB pages, pinning took about 38 % of a
// 1 MiB AllReduce between two ranks (perf, tests/bench/results/allreduce.md); one 2 MiB
// page instead of 512 roughly halves the AllReduce at 256 KiB-8 MiB. Where the kernel has
// transparent huge pages off ("never") the advice is refused and the memory is ordinary;
// nothing else changes. Smaller allocations come from operator new as usual.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace mlscale::worker {

inline constexpr size_t kHugePageBytes = size_t(2) << 20;
inline constexpr size_t kHugePageMinBytes = size_t(256) << 10;

// Whole 2 MiB pages of anonymous memory advised onto huge pages; nullptr when the kernel
// has no memory to give.
void* AllocateHugePages(size_t bytes);
void FreeHugePages(void* data, size_t bytes);

template <class T>
class HugePageAllocator {
 public:
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugePageMinBytes) return static_cast<T*>(::operator new(bytes));
    void* data = AllocateHugePages(bytes);
    if (data == nullptr) throw std::bad_alloc();
    return static_cast<T*>(data);
  }
  void deallocate(T* data, size_t n) noexcept {
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugePageMinBytes) {
      ::operator delete(data);
    } else {
      FreeHugePages(data, bytes);
    }
  }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
};

template <class T>
using HugePageVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace mlscale::worker
