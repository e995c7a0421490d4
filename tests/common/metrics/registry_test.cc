// common/metrics: the text format, the lock-free histogram, the registry.
#include "mlscale/metrics/registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace mlscale::metrics {
namespace {

TEST(MetricsFormatTest, LabelsAndNumbers) {
  EXPECT_EQ(RenderLabels({}), "");
  EXPECT_EQ(RenderLabels({{"model", "a\"b\\c\nd"}, {"code", "200"}}), "{model=\"a\\\"b\\\\c\\nd\",code=\"200\"}");
  EXPECT_EQ(FormatNumber(0.0025), "0.0025");
  EXPECT_EQ(FormatNumber(0.1 + 0.2), "0.30000000000000004") << "reads back exactly";
  EXPECT_EQ(FormatNumber(3), "3");
  EXPECT_EQ(FormatNumber(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatNumber(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatNumber(std::nan("")), "NaN");
}

TEST(HistogramTest, BucketsAreCumulativeAndInclusive) {
  Histogram histogram({1, 2});
  for (double value : {0.5, 1.0, 1.5, 7.0}) histogram.Observe(value);
  std::string out;
  histogram.Render("h", "{m=\"x\"}", out);
  EXPECT_EQ(out,
            "h_bucket{m=\"x\",le=\"1\"} 2\nh_bucket{m=\"x\",le=\"2\"} 3\nh_bucket{m=\"x\",le=\"+Inf\"} 4\n"
            "h_sum{m=\"x\"} 10\nh_count{m=\"x\"} 4\n");
  Histogram bare({1});
  out.clear();
  bare.Render("b", "", out);
  EXPECT_EQ(out, "b_bucket{le=\"1\"} 0\nb_bucket{le=\"+Inf\"} 0\nb_sum 0\nb_count 0\n");
}

TEST(HistogramTest, ConcurrentObservationsAreAllCounted) {
  Histogram histogram({0.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i) histogram.Observe(1);
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::string out;
  histogram.Render("h", "", out);
  EXPECT_NE(out.find("h_count 40000\n"), std::string::npos) << out;
  EXPECT_NE(out.find("h_sum 40000\n"), std::string::npos) << out;
}

TEST(RegistryTest, RendersFamiliesByName) {
  Registry registry;
  registry.Describe("requests_total", "Requests.");
  registry.Add("requests_total", {{"verb", "get"}});
  registry.Add("requests_total", {{"verb", "get"}}, 2);
  registry.Set("depth", {}, 7);
  registry.Set("depth", {}, 5);
  registry.Observe("latency_seconds", {}, 0.003);
  EXPECT_EQ(registry.Value("requests_total", {{"verb", "get"}}), 3);
  EXPECT_EQ(registry.Value("depth", {}), 5);
  EXPECT_EQ(registry.Value("missing", {}), 0);
  const std::string text = registry.Render();
  EXPECT_NE(text.find("# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total{verb=\"get\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE depth gauge\ndepth 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE latency_seconds histogram\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"60\"} 1\n"), std::string::npos) << text;
  EXPECT_LT(text.find("depth"), text.find("latency_seconds")) << "families are sorted by name";
  EXPECT_EQ(Registry().Render(), "") << "described-only or empty families are not rendered";
}

}  // namespace
}  // namespace mlscale::metrics
