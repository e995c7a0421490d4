#include "huge_page_allocator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace mlscale::worker {
namespace {

// The VmFlags line of the mapping of this process that holds `address` (empty if none).
std::string VmFlagsOf(const void* address) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t start = 0, end = 0;
    char dash = 0;
    std::istringstream header(line);
    if (header >> std::hex >> start >> dash >> end && dash == '-') {
      inside = start <= a && a < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

bool KernelHasTransparentHugePages() {
  return std::filesystem::exists("/sys/kernel/mm/transparent_hugepage/enabled");
}

TEST(HugePageAllocator, LargeVectorsAre2MiBAlignedAndAdvisedOntoHugePages) {
  if (!KernelHasTransparentHugePages()) GTEST_SKIP() << "this kernel has no transparent huge pages";
  // 1 MiB and a bit: the synthetic MLP's gradients.
  HugePageVector<float> gradients(262144 + 2, 1.5f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(gradients.data()) % kHugePageBytes, 0u);
  EXPECT_NE(VmFlagsOf(gradients.data()).find(" hg"), std::string::npos) << VmFlagsOf(gradients.data());
  // The last element is writable, and the advised mapping covers the whole first 2 MiB page.
  gradients.back() = 2.5f;
  EXPECT_EQ(gradients[0], 1.5f);
  EXPECT_EQ(gradients.back(), 2.5f);
  EXPECT_NE(VmFlagsOf(reinterpret_cast<const char*>(gradients.data()) + kHugePageBytes - 1).find(" hg"),
            std::string::npos);
}

TEST(HugePageAllocator, SmallVectorsComeFromTheHeap) {
  HugePageVector<float> small(1000, 1.0f);
  EXPECT_EQ(VmFlagsOf(small.data()).find(" hg"), std::string::npos) << VmFlagsOf(small.data());
  EXPECT_EQ(small[999], 1.0f);
}

TEST(HugePageAllocator, GrowingCopyingAndFreeingKeepTheValues) {
  HugePageVector<float> v;
  for (int i = 0; i < 300000; ++i) v.push_back(float(i));  // crosses the threshold while growing
  HugePageVector<float> copy = v;
  v.assign(10, 0.0f);
  v.shrink_to_fit();
  ASSERT_EQ(copy.size(), 300000u);
  for (int i = 0; i < 300000; i += 997) ASSERT_EQ(copy[size_t(i)], float(i));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(copy.data()) % kHugePageBytes, 0u);
}

}  // namespace
}  // namespace mlscale::worker
