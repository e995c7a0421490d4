// Training data: readers for the bundled set, CSV and MNIST IDX files, a synthetic
// generator, z-score standardization, and the sampler that gives each rank its shard of
// every global batch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/worker/config.h"

namespace mlscale::worker {

// Labelled samples in memory. Features are float32, one sample after another
// (samples x features, row-major); labels are class indices in [0, classes).
struct Dataset {
  int64_t samples = 0;
  int64_t features = 0;
  int64_t classes = 0;
  std::vector<float> x;
  std::vector<int32_t> y;
};

// Per-feature mean and standard deviation of the training split. A feature that is
// constant there gets stddev 1 (it is only centred).
struct Standardization {
  std::vector<float> mean;
  std::vector<float> stddev;
};

Standardization FitStandardization(const Dataset& train);
// Replaces every feature value v by (v - mean) / stddev.
void Standardize(const Standardization& standardization, Dataset& data);

// Reads a CSV file of numbers, one sample per line; `label_column` (negative: from the
// end) holds the integer class label. A first line that is not numeric is a header.
// Errors name the file, line and column.
StatusOr<Dataset> ReadCsv(const std::string& path, int label_column);

// Reads MNIST IDX files: images (ubyte, any number of dimensions after the first) and
// labels (ubyte, one dimension). Pixels become floats 0..255.
StatusOr<Dataset> ReadIdx(const std::string& images_path, const std::string& labels_path);

// `samples` points from `classes` Gaussian clusters in `features` dimensions; the same
// seed gives the same data. For benchmarks of any size.
Dataset GenerateSynthetic(int64_t samples, int64_t features, int64_t classes, uint64_t seed);

// The folder holding bundled data sets: MLSCALE_DATA_DIR, else the source tree's
// examples/data (compiled in, so a binary in the build tree finds it).
std::string BundledDataDir();

struct TrainTestData {
  std::string name;  // for the model's metadata: "digits", a path, or "synthetic(...)"
  Dataset train;
  Dataset test;
};

// Loads the configured data, holds out a seeded random `test_fraction` when there is no
// separate test set, and checks that train and test agree on features and classes.
// Features are not standardized yet.
StatusOr<TrainTestData> LoadTrainTestData(const DatasetConfig& config, double test_fraction,
                                          uint64_t seed, const std::string& data_dir);

// Which samples a rank trains on. Each epoch is a seeded permutation of the training
// set cut into global batches of `batch_size` (the last one may be smaller); rank r of n
// takes positions r, r+n, r+2n, ... of every global batch, as PyTorch's
// DistributedSampler does. The union over ranks of step s's samples is the same for any
// number of ranks, which is what makes 1 and n ranks train the same model.
class ShardSampler {
 public:
  ShardSampler(int64_t samples, int64_t batch_size, uint64_t seed, int rank, int world_size);

  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  // Number of samples in global batch `step` (0-based over all epochs).
  int64_t GlobalBatchSize(int64_t step) const;
  // Indices into the training set of this rank's samples in global batch `step`, with
  // their positions inside the global batch (the key for per-sample randomness).
  void RankBatch(int64_t step, std::vector<int64_t>& indices,
                 std::vector<int64_t>& positions) const;

 private:
  const std::vector<int64_t>& Permutation(int64_t epoch) const;

  int64_t samples_, batch_size_;
  uint64_t seed_;
  int rank_, world_size_;
  int64_t steps_per_epoch_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> cached_permutation_;
};

}  // namespace mlscale::worker
