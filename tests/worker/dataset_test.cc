#include "mlscale/worker/dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <numeric>
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

// The union of the ranks' shares of a step is the one-rank batch of that step (same
// samples at the same positions), the shares do not overlap, every sample is seen once
// per epoch, and a rank's indices point at its own samples (DataShard) in its shard.
TEST(ShardSampler, ShardsPartitionTheGlobalBatch) {
  const int64_t samples = 103, batch = 10;
  ShardSampler single(samples, batch, 5, 0, 1);
  EXPECT_EQ(single.steps_per_epoch(), 11);
  EXPECT_EQ(single.GlobalBatchSize(10), 3);
  for (int world : {1, 2, 3, 4}) {
    std::set<int64_t> epoch;
    for (int64_t step = 0; step < 2 * single.steps_per_epoch(); ++step) {
      std::vector<int64_t> expected, positions, all;
      single.RankBatch(step, expected, positions);
      for (size_t k = 0; k < expected.size(); ++k) EXPECT_EQ(single.SampleAt(step, positions[k]), expected[k]);
      for (int rank = 0; rank < world; ++rank) {
        const DataShard shard{rank, world, batch};
        ShardSampler sampler(samples, batch, 5, rank, world);
        std::vector<int64_t> own;  // this rank's training samples, in order: its shard
        for (int64_t t = 0; t < samples; ++t) {
          if (shard.OwnsTrainingSample(t)) own.push_back(t);
        }
        std::vector<int64_t> indices, pos;
        sampler.RankBatch(step, indices, pos);
        for (size_t k = 0; k < indices.size(); ++k) {
          ASSERT_LT(indices[k], int64_t(own.size()));
          const int64_t t = own[size_t(indices[k])];
          EXPECT_EQ(sampler.LocalIndex(t), indices[k]);
          EXPECT_EQ(expected[size_t(pos[k])], t);  // same sample at the same position
          all.push_back(t);
        }
      }
      std::sort(all.begin(), all.end());
      std::sort(expected.begin(), expected.end());
      EXPECT_EQ(all, expected) << "world " << world << " step " << step;
      if (step < single.steps_per_epoch()) epoch.insert(all.begin(), all.end());
    }
    EXPECT_EQ(int64_t(epoch.size()), samples);
  }
  // Another epoch, another order; another seed, another order.
  std::vector<int64_t> first, second, other, positions;
  single.RankBatch(0, first, positions);
  single.RankBatch(single.steps_per_epoch(), second, positions);
  ShardSampler(samples, batch, 6, 0, 1).RankBatch(0, other, positions);
  EXPECT_NE(first, second);
  EXPECT_NE(first, other);
}

// Shards are balanced: with n ranks each holds within one batch slot's worth of N/n.
TEST(DataShard, SharesAreBalanced) {
  const int64_t samples = 1000, batch = 64;
  for (int world : {2, 3, 4, 7}) {
    std::vector<int64_t> sizes(size_t(world), 0);
    for (int64_t t = 0; t < samples; ++t) {
      for (int rank = 0; rank < world; ++rank) sizes[size_t(rank)] += DataShard{rank, world, batch}.OwnsTrainingSample(t);
    }
    const auto [low, high] = std::minmax_element(sizes.begin(), sizes.end());
    EXPECT_LE(*high - *low, (samples + batch - 1) / batch) << "world " << world;
    EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end(), int64_t(0)), samples);
  }
}

// The rows of `data` (features then label) as strings, to compare sets of samples.
std::vector<std::string> Rows(const Dataset& data) {
  std::vector<std::string> rows;
  for (int64_t i = 0; i < data.samples; ++i) {
    std::string row;
    for (int64_t j = 0; j < data.features; ++j) row += std::to_string(data.x[size_t(i * data.features + j)]) + ",";
    rows.push_back(row + std::to_string(data.y[size_t(i)]));
  }
  return rows;
}

