#include "mlscale/router/balancer.h"

#include <map>
#include <vector>

#include <gtest/gtest.h>

namespace mlscale::router {
namespace {

std::vector<UpstreamPtr> Pods(int n) {
  std::vector<UpstreamPtr> pods;
  for (int i = 0; i < n; ++i) pods.push_back(std::make_shared<Upstream>(EndpointAddress{"10.0.0." + std::to_string(i + 1), 8080}));
  return pods;
}

const auto kAll = [](const Upstream&) { return true; };

TEST(PickLeastOutstanding, NoneOneAndExcluded) {
  std::mt19937_64 random(1);
  std::vector<UpstreamPtr> none;
  EXPECT_EQ(PickLeastOutstanding(std::span<const UpstreamPtr>(none), kAll, random), nullptr);
  auto pods = Pods(3);
  EXPECT_EQ(PickLeastOutstanding(std::span<const UpstreamPtr>(pods), [](const Upstream&) { return false; }, random), nullptr);
  for (int i = 0; i < 50; ++i) {
    auto only = PickLeastOutstanding(std::span<const UpstreamPtr>(pods),
                                     [&](const Upstream& u) { return &u == pods[1].get(); }, random);
    EXPECT_EQ(only, pods[1]);
  }
}

TEST(PickLeastOutstanding, TwoPodsAlwaysTheLessLoaded) {
  std::mt19937_64 random(2);
  auto pods = Pods(2);
  pods[0]->outstanding = 3;
  pods[1]->outstanding = 2;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(PickLeastOutstanding(std::span<const UpstreamPtr>(pods), kAll, random), pods[1]);
}

TEST(PickLeastOutstanding, TiesAreRandomAndEven) {
  std::mt19937_64 random(3);
  auto pods = Pods(4);
  std::map<Upstream*, int> picks;
  for (int i = 0; i < 8000; ++i) picks[PickLeastOutstanding(std::span<const UpstreamPtr>(pods), kAll, random).get()]++;
  ASSERT_EQ(picks.size(), 4u);
  for (const auto& [pod, count] : picks) EXPECT_NEAR(count, 2000, 200);
}

TEST(PickLeastOutstanding, KeepsLoadBalancedAsRequestsComplete) {
  // Simulated: every pick adds a request; the busiest pod finishes one each round.
  std::mt19937_64 random(4);
  auto pods = Pods(5);
  for (int round = 0; round < 2000; ++round) {
    PickLeastOutstanding(std::span<const UpstreamPtr>(pods), kAll, random)->outstanding++;
    if (round % 2 == 1) {
      auto busiest = *std::max_element(pods.begin(), pods.end(), [](const UpstreamPtr& a, const UpstreamPtr& b) {
        return a->outstanding < b->outstanding;
      });
      busiest->outstanding--;
    }
  }
  int64_t low = INT64_MAX, high = 0;
  for (const auto& pod : pods) {
    low = std::min<int64_t>(low, pod->outstanding);
    high = std::max<int64_t>(high, pod->outstanding);
  }
  EXPECT_LE(high - low, 3) << "power of two choices keeps the spread small";
}

TEST(PickLeastOutstanding, NeverPicksTheOverloadedWhenOthersAreIdle) {
  std::mt19937_64 random(5);
  auto pods = Pods(3);
  pods[2]->outstanding = 100;
  int overloaded = 0;
  for (int i = 0; i < 3000; ++i) overloaded += PickLeastOutstanding(std::span<const UpstreamPtr>(pods), kAll, random) == pods[2];
  EXPECT_EQ(overloaded, 0);  // any pair containing it has a less loaded partner
}

}  // namespace
}  // namespace mlscale::router
