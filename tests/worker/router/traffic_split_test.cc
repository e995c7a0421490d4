#include "mlscale/router/traffic_split.h"

#include <map>

#include <gtest/gtest.h>

namespace mlscale::router {
namespace {

using nlohmann::json;

json WithTraffic(json traffic) { return {{"metadata", {{"name", "m"}}}, {"status", {{"traffic", traffic}}}}; }

TEST(ParseTraffic, ReadsTargets) {
  auto targets = ParseTraffic(WithTraffic(json::array({{{"revision", "a"}, {"percent", 80}}, {{"revision", "b"}, {"percent", 20}}})));
  ASSERT_TRUE(targets.ok()) << targets.status().ToString();
  ASSERT_EQ(targets->size(), 2u);
  EXPECT_EQ((*targets)[0], (TrafficTarget{"a", 80}));
  EXPECT_EQ((*targets)[1], (TrafficTarget{"b", 20}));
}

TEST(ParseTraffic, NoStatusYetIsEmpty) {
  for (const json& object : {json{{"metadata", {{"name", "m"}}}}, json{{"status", nullptr}}, json{{"status", json::object()}},
                             json{{"status", {{"traffic", nullptr}}}}, WithTraffic(json::array())}) {
    auto targets = ParseTraffic(object);
    ASSERT_TRUE(targets.ok()) << object.dump();
    EXPECT_TRUE(targets->empty());
  }
}

TEST(ParseTraffic, ErrorsNameTheField) {
  const std::pair<json, const char*> cases[] = {
      {json{{"status", "x"}}, "status: not an object"},
      {WithTraffic("x"), "status.traffic: not a list"},
      {WithTraffic(json::array({1})), "status.traffic[0]: not an object"},
      {WithTraffic(json::array({{{"percent", 100}}})), "status.traffic[0].revision"},
      {WithTraffic(json::array({{{"revision", ""}, {"percent", 100}}})), "status.traffic[0].revision"},
      {WithTraffic(json::array({{{"revision", "a"}}})), "status.traffic[0].percent"},
      {WithTraffic(json::array({{{"revision", "a"}, {"percent", 101}}})), "status.traffic[0].percent"},
      {WithTraffic(json::array({{{"revision", "a"}, {"percent", -1}}})), "status.traffic[0].percent"},
      {WithTraffic(json::array({{{"revision", "a"}, {"percent", 50.5}}})), "status.traffic[0].percent"},
      {WithTraffic(json::array({{{"revision", "a"}, {"percent", 50}}, {{"revision", "a"}, {"percent", 50}}})), "status.traffic[1].revision"},
      {WithTraffic(json::array({{{"revision", "a"}, {"percent", 50}}, {{"revision", "b"}, {"percent", 40}}})), "sum to 90"},
  };
  for (const auto& [object, expected] : cases) {
    auto targets = ParseTraffic(object);
    ASSERT_FALSE(targets.ok()) << object.dump();
    EXPECT_NE(targets.status().message().find(expected), std::string::npos) << targets.status().ToString();
  }
}

TEST(WeightedSplitter, ExactPercentInEveryHundred) {
  WeightedSplitter splitter;
  splitter.Set({{"stable", 80}, {"canary", 20}});
  std::map<std::string, int> counts;
  for (int i = 0; i < 5000; ++i) {
    counts[splitter.Next()]++;
    if ((i + 1) % 100 == 0) {
      EXPECT_EQ(counts["canary"], (i + 1) / 5) << "after " << i + 1;
    }
  }
  EXPECT_EQ(counts["canary"], 1000);
  EXPECT_EQ(counts["stable"], 4000);
}

TEST(WeightedSplitter, SpreadsPicksEvenly) {
  WeightedSplitter splitter;
  splitter.Set({{"stable", 80}, {"canary", 20}});
  // 20 % is every fifth request: never two canary picks in a row, never 5 stable in a row.
  std::string previous;
  int stable_run = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string revision = splitter.Next();
    if (revision == "canary") {
      EXPECT_NE(previous, "canary");
      stable_run = 0;
    } else {
      EXPECT_LT(++stable_run, 5);
    }
    previous = revision;
  }
}

TEST(WeightedSplitter, ZeroPercentNeverAndThreeWays) {
  WeightedSplitter splitter;
  splitter.Set({{"a", 33}, {"b", 0}, {"c", 67}});
  std::map<std::string, int> counts;
  for (int i = 0; i < 300; ++i) counts[splitter.Next()]++;
  EXPECT_EQ(counts["a"], 99);
  EXPECT_EQ(counts["b"], 0);
  EXPECT_EQ(counts["c"], 201);
}

TEST(WeightedSplitter, EmptyGivesNoRevision) {
  WeightedSplitter splitter;
  EXPECT_EQ(splitter.Next(), "");
  splitter.Set({{"a", 0}});
  EXPECT_EQ(splitter.Next(), "");
  splitter.Set({{"a", 100}});
  EXPECT_EQ(splitter.Next(), "a");
}

}  // namespace
}  // namespace mlscale::router
