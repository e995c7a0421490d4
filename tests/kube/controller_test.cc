// Controller workers: failures retried with backoff, requeue_after honoured.
#include "mlscale/kube/controller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "mlscale/kube/metrics.h"

namespace mlscale::kube {
namespace {

using namespace std::chrono_literals;

bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(ControllerTest, FailingReconcilesAreRetriedWithBackoff) {
  std::atomic<int> attempts{0};
  Metrics metrics;
  ControllerOptions options{"flaky", 1, {}};
  options.queue.base_delay = 20ms;
  Controller controller(options, [&](const std::string&) -> StatusOr<ReconcileResult> {
    if (++attempts < 4) return Unavailable("not yet");
    return ReconcileResult{};
  }, &metrics);
  controller.Start();
  controller.queue().Add("ns/a");
  ASSERT_TRUE(Eventually([&] { return attempts.load() == 4; }, 5s));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(attempts.load(), 4) << "a success must not be retried";
  EXPECT_EQ(controller.queue().Failures("ns/a"), 0) << "success forgets the failures";
  EXPECT_EQ(metrics.Value("mlscale_kube_reconcile_errors_total", {{"controller", "flaky"}}), 3);
  controller.Stop();
}

TEST(ControllerTest, RequeueAfterSchedulesTheNextLook) {
  std::atomic<int> looks{0};
  Controller controller({"periodic", 1, {}}, [&](const std::string&) -> StatusOr<ReconcileResult> {
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

}  // namespace
}  // namespace mlscale::kube
