// Controller workers: failures retried with backoff, requeue_after honoured.
#include "mlscale/kube/controller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "mlscale/kube/metrics.h"
#include "mlscale/kube/resource.h"
#include "wait_for.h"

namespace mlscale::kube {
namespace {

using namespace std::chrono_literals;

using mlscale::testing::WaitFor;
// The conditions are in-process counters: poll them often.
constexpr std::chrono::milliseconds kPoll = 5ms;

TEST(ControllerTest, FailingReconcilesAreRetriedWithBackoff) {
  std::atomic<int> attempts{0};
  Metrics metrics;
  ControllerOptions options{"flaky", 1, {}};
  options.queue.base_delay = 20ms;
  Controller controller(options, [&](const std::string&, std::stop_token) -> StatusOr<ReconcileResult> {
    if (++attempts < 4) return Unavailable("not yet");
    return ReconcileResult{};
  }, &metrics);
  controller.Start();
  controller.queue().Add("ns/a");
  ASSERT_TRUE(WaitFor([&] { return attempts.load() == 4; }, 5s, kPoll));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(attempts.load(), 4) << "a success must not be retried";
  EXPECT_EQ(controller.queue().Failures("ns/a"), 0) << "success forgets the failures";
  EXPECT_EQ(metrics.Value("mlscale_kube_reconcile_errors_total", {{"controller", "flaky"}}), 3);
  controller.Stop();
}

TEST(ControllerTest, RequeueAfterSchedulesTheNextLook) {
  std::atomic<int> looks{0};
  Controller controller({"periodic", 1, {}}, [&](const std::string&, std::stop_token) -> StatusOr<ReconcileResult> {
    ++looks;
    return ReconcileResult{50ms};
  });
  controller.Start();
  controller.queue().Add("ns/a");
  std::this_thread::sleep_for(400ms);
  controller.Stop();
  EXPECT_GE(looks.load(), 4);
  EXPECT_LE(looks.load(), 9);
}

TEST(ControllerTest, AnExceptionInAReconcileIsCaughtLoggedCountedAndRetried) {
  std::atomic<int> attempts{0};
  Metrics metrics;
  ControllerOptions options{"throwing", 1, {}};
  options.queue.base_delay = 10ms;
  Controller controller(options, [&](const std::string&, std::stop_token) -> StatusOr<ReconcileResult> {
    if (++attempts < 3) {
      // What a reconciler reading a field of the wrong type would do.
      return ReconcileResult{std::chrono::milliseconds(Object::parse(R"({"a": "text"})")["a"].get<int>())};
    }
    return ReconcileResult{};
  }, &metrics);
  controller.Start();
  controller.queue().Add("ns/bad");
  ASSERT_TRUE(WaitFor([&] { return attempts.load() == 3; }, 5s, kPoll)) << "the worker died with the exception";
  EXPECT_EQ(metrics.Value("mlscale_kube_reconcile_panics_total", {{"controller", "throwing"}}), 2);
  EXPECT_EQ(metrics.Value("mlscale_kube_reconcile_total", {{"controller", "throwing"}, {"result", "panic"}}), 2);
  controller.Stop();
}

TEST(ControllerTest, StopIsPassedToTheRunningReconcile) {
  std::atomic<bool> started{false};
  std::atomic<bool> saw_stop{false};
  Controller controller({"slow", 1, {}}, [&](const std::string&, std::stop_token stop) -> StatusOr<ReconcileResult> {
    started = true;
    std::mutex mutex;
    std::condition_variable_any wake;
    std::unique_lock lock(mutex);
    // A reconcile waiting on something (a client call, a sleep) for up to a minute.
    saw_stop = wake.wait_for(lock, stop, 60s, [] { return false; }) || stop.stop_requested();
    return ReconcileResult{};
  });
  std::stop_source leadership;
  controller.Start(leadership.get_token());
  controller.queue().Add("ns/a");
  ASSERT_TRUE(WaitFor([&] { return started.load(); }, 5s, kPoll));
  auto stopping = std::chrono::steady_clock::now();
  leadership.request_stop();  // e.g. the lease was lost
  ASSERT_TRUE(WaitFor([&] { return saw_stop.load(); }, 5s, kPoll));
  controller.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 5s);
}

}  // namespace
}  // namespace mlscale::kube
