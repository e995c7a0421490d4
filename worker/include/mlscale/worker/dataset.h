// Training data: readers for the bundled set, CSV and MNIST IDX files, a synthetic
// generator, z-score standardization, the shard of the data each rank holds, and the
// sampler that gives each rank its share of every global batch.
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
// The same in two parts, for a training set spread over ranks: the per-feature sums and
// sums of squares of some samples (2 x features values; summed over ranks, e.g. by an
// AllReduce), then the statistics of `samples` samples from those sums.
std::vector<double> FeatureMoments(const Dataset& data);
Standardization StandardizationFromMoments(const std::vector<double>& moments, int64_t samples);
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

// Which share of the data this process holds. Sample t of the training set belongs to
// batch slot t mod batchSize (ShardSampler) and slot s to rank s mod worldSize; sample i of
// the test set to rank i mod worldSize. The default is everything.
struct DataShard {
  int rank = 0;
  int world_size = 1;
  int64_t batch_size = 1;
  bool OwnsTrainingSample(int64_t t) const { return (t % batch_size) % world_size == rank; }
  bool OwnsTestSample(int64_t i) const { return i % world_size == rank; }
};

struct TrainTestData {
  std::string name;  // for the model's metadata: "digits", a path, or "synthetic(...)"
  Dataset train;     // this shard's training samples, in training-set order
  Dataset test;      // this shard's test samples, in test-set order
  int64_t train_samples = 0, test_samples = 0;  // in the whole data set
};

// Loads this shard of the configured data: only its records are parsed and kept (a CSV
// file is still scanned line by line, an IDX file read in blocks). Holds out a seeded
// random `test_fraction` when there is no separate test set, and checks that train and
// test agree on features. Features are not standardized yet. `classes` of each part is
// 1 + the largest label of this shard (the caller combines shards); with one shard the
// labels are checked (at least 2 classes).
StatusOr<TrainTestData> LoadTrainTestData(const DatasetConfig& config, double test_fraction,
                                          uint64_t seed, const std::string& data_dir,
                                          const DataShard& shard = {});

// The checks of a whole data set, for the shards combined (classes: over all shards):
// training samples present, at least 2 classes. Errors name the data set.
Status CheckClassCount(const TrainTestData& data);

// Which samples a rank trains on. The training set is dealt into `batch_size` slots
// (sample t to slot t mod batch_size) and position s of every global batch is filled from
// slot s: each epoch shuffles every slot with a seed of its own, and global batch k of the
// epoch takes the k-th sample of each shuffled slot (the last batch, when the set does not
// divide evenly, has the slots that still have one). Rank r of n takes positions r, r+n,
// r+2n, ... of every global batch, as PyTorch's DistributedSampler does, so a rank only
// ever needs the samples of its own slots (DataShard). The global batches do not depend on
// the number of ranks, which is what makes 1 and n ranks (and a resume on another number
// of ranks) train the same model.
class ShardSampler {
 public:
  ShardSampler(int64_t samples, int64_t batch_size, uint64_t seed, int rank, int world_size);

  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  // Number of samples in global batch `step` (0-based over all epochs).
  int64_t GlobalBatchSize(int64_t step) const;
  // The training-set index of the sample at `position` of global batch `step`
  // (position < GlobalBatchSize(step)); the same for any rank and number of ranks.
  int64_t SampleAt(int64_t step, int64_t position) const;
  // Where training sample t (owned by this rank) sits in this rank's shard
  // (TrainTestData::train keeps its samples in training-set order).
  int64_t LocalIndex(int64_t t) const;
  // Indices into this rank's shard of its samples in global batch `step`, with their
  // positions inside the global batch (the key for per-sample randomness).
  void RankBatch(int64_t step, std::vector<int64_t>& indices,
                 std::vector<int64_t>& positions) const;

 private:
  // The shuffled sample numbers (0 .. slot size - 1) of `slot` in `epoch`.
  const std::vector<int64_t>& SlotOrder(int64_t epoch, int64_t slot) const;  // this rank's slots, cached
  std::vector<int64_t> ShuffledSlot(int64_t epoch, int64_t slot) const;
  int64_t SlotSize(int64_t slot) const;

  int64_t samples_, batch_size_;
  uint64_t seed_;
  int rank_, world_size_;
  int64_t steps_per_epoch_, own_slots_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<std::vector<int64_t>> cached_orders_;  // this rank's slots: r, r+n, ...
};

}  // namespace mlscale::worker
