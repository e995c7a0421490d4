#include "mlscale/worker/dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>

namespace mlscale::worker {
namespace {

std::string WriteFile(const std::string& name, const std::string& contents) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

TEST(ReadCsv, ReadsLabelColumnAndSkipsHeader) {
  auto data = ReadCsv(WriteFile("ok.csv", "label,a,b\n1,0.5,2\n0, -1 ,3e2\n\n2,4,5\n"), 0);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->samples, 3);
  EXPECT_EQ(data->features, 2);
  EXPECT_EQ(data->classes, 3);
  EXPECT_EQ(data->y, (std::vector<int32_t>{1, 0, 2}));
  EXPECT_EQ(data->x, (std::vector<float>{0.5f, 2, -1, 300, 4, 5}));
  auto last = ReadCsv(WriteFile("last.csv", "0.5,2,1\n-1,3,0\n"), -1);
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(last->y, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(last->x, (std::vector<float>{0.5f, 2, -1, 3}));
}

TEST(ReadCsv, MalformedFilesGiveClearErrors) {
  struct Case {
    const char* contents;
    int label_column;
    const char* error;
  } cases[] = {
      {"", 0, "no samples"},
      {"a,b\n", 0, "no samples"},
      {"1,2,3\n0,4\n", 0, ":2: has 2 columns, expected 3"},
      {"1,2,3\n0,x,4\n", 0, ":2: column 2: 'x' is not a finite number"},
      {"1,2,3\n0,nan,4\n", 0, "'nan' is not a finite number"},
      {"1,2\n0,\n", 0, ":2: column 2: '' is not a finite number"},
      {"1.5,2\n", 0, "label '1.5' is not a class index"},
      {"-1,2\n", 0, "label '-1' is not a class index"},
      {"1,2\n", 5, "labelColumn 5 is outside the 2 columns"},
      {"1,2\n", -3, "labelColumn -3 is outside"},
      {"7\n", 0, "needs a label and at least one feature"},
      {"0,1\n0,2\n", 0, "needs at least 2 classes"},
      {"h1,h2\n1,2\nlabel,x\n", 0, ":3: column 1: 'label' is not a finite number"},
  };
  for (const auto& c : cases) {
    const std::string path = WriteFile("bad.csv", c.contents);
    auto data = ReadCsv(path, c.label_column);
    ASSERT_FALSE(data.ok()) << c.contents;
    EXPECT_NE(data.status().message().find(c.error), std::string::npos)
        << "input " << c.contents << " gave: " << data.status().message();
    EXPECT_NE(data.status().message().find(path), std::string::npos) << data.status().message();
  }
  EXPECT_EQ(ReadCsv("/nonexistent.csv", 0).status().code(), StatusCode::kNotFound);
}

std::string Idx(std::vector<uint32_t> dims, const std::vector<unsigned char>& data, unsigned char type = 8) {
  std::string out = {0, 0, char(type), char(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out += char((d >> shift) & 0xff);
  }
  out.append(data.begin(), data.end());
  return out;
}

TEST(ReadIdx, ReadsImagesAndLabels) {
  auto images = WriteFile("images.idx", Idx({3, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255}));
  auto labels = WriteFile("labels.idx", Idx({3}, {2, 0, 1}));
  auto data = ReadIdx(images, labels);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->samples, 3);
  EXPECT_EQ(data->features, 4);
  EXPECT_EQ(data->classes, 3);
  EXPECT_EQ(data->x.back(), 255.0f);
  EXPECT_EQ(data->y, (std::vector<int32_t>{2, 0, 1}));
}

TEST(ReadIdx, MalformedFilesGiveClearErrors) {
  auto labels = WriteFile("labels3.idx", Idx({3}, {2, 0, 1}));
  struct Case {
    std::string images;
    const char* error;
  } cases[] = {
      {"PK\3\4", "bad magic number"},
      {Idx({3, 2}, {1, 2, 3, 4, 5, 6}, 0x0d), "element type 13 is not supported"},
      {std::string("\0\0\x08\x03\0\0", 6), "header is truncated"},
      {Idx({3, 2}, {1, 2, 3}), "IDX data is 3 bytes, the header says 6"},
      {Idx({2, 2}, {1, 2, 3, 4}), "has 2 images but"},
  };
  for (const auto& c : cases) {
    auto data = ReadIdx(WriteFile("bad-images.idx", c.images), labels);
    ASSERT_FALSE(data.ok()) << c.error;
    EXPECT_NE(data.status().message().find(c.error), std::string::npos) << data.status().message();
  }
}

TEST(Standardization, UsesTrainingStatistics) {
  Dataset train{3, 2, 2, {1, 5, 2, 5, 3, 5}, {0, 1, 0}};
  Standardization s = FitStandardization(train);
  EXPECT_FLOAT_EQ(s.mean[0], 2.0f);
  EXPECT_NEAR(s.stddev[0], std::sqrt(2.0f / 3.0f), 1e-6);
  EXPECT_FLOAT_EQ(s.stddev[1], 1.0f);  // constant feature: only centred
  Dataset test{1, 2, 2, {4, 7}, {1}};
  Standardize(s, test);
  EXPECT_NEAR(test.x[0], 2.0f / std::sqrt(2.0f / 3.0f), 1e-5);
  EXPECT_FLOAT_EQ(test.x[1], 2.0f);
}

TEST(GenerateSynthetic, IsDeterministicAndBalanced) {
  Dataset a = GenerateSynthetic(100, 5, 4, 9), b = GenerateSynthetic(100, 5, 4, 9);
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(std::count(a.y.begin(), a.y.end(), 3), 25);
  EXPECT_NE(GenerateSynthetic(100, 5, 4, 10).x, a.x);
}

TEST(LoadTrainTestData, BundledDigitsSplit) {
  DatasetConfig config;
  auto data = LoadTrainTestData(config, 0.2, 42, BundledDataDir());
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->train.samples + data->test.samples, 1797);
  EXPECT_EQ(data->test.samples, 359);
  EXPECT_EQ(data->train.features, 64);
  EXPECT_EQ(data->train.classes, 10);
  config.name = "digits";
  EXPECT_EQ(LoadTrainTestData(config, 0.2, 42, "/nonexistent").status().code(), StatusCode::kNotFound);
}

// The union of the ranks' shards of a step is the one-rank batch of that step, and the
// shards do not overlap; every sample is seen once per epoch.
TEST(ShardSampler, ShardsPartitionTheGlobalBatch) {
  const int64_t samples = 103, batch = 10;
  ShardSampler single(samples, batch, 5, 0, 1);
  EXPECT_EQ(single.steps_per_epoch(), 11);
  EXPECT_EQ(single.GlobalBatchSize(10), 3);
  for (int world : {2, 3, 4}) {
    std::set<int64_t> epoch;
    for (int64_t step = 0; step < 2 * single.steps_per_epoch(); ++step) {
      std::vector<int64_t> expected, positions, all;
      single.RankBatch(step, expected, positions);
      for (int rank = 0; rank < world; ++rank) {
        ShardSampler sampler(samples, batch, 5, rank, world);
        std::vector<int64_t> indices, pos;
        sampler.RankBatch(step, indices, pos);
        for (size_t k = 0; k < indices.size(); ++k) {
          EXPECT_EQ(expected[size_t(pos[k])], indices[k]);  // same sample at the same position
          all.push_back(indices[k]);
        }
      }
      std::sort(all.begin(), all.end());
      std::sort(expected.begin(), expected.end());
      EXPECT_EQ(all, expected) << "world " << world << " step " << step;
      if (step < single.steps_per_epoch()) epoch.insert(all.begin(), all.end());
    }
    EXPECT_EQ(int64_t(epoch.size()), samples);
  }
}

}  // namespace
}  // namespace mlscale::worker
