#include "mlscale/kube/slow_start.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace mlscale::kube {
namespace {

using namespace std::chrono_literals;

// Records the most calls in flight at once.
struct InFlight {
  std::atomic<int> now{0}, most{0};
  Status Call(Status result) {
    const int current = ++now;
    int seen = most.load();
    while (current > seen && !most.compare_exchange_weak(seen, current)) {
    }
    std::this_thread::sleep_for(20ms);  // long enough for a batch's calls to overlap
    --now;
    return result;
  }
};

TEST(SlowStartBatchTest, IssuesEveryCallInDoublingBatchesUpToTheCap) {
  InFlight flight;
  std::vector<int> calls(20, 0);
  std::vector<Status> results = SlowStartBatch(
      calls.size(), [&](size_t i) { ++calls[i]; return flight.Call(Status::Ok()); }, {.initial_batch = 1, .max_parallel = 4});
  ASSERT_EQ(results.size(), 20u);
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i], 1) << i;
    EXPECT_TRUE(results[i].ok()) << i;
  }
  EXPECT_EQ(flight.most.load(), 4) << "batches 1, 2, 4, 4, ...: never more than the cap";
}

TEST(SlowStartBatchTest, StopsAfterTheFirstBatchWithAFailure) {
  std::mutex mutex;
  std::vector<size_t> issued;
  // Batches: [0], [1, 2], [3..6]; index 4 fails, so 7.. are never issued.
  std::vector<Status> results = SlowStartBatch(10, [&](size_t i) {
    std::lock_guard lock(mutex);
    issued.push_back(i);
    return i == 4 ? Unavailable("quota exceeded") : Status::Ok();
  });
  EXPECT_EQ(issued.size(), 7u);
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(results[i].ok(), i != 4) << i;
  EXPECT_EQ(results[4].message(), "quota exceeded");
  for (size_t i = 7; i < 10; ++i) {
    EXPECT_FALSE(results[i].ok()) << i;
    EXPECT_NE(results[i].message().find("not attempted"), std::string::npos);
  }
  EXPECT_TRUE(SlowStartBatch(0, [](size_t) { return Status::Ok(); }).empty());
}

}  // namespace
}  // namespace mlscale::kube