// Loading n shards gives, together, exactly the samples of one unsharded load, each
// training sample on the rank DataShard names and in training-set order; the counts of
// the whole set are known to every shard. For CSV and IDX files, with and without a
// separate test file.
TEST(LoadTrainTestData, ShardsTogetherAreTheWholeSet) {
  std::string csv = "a,b,label\n";
  std::vector<unsigned char> pixels, labels;
  for (int i = 0; i < 157; ++i) {
    csv += std::to_string(i) + "," + std::to_string(i * 7 % 13) + "," + std::to_string(i % 3) + "\n";
    pixels.push_back(static_cast<unsigned char>(i));
    pixels.push_back(static_cast<unsigned char>(i * 7 % 13));
    labels.push_back(static_cast<unsigned char>(i % 3));
  }
  DatasetConfig holdout;
  holdout.source = DatasetConfig::Source::kFiles;
  holdout.path = WriteFile("shard.csv", csv);
  holdout.label_column = -1;
  DatasetConfig separate = holdout;
  separate.test_path = WriteFile("shard-test.csv", csv.substr(0, csv.find("\n40,")));
  DatasetConfig idx;
  idx.source = DatasetConfig::Source::kFiles;
  idx.format = DatasetConfig::Format::kIdx;
  idx.path = WriteFile("shard-images.idx", Idx({157, 2}, pixels));
  idx.labels_path = WriteFile("shard-labels.idx", Idx({157}, labels));
  DatasetConfig synthetic;
  synthetic.source = DatasetConfig::Source::kSynthetic;
  synthetic.synthetic_samples = 157;
  for (const DatasetConfig& config : {holdout, separate, idx, synthetic}) {
    auto whole = LoadTrainTestData(config, 0.25, 3, "");
    ASSERT_TRUE(whole.ok()) << whole.status().ToString();
    const std::vector<std::string> train_rows = Rows(whole->train), test_rows = Rows(whole->test);
    EXPECT_EQ(whole->train_samples, whole->train.samples);
    EXPECT_EQ(whole->test_samples, whole->test.samples);
    for (int world : {2, 3, 4}) {
      std::vector<std::string> test_union;
      int64_t train_held = 0;
      for (int rank = 0; rank < world; ++rank) {
        const DataShard shard{rank, world, 16};
        auto part = LoadTrainTestData(config, 0.25, 3, "", shard);
        ASSERT_TRUE(part.ok()) << part.status().ToString();
        EXPECT_EQ(part->train_samples, whole->train_samples);
        EXPECT_EQ(part->test_samples, whole->test_samples);
        ShardSampler sampler(whole->train_samples, 16, 3, rank, world);
        const std::vector<std::string> rows = Rows(part->train);
        int64_t owned = 0;
        for (int64_t t = 0; t < whole->train_samples; ++t) {
          if (!shard.OwnsTrainingSample(t)) continue;
          ASSERT_LT(sampler.LocalIndex(t), int64_t(rows.size()));
          EXPECT_EQ(rows[size_t(sampler.LocalIndex(t))], train_rows[size_t(t)]) << "rank " << rank << " t " << t;
          ++owned;
        }
        EXPECT_EQ(int64_t(rows.size()), owned);  // nothing else
        train_held += owned;
        for (const std::string& row : Rows(part->test)) test_union.push_back(row);
      }
      EXPECT_EQ(train_held, whole->train_samples);
      std::vector<std::string> expected = test_rows;
      std::sort(expected.begin(), expected.end());
      std::sort(test_union.begin(), test_union.end());
      EXPECT_EQ(test_union, expected) << "world " << world;
    }
  }
}

// A rank parses only its own records: a malformed line in another rank's share does not
// fail this one, and fails the rank that owns it with the line named. Files too short for
// their header fail every rank, with the reason.
TEST(LoadTrainTestData, ShardsParseOnlyTheirRecords) {
  std::string csv;
  for (int i = 0; i < 20; ++i) csv += (i == 5 ? std::string("1,x") : std::to_string(i % 2) + "," + std::to_string(i)) + "\n";
  DatasetConfig config;
  config.source = DatasetConfig::Source::kFiles;
  config.path = WriteFile("shard-bad.csv", csv);
  config.test_path = WriteFile("shard-bad-test.csv", "0,1\n1,2\n");
  // Training record 5 is in slot 5 of batch 4, so rank 1 of 2 owns it.
  EXPECT_TRUE(LoadTrainTestData(config, 0.2, 1, "", DataShard{0, 2, 4}).ok());
  auto owner = LoadTrainTestData(config, 0.2, 1, "", DataShard{1, 2, 4});
  ASSERT_FALSE(owner.ok());
  EXPECT_NE(owner.status().message().find("shard-bad.csv:6: column 2: 'x' is not a finite number"), std::string::npos)
      << owner.status().message();

  DatasetConfig idx;
  idx.source = DatasetConfig::Source::kFiles;
  idx.format = DatasetConfig::Format::kIdx;
  idx.labels_path = WriteFile("short-labels.idx", Idx({4}, {0, 1, 0, 1}));
  struct Case {
    std::string images;
    const char* error;
  } cases[] = {
      {Idx({4, 2}, {1, 2, 3, 4, 5, 6, 7}), "IDX data is 7 bytes, the header says 8"},
      {Idx({4, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9}), "IDX data is 9 bytes, the header says 8"},
      {std::string("\0\0\x08", 3), "bad magic number"},
      {Idx({3, 2}, {1, 2, 3, 4, 5, 6}), "has 3 images but"},
  };
  for (const auto& c : cases) {
    idx.path = WriteFile("short-images.idx", c.images);
    for (int rank = 0; rank < 2; ++rank) {
      auto data = LoadTrainTestData(idx, 0.25, 1, "", DataShard{rank, 2, 2});
      ASSERT_FALSE(data.ok()) << c.error;
      EXPECT_NE(data.status().message().find(c.error), std::string::npos) << data.status().message();
      EXPECT_NE(data.status().message().find("trainer.dataset.path"), std::string::npos) << data.status().message();
    }
  }
}

}  // namespace
}  // namespace mlscale::worker
