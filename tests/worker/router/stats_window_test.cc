#include "mlscale/router/stats_window.h"

#include <gtest/gtest.h>

namespace mlscale::router {
namespace {

using std::chrono::milliseconds;

TEST(SlidingWindow, ConstantLevelAveragesToItself) {
  SlidingWindow window(milliseconds(1000), 10);
  Clock::time_point t0(std::chrono::hours(1));
  window.AddLevel(t0, 3);
  EXPECT_NEAR(window.AverageLevel(t0 + milliseconds(2500)), 3.0, 1e-9);
  EXPECT_NEAR(window.AverageLevel(t0 + milliseconds(5050)), 3.0, 1e-9);
  EXPECT_EQ(window.level(), 3);
}

TEST(SlidingWindow, StepIsWeightedByTime) {
  SlidingWindow window(milliseconds(1000), 10);
  Clock::time_point t0(std::chrono::hours(1));
  window.AddLevel(t0, 0);
  window.AddLevel(t0 + milliseconds(2000), 4);  // 0 for 2 s, then 4
  // Read at 2.5 s: the window holds 0.4 s of 0 and 0.5 s of 4 (9 full buckets + the current one).
  const double average = window.AverageLevel(t0 + milliseconds(2500));
  EXPECT_NEAR(average, 4.0 * 0.5 / 0.9, 1e-6);
  // A full window later only the 4 is left.
  EXPECT_NEAR(window.AverageLevel(t0 + milliseconds(3550)), 4.0, 1e-9);
  window.AddLevel(t0 + milliseconds(3550), -4);
  EXPECT_NEAR(window.AverageLevel(t0 + milliseconds(6000)), 0.0, 1e-9);
}

TEST(SlidingWindow, YoungWindowIsNotDiluted) {
  SlidingWindow window(milliseconds(1000), 10);
  Clock::time_point t0(std::chrono::hours(1));
  window.AddLevel(t0 + milliseconds(10), 2);
  EXPECT_NEAR(window.AverageLevel(t0 + milliseconds(310)), 2.0, 1e-9);
}

TEST(SlidingWindow, EventsPerSecond) {
  SlidingWindow window(milliseconds(1000), 10);
  Clock::time_point t0(std::chrono::hours(1));
  window.AddEvents(t0, 0);
  // 50 requests per second for 3 s: one every 20 ms.
  for (int i = 0; i < 150; ++i) window.AddEvents(t0 + milliseconds(20 * i));
  EXPECT_NEAR(window.EventsPerSecond(t0 + milliseconds(2990)), 50.0, 2.0);
  // Silence for a window: 0.
  EXPECT_NEAR(window.EventsPerSecond(t0 + milliseconds(5000)), 0.0, 1e-9);
}

TEST(SlidingWindow, TimeGoingBackwardsIsIgnored) {
  SlidingWindow window(milliseconds(1000), 10);
  Clock::time_point t0(std::chrono::hours(1));
  window.AddLevel(t0, 1);
  window.AddLevel(t0 - milliseconds(100), 1);
  EXPECT_EQ(window.level(), 2);
  EXPECT_GE(window.AverageLevel(t0 + milliseconds(1500)), 1.0);
}

}  // namespace
}  // namespace mlscale::router
