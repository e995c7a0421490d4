#include "mlscale/kube/workqueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "mlscale/kube/metrics.h"

namespace mlscale::kube {
namespace {

using namespace std::chrono_literals;

TEST(WorkQueueTest, DeduplicatesQueuedKeys) {
  WorkQueue queue;
  queue.Add("a");
  queue.Add("b");
  queue.Add("a");
  EXPECT_EQ(queue.Len(), 2u);
  EXPECT_EQ(queue.Get(), "a");
  EXPECT_EQ(queue.Get(), "b");
  EXPECT_EQ(queue.Len(), 0u);
}

TEST(WorkQueueTest, KeyAddedWhileInProgressIsRequeuedOnlyWhenDone) {
  WorkQueue queue;
  queue.Add("a");
  ASSERT_EQ(queue.Get(), "a");
  queue.Add("a");
  queue.Add("a");
  EXPECT_EQ(queue.Len(), 0u) << "a second worker must not get a key in progress";
  queue.Done("a");
  EXPECT_EQ(queue.Len(), 1u);
  EXPECT_EQ(queue.Get(), "a");
  queue.Done("a");
  EXPECT_EQ(queue.Len(), 0u);
}

TEST(WorkQueueTest, LowPriorityKeysWaitBehindEveryNormalKey) {
  constexpr auto kLow = WorkQueue::Priority::kLow;
  WorkQueue queue;
  queue.Add("status-1", kLow);
  queue.Add("new-1");
  queue.Add("status-2", kLow);
  queue.Add("new-2");
  EXPECT_EQ(queue.Len(), 4u);
  EXPECT_EQ(queue.Get(), "new-1");
  EXPECT_EQ(queue.Get(), "new-2");
  queue.Add("new-3");  // arrives while low keys wait: still first
  EXPECT_EQ(queue.Get(), "new-3");
  EXPECT_EQ(queue.Get(), "status-1");
  EXPECT_EQ(queue.Get(), "status-2");
  EXPECT_EQ(queue.Len(), 0u);
}

TEST(WorkQueueTest, ALowKeyAddedAtNormalMovesUpAndIsHandedOutOnce) {
  constexpr auto kLow = WorkQueue::Priority::kLow;
  WorkQueue queue;
  queue.Add("a", kLow);
  queue.Add("b", kLow);
  queue.Add("b");       // moves up
  queue.Add("a", kLow);  // already waiting: nothing changes
  EXPECT_EQ(queue.Len(), 2u);
  EXPECT_EQ(queue.Get(), "b");
  EXPECT_EQ(queue.Get(), "a");
  EXPECT_EQ(queue.Len(), 0u);
  // b's old low entry is stale: it must not hand b out again, even once b waits once more.
  queue.Done("b");
  queue.Add("c", kLow);
  EXPECT_EQ(queue.Get(), "c");
  queue.Done("a");
  queue.Done("c");
  queue.ShutDown();
  EXPECT_EQ(queue.Get(), std::nullopt);
}

TEST(WorkQueueTest, ANormalKeyStaysNormalAndAKeyInProgressKeepsTheHigherPriority) {
  constexpr auto kLow = WorkQueue::Priority::kLow;
  WorkQueue queue;
  queue.Add("a");
  queue.Add("b", kLow);
  queue.Add("a", kLow);  // waiting at normal: stays normal
  EXPECT_EQ(queue.Get(), "a");
  // In progress: added low, then normal; requeued by Done at normal, ahead of b.
  queue.Add("a", kLow);
  queue.Add("a");
  EXPECT_EQ(queue.Len(), 1u);  // b
  queue.Done("a");
  EXPECT_EQ(queue.Len(), 2u);
  EXPECT_EQ(queue.Get(), "a");
  queue.Done("a");
  // In progress and added low only: requeued low, behind a normal key added later.
  queue.Add("c");
  EXPECT_EQ(queue.Get(), "c");
  queue.Add("c", kLow);
  queue.Add("d");
  queue.Done("c");
  EXPECT_EQ(queue.Get(), "d");
  EXPECT_EQ(queue.Get(), "b");
  EXPECT_EQ(queue.Get(), "c");
  EXPECT_EQ(queue.Len(), 0u);
}

TEST(WorkQueueTest, NeverTwoWorkersOnOneKey) {
  WorkQueue queue;
  std::atomic<int> in_flight{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto key = queue.Get()) {
        if (in_flight.fetch_add(1) != 0) ++overlaps;
        std::this_thread::sleep_for(1ms);
        in_flight.fetch_sub(1);
        ++processed;
        queue.Done(*key);
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    queue.Add("same");
    std::this_thread::sleep_for(100us);
  }
  std::this_thread::sleep_for(50ms);
  queue.ShutDown();
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GT(processed.load(), 1);
  EXPECT_LT(processed.load(), 200) << "repeated adds of a busy key should coalesce";
}

TEST(WorkQueueTest, AddAfterDelaysTheKey) {
  WorkQueue queue;
  auto started = std::chrono::steady_clock::now();
  queue.AddAfter("late", 100ms);
  queue.AddAfter("early", 20ms);
  EXPECT_EQ(queue.Len(), 0u);
  EXPECT_EQ(queue.Get(), "early");
  EXPECT_EQ(queue.Get(), "late");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 100ms);
}

TEST(WorkQueueTest, AKeyWaitsInOneDelayedEntryTheEarliest) {
  WorkQueue queue;
  for (int i = 0; i < 100; ++i) queue.AddAfter("ns/a", 10s);  // e.g. a requeue_after on every reconcile
  queue.AddAfter("ns/a", 150ms);
  queue.AddAfter("ns/a", 5s);
  queue.AddAfter("ns/b", 5s);
  EXPECT_EQ(queue.DelayedLen(), 2u) << "one delayed entry per key";
  auto started = std::chrono::steady_clock::now();
  std::optional<std::string> key = queue.Get();
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(*key, "ns/a");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s) << "the earliest delay wins";
  queue.Done(*key);
  EXPECT_EQ(queue.DelayedLen(), 1u) << "nothing of ns/a is left to fire again";
}

TEST(WorkQueueTest, RateLimitedRetriesBackOffExponentiallyPerKey) {
  WorkQueueOptions options;
  options.base_delay = 10ms;
  options.max_delay = 80ms;
  WorkQueue queue(options);
  std::vector<std::chrono::milliseconds> delays;
  for (int i = 0; i < 5; ++i) {
    auto started = std::chrono::steady_clock::now();
    queue.AddRateLimited("k");
    ASSERT_EQ(queue.Get(), "k");
    queue.Done("k");
    delays.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started));
  }
  EXPECT_EQ(queue.Failures("k"), 5);
  // 10, 20, 40, 80, 80 (capped), each observed at least that long.
  EXPECT_GE(delays[0], 10ms);
  EXPECT_GE(delays[1], 20ms);
  EXPECT_GE(delays[2], 40ms);
  EXPECT_GE(delays[3], 80ms);
  EXPECT_GE(delays[4], 80ms);
  EXPECT_LT(delays[4], 160ms) << "max_delay caps the backoff";
  queue.Forget("k");
  EXPECT_EQ(queue.Failures("k"), 0);
}

TEST(WorkQueueTest, OverallLimiterBoundsRetriesAcrossKeys) {
  WorkQueueOptions options;
  options.base_delay = 1ms;
  options.overall_qps = 50;
  options.overall_burst = 1;
  WorkQueue queue(options);
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 11; ++i) queue.AddRateLimited("key-" + std::to_string(i));
  for (int i = 0; i < 11; ++i) {
    auto key = queue.Get();
    ASSERT_TRUE(key.has_value());
    queue.Done(*key);
  }
  // 10 retries beyond the burst at 50/s take at least 200 ms.
  EXPECT_GE(std::chrono::steady_clock::now() - started, 190ms);
}

TEST(WorkQueueTest, ShutDownWakesWaitingWorkers) {
  WorkQueue queue;
  std::thread worker([&] { EXPECT_FALSE(queue.Get().has_value()); });
  std::this_thread::sleep_for(20ms);
  queue.ShutDown();
  worker.join();
  queue.Add("ignored");
  EXPECT_EQ(queue.Len(), 0u);
}

TEST(WorkQueueTest, PublishesDepthAndWaitMetrics) {
  Metrics metrics;
  WorkQueueOptions options;
  options.name = "widgets";
  WorkQueue queue(options, &metrics);
  queue.Add("a");
  queue.Add("b");
  EXPECT_EQ(metrics.Value("mlscale_kube_workqueue_depth", {{"name", "widgets"}}), 2);
  ASSERT_TRUE(queue.Get().has_value());
  EXPECT_EQ(metrics.Value("mlscale_kube_workqueue_depth", {{"name", "widgets"}}), 1);
  std::string text = metrics.Render();
  EXPECT_NE(text.find("mlscale_kube_workqueue_queue_duration_seconds_count{name=\"widgets\"} 1"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace mlscale::kube
