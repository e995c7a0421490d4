#include "mlscale/worker/dataset.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>

namespace mlscale::worker {

std::vector<double> FeatureMoments(const Dataset& data) {
  const int64_t n = data.samples, f = data.features;
  std::vector<double> moments(size_t(2 * f), 0.0);  // sums, then sums of squares
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < f; ++j) {
      double v = data.x[size_t(i * f + j)];
      moments[size_t(j)] += v;
      moments[size_t(f + j)] += v * v;
    }
  }
  return moments;
}

Standardization StandardizationFromMoments(const std::vector<double>& moments, int64_t n) {
  const size_t f = moments.size() / 2;
  Standardization s;
  s.mean.resize(f);
  s.stddev.resize(f);
  for (size_t j = 0; j < f; ++j) {
    double mean = n > 0 ? moments[j] / double(n) : 0.0;
    double variance = n > 0 ? std::max(0.0, moments[f + j] / double(n) - mean * mean) : 0.0;
    double stddev = std::sqrt(variance);
    s.mean[j] = float(mean);
    s.stddev[j] = stddev > 1e-8 ? float(stddev) : 1.0f;
  }
  return s;
}

Standardization FitStandardization(const Dataset& train) {
  return StandardizationFromMoments(FeatureMoments(train), train.samples);
}

void Standardize(const Standardization& s, Dataset& data) {
  const int64_t f = data.features;
  for (int64_t i = 0; i < data.samples; ++i) {
    for (int64_t j = 0; j < f; ++j) {
      float& v = data.x[size_t(i * f + j)];
      v = (v - s.mean[size_t(j)]) / s.stddev[size_t(j)];
    }
  }
}

namespace {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return std::string(s.substr(b, e - b));
}

bool ParseFloat(const std::string& field, float& out) {
  if (field.empty()) return false;
  const char* begin = field.data();
  if (*begin == '+') ++begin;
  auto [end, error] = std::from_chars(begin, field.data() + field.size(), out);
  return error == std::errc() && end == field.data() + field.size() && std::isfinite(out);
}

// Sets `classes` from the labels (1 + the largest; 0 without samples).
void SetClasses(Dataset& data) {
  data.classes = data.y.empty() ? 0 : int64_t(*std::max_element(data.y.begin(), data.y.end())) + 1;
}

// Checks that a whole data set is usable.
Status CheckLabels(const Dataset& data, const std::string& where) {
  if (data.samples == 0) return InvalidArgument(where + ": no samples");
  if (data.classes < 2) return InvalidArgument(where + ": needs at least 2 classes, labels are all 0");
  return Status::Ok();
}

// Where a reader puts record i of a file (records counted from 0, header and blank
// lines not included); called once per record, in file order.
enum class Destination { kSkip, kFirst, kSecond };
using Router = std::function<Destination(int64_t record)>;

// The records of one file that a router sent to `first` and `second`.
struct Routed {
  Dataset first, second;
  int64_t records = 0;
};

void StartRouted(Routed& out, int64_t features) {
  out.first.features = out.second.features = features;
}

void FinishRouted(Routed& out) {
  SetClasses(out.first);
  SetClasses(out.second);
}

// Reads a CSV file; only routed records are parsed (a skipped one costs a line scan).
StatusOr<Routed> ReadCsvRouted(const std::string& path, int label_column, const Router& route) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open CSV file '" + path + "'");
  Routed out;
  std::string line;
  std::vector<std::string> fields;
  int64_t line_number = 0;
  int64_t columns = -1;
  size_t label_index = 0;
  auto split = [&] {
    fields.clear();
    std::stringstream row(line);
    std::string field;
    while (std::getline(row, field, ',')) fields.push_back(Trim(field));
    if (!line.empty() && line.back() == ',') fields.emplace_back();
  };
  while (std::getline(in, line)) {
    ++line_number;
    if (Trim(line).empty()) continue;
    const std::string where = path + ":" + std::to_string(line_number);
    if (columns < 0) {
      split();
      columns = int64_t(fields.size());
      if (columns < 2) return InvalidArgument(where + ": needs a label and at least one feature column");
      int64_t index = label_column < 0 ? columns + label_column : label_column;
      if (index < 0 || index >= columns) {
        return InvalidArgument(where + ": labelColumn " + std::to_string(label_column) +
                               " is outside the " + std::to_string(columns) + " columns");
      }
      label_index = size_t(index);
      StartRouted(out, columns - 1);
      float ignored;
      bool numeric = std::all_of(fields.begin(), fields.end(),
                                 [&](const std::string& f) { return ParseFloat(f, ignored); });
      if (!numeric && line_number == 1) continue;  // header
    }
    const Destination destination = route(out.records++);
    if (destination == Destination::kSkip) continue;
    Dataset& data = destination == Destination::kFirst ? out.first : out.second;
    split();
    if (int64_t(fields.size()) != columns) {
      return InvalidArgument(where + ": has " + std::to_string(fields.size()) + " columns, expected " +
                             std::to_string(columns));
    }
    for (size_t c = 0; c < fields.size(); ++c) {
      float value;
      if (!ParseFloat(fields[c], value)) {
        return InvalidArgument(where + ": column " + std::to_string(c + 1) + ": '" + fields[c] +
                               "' is not a finite number");
      }
      if (c == label_index) {
        if (value < 0 || value != std::floor(value) || value > 1e6f) {
          return InvalidArgument(where + ": label '" + fields[c] +
                                 "' is not a class index (an integer >= 0)");
        }
        data.y.push_back(int32_t(value));
      } else {
        data.x.push_back(value);
      }
    }
    ++data.samples;
  }
  if (in.bad()) return DataLoss("error reading '" + path + "'");
  FinishRouted(out);
  return out;
}

Destination Everything(int64_t) { return Destination::kFirst; }

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// An IDX file of unsigned bytes, opened: its dimensions checked against its size.
struct IdxFile {
  std::ifstream in;
  std::vector<uint32_t> dims;
  uint64_t record_bytes = 1;  // the product of the dimensions after the first
};

StatusOr<std::unique_ptr<IdxFile>> OpenIdx(const std::string& path) {
  auto file = std::make_unique<IdxFile>();
  file->in.open(path, std::ios::binary);
  if (!file->in) return NotFound("cannot open '" + path + "'");
  std::error_code error;
  const uint64_t size = std::filesystem::file_size(path, error);
  if (error) return NotFound("cannot read the size of '" + path + "': " + error.message());
  unsigned char head[4] = {0, 0, 0, 0};
  file->in.read(reinterpret_cast<char*>(head), 4);
  if (file->in.gcount() < 4 || head[0] != 0 || head[1] != 0) {
    return InvalidArgument("'" + path + "' is not an IDX file (bad magic number)");
  }
  if (head[2] != 0x08) {
    return InvalidArgument("'" + path + "': IDX element type " + std::to_string(head[2]) +
                           " is not supported (only unsigned bytes, 0x08)");
  }
  const size_t rank = head[3];
  if (rank == 0 || size < 4 + 4 * rank) return InvalidArgument("'" + path + "': IDX header is truncated");
  std::vector<unsigned char> raw(4 * rank);
  file->in.read(reinterpret_cast<char*>(raw.data()), std::streamsize(raw.size()));
  uint64_t elements = 1;
  for (size_t d = 0; d < rank; ++d) {
    file->dims.push_back(BigEndian32(&raw[4 * d]));
    elements *= file->dims.back();
    if (elements > (uint64_t(1) << 40)) return InvalidArgument("'" + path + "': IDX dimensions too large");
    if (d > 0) file->record_bytes *= file->dims.back();
  }
  if (size != 4 + 4 * rank + elements) {
    return InvalidArgument("'" + path + "': IDX data is " + std::to_string(size - 4 - 4 * rank) +
                           " bytes, the header says " + std::to_string(elements));
  }
  return file;
}

// Reads images and labels; only routed records are kept, the files are read in blocks.
StatusOr<Routed> ReadIdxRouted(const std::string& images_path, const std::string& labels_path, const Router& route) {
  auto images = OpenIdx(images_path);
  if (!images.ok()) return images.status();
  auto labels = OpenIdx(labels_path);
  if (!labels.ok()) return labels.status();
  if ((*labels)->dims.size() != 1) return InvalidArgument("'" + labels_path + "': labels must be one-dimensional");
  const uint32_t count = (*images)->dims[0];
  if ((*labels)->dims[0] != count) {
    return InvalidArgument("'" + images_path + "' has " + std::to_string(count) + " images but '" + labels_path +
                           "' has " + std::to_string((*labels)->dims[0]) + " labels");
  }
  const uint64_t f = (*images)->record_bytes;
  Routed out;
  StartRouted(out, int64_t(f));
  constexpr int64_t kBlock = 4096;  // records per read
  std::vector<unsigned char> pixels, classes;
  for (int64_t first = 0; first < int64_t(count); first += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, int64_t(count) - first);
    pixels.resize(size_t(n) * f);
    classes.resize(size_t(n));
    (*images)->in.read(reinterpret_cast<char*>(pixels.data()), std::streamsize(pixels.size()));
    (*labels)->in.read(reinterpret_cast<char*>(classes.data()), std::streamsize(n));
    if (!(*images)->in) return DataLoss("error reading '" + images_path + "'");
    if (!(*labels)->in) return DataLoss("error reading '" + labels_path + "'");
    for (int64_t k = 0; k < n; ++k) {
      const Destination destination = route(out.records++);
      if (destination == Destination::kSkip) continue;
      Dataset& data = destination == Destination::kFirst ? out.first : out.second;
      data.x.insert(data.x.end(), pixels.begin() + long(uint64_t(k) * f), pixels.begin() + long(uint64_t(k + 1) * f));
      data.y.push_back(classes[size_t(k)]);
      ++data.samples;
    }
  }
  FinishRouted(out);
  return out;
}

}  // namespace

StatusOr<Dataset> ReadCsv(const std::string& path, int label_column) {
  auto routed = ReadCsvRouted(path, label_column, Everything);
  if (!routed.ok()) return routed.status();
  MLSCALE_RETURN_IF_ERROR(CheckLabels(routed->first, path));
  return std::move(routed->first);
}

StatusOr<Dataset> ReadIdx(const std::string& images_path, const std::string& labels_path) {
  auto routed = ReadIdxRouted(images_path, labels_path, Everything);
  if (!routed.ok()) return routed.status();
  MLSCALE_RETURN_IF_ERROR(CheckLabels(routed->first, labels_path));
  return std::move(routed->first);
}

Dataset GenerateSynthetic(int64_t samples, int64_t features, int64_t classes, uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x5eed5eed5eedULL);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // Class centres close enough that the classes overlap (accuracy well below 100 %).
  std::vector<float> centres(size_t(classes * features));
  for (float& c : centres) c = 0.35f * normal(rng);
  Dataset data;
  data.samples = samples;
  data.features = features;
  data.classes = classes;
  data.x.resize(size_t(samples * features));
  data.y.resize(size_t(samples));
  for (int64_t i = 0; i < samples; ++i) {
    int32_t label = int32_t(i % classes);
    data.y[size_t(i)] = label;
    for (int64_t j = 0; j < features; ++j) {
      data.x[size_t(i * features + j)] = centres[size_t(label * features + j)] + 2.0f * normal(rng);
    }
  }
  return data;
}

std::string BundledDataDir() {
  if (const char* dir = std::getenv("MLSCALE_DATA_DIR"); dir != nullptr && *dir != '\0') return dir;
  return MLSCALE_SOURCE_DATA_DIR;
}

namespace {

// Applies `route` to the samples of a data set in memory (the generator's output).
Routed RouteInMemory(const Dataset& all, const Router& route) {
  Routed out;
  StartRouted(out, all.features);
  for (int64_t i = 0; i < all.samples; ++i) {
    const Destination destination = route(out.records++);
    if (destination == Destination::kSkip) continue;
    Dataset& data = destination == Destination::kFirst ? out.first : out.second;
    data.x.insert(data.x.end(), all.x.begin() + i * all.features, all.x.begin() + (i + 1) * all.features);
    data.y.push_back(all.y[size_t(i)]);
    ++data.samples;
  }
  FinishRouted(out);
  return out;
}

// Reads one configured file (CSV, or IDX images with their labels) through `route`.
StatusOr<Routed> ReadFileRouted(const DatasetConfig& c, const std::string& path, const std::string& labels,
                                const Router& route) {
  if (c.format == DatasetConfig::Format::kIdx) return ReadIdxRouted(path, labels, route);
  return ReadCsvRouted(path, c.label_column, route);
}

// Records in a configured file, without keeping any (an IDX file's header says how many).
StatusOr<int64_t> CountRecords(const DatasetConfig& c, const std::string& path) {
  if (c.format == DatasetConfig::Format::kIdx) {
    auto images = OpenIdx(path);
    if (!images.ok()) return images.status();
    return int64_t((*images)->dims[0]);
  }
  auto routed = ReadCsvRouted(path, c.label_column, [](int64_t) { return Destination::kSkip; });
  if (!routed.ok()) return routed.status();
  return routed->records;
}

// Which of `records` samples are held out for test: a seeded shuffle picks
// `test_fraction` of them (at least one, and at least one left for training).
StatusOr<std::vector<bool>> HoldOut(int64_t records, double test_fraction, uint64_t seed) {
  if (records < 2) return InvalidArgument("needs at least 2 samples to hold out a test set");
  std::vector<int64_t> order(static_cast<size_t>(records));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed ^ 0x7e57ULL);
  std::shuffle(order.begin(), order.end(), rng);
  const int64_t test =
      std::clamp<int64_t>(int64_t(std::llround(double(records) * test_fraction)), 1, records - 1);
  std::vector<bool> held_out(size_t(records), false);
  for (int64_t k = 0; k < test; ++k) held_out[size_t(order[size_t(k)])] = true;
  return held_out;
}

// Routes the records of one file into this shard's training (first) and test (second)
// samples, holding out the records marked in `held_out`. Counts both sets in `out`.
Router HoldOutRouter(const std::vector<bool>& held_out, const DataShard& shard, TrainTestData& out) {
  return [&held_out, &shard, &out](int64_t record) {
    if (held_out[size_t(record)]) return shard.OwnsTestSample(out.test_samples++) ? Destination::kSecond : Destination::kSkip;
    return shard.OwnsTrainingSample(out.train_samples++) ? Destination::kFirst : Destination::kSkip;
  };
}

void TakeRouted(Routed& routed, TrainTestData& out) {
  out.train = std::move(routed.first);
  out.test = std::move(routed.second);
}

}  // namespace

Status CheckClassCount(const TrainTestData& data) {
  if (data.train_samples == 0) return InvalidArgument(data.name + ": no training samples");
  if (data.train.classes < 2) return InvalidArgument(data.name + ": needs at least 2 classes, labels are all 0");
  return Status::Ok();
}

StatusOr<TrainTestData> LoadTrainTestData(const DatasetConfig& c, double test_fraction, uint64_t seed,
                                          const std::string& data_dir, const DataShard& shard) {
  TrainTestData out;
  switch (c.source) {
    case DatasetConfig::Source::kBundled: {
      out.name = c.name;
      const std::string path = data_dir + "/" + c.name + "/" + c.name + ".csv";
      DatasetConfig csv;
      csv.label_column = -1;
      auto loaded = [&]() -> Status {
        auto records = CountRecords(csv, path);
        if (!records.ok()) return records.status();
        auto held_out = HoldOut(*records, test_fraction, seed);
        if (!held_out.ok()) return held_out.status();
        auto routed = ReadCsvRouted(path, -1, HoldOutRouter(*held_out, shard, out));
        if (!routed.ok()) return routed.status();
        TakeRouted(*routed, out);
        return Status::Ok();
      }();
      if (!loaded.ok()) return loaded.WithContext("bundled data set '" + c.name + "' (MLSCALE_DATA_DIR)");
      break;
    }
    case DatasetConfig::Source::kSynthetic: {
      out.name = "synthetic(" + std::to_string(c.synthetic_samples) + "x" + std::to_string(c.synthetic_features) +
                 ", " + std::to_string(c.synthetic_classes) + " classes)";
      // The generator is sequential: every rank generates all samples and keeps its shard.
      Dataset all = GenerateSynthetic(c.synthetic_samples, c.synthetic_features, c.synthetic_classes, seed);
      auto held_out = HoldOut(all.samples, test_fraction, seed);
      if (!held_out.ok()) return held_out.status();
      Routed routed = RouteInMemory(all, HoldOutRouter(*held_out, shard, out));
      TakeRouted(routed, out);
      break;
    }
    case DatasetConfig::Source::kFiles: {
      out.name = c.path;
      if (c.test_path.empty()) {
        auto records = CountRecords(c, c.path);
        if (!records.ok()) return records.status().WithContext("trainer.dataset.path");
        auto held_out = HoldOut(*records, test_fraction, seed);
        if (!held_out.ok()) return held_out.status().WithContext("trainer.dataset.path");
        auto routed = ReadFileRouted(c, c.path, c.labels_path, HoldOutRouter(*held_out, shard, out));
        if (!routed.ok()) return routed.status().WithContext("trainer.dataset.path");
        TakeRouted(*routed, out);
      } else {
        auto train = ReadFileRouted(c, c.path, c.labels_path, [&](int64_t t) {
          return shard.OwnsTrainingSample(t) ? Destination::kFirst : Destination::kSkip;
        });
        if (!train.ok()) return train.status().WithContext("trainer.dataset.path");
        auto test = ReadFileRouted(c, c.test_path, c.test_labels_path, [&](int64_t i) {
          return shard.OwnsTestSample(i) ? Destination::kFirst : Destination::kSkip;
        });
        if (!test.ok()) return test.status().WithContext("trainer.dataset.testPath");
        out.train = std::move(train->first);
        out.test = std::move(test->first);
        out.train_samples = train->records;
        out.test_samples = test->records;
        if (out.test_samples == 0) return InvalidArgument("trainer.dataset.testPath: " + c.test_path + ": no samples");
      }
      break;
    }
  }
  if (out.train.features != out.test.features) {
    return InvalidArgument("the test set has " + std::to_string(out.test.features) +
                           " features, the training set " + std::to_string(out.train.features));
  }
  int64_t classes = std::max(out.train.classes, out.test.classes);
  out.train.classes = out.test.classes = classes;
  if (shard.world_size == 1) MLSCALE_RETURN_IF_ERROR(CheckClassCount(out));
  return out;
}

ShardSampler::ShardSampler(int64_t samples, int64_t batch_size, uint64_t seed, int rank, int world_size)
    : samples_(samples), batch_size_(batch_size), seed_(seed), rank_(rank), world_size_(world_size),
      steps_per_epoch_((samples + batch_size - 1) / batch_size),
      own_slots_((batch_size - rank + world_size - 1) / world_size) {}

int64_t ShardSampler::SlotSize(int64_t slot) const {
  return slot < samples_ ? (samples_ - slot + batch_size_ - 1) / batch_size_ : 0;
}

std::vector<int64_t> ShardSampler::ShuffledSlot(int64_t epoch, int64_t slot) const {
  std::vector<int64_t> order(size_t(SlotSize(slot)));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng((seed_ * 0x9E3779B97F4A7C15ULL + uint64_t(epoch) + 1) ^ (uint64_t(slot) * 0xBF58476D1CE4E5B9ULL));
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

const std::vector<int64_t>& ShardSampler::SlotOrder(int64_t epoch, int64_t slot) const {
  if (epoch != cached_epoch_) {
    cached_orders_.resize(size_t(own_slots_));
    for (int64_t j = 0; j < own_slots_; ++j) cached_orders_[size_t(j)] = ShuffledSlot(epoch, rank_ + j * world_size_);
    cached_epoch_ = epoch;
  }
  return cached_orders_[size_t((slot - rank_) / world_size_)];
}

int64_t ShardSampler::GlobalBatchSize(int64_t step) const {
  int64_t in_epoch = step % steps_per_epoch_;
  return std::min(batch_size_, samples_ - in_epoch * batch_size_);
}

int64_t ShardSampler::SampleAt(int64_t step, int64_t position) const {
  // Any slot, not only this rank's: shuffled afresh rather than from the cache.
  return position + batch_size_ * ShuffledSlot(step / steps_per_epoch_, position)[size_t(step % steps_per_epoch_)];
}

int64_t ShardSampler::LocalIndex(int64_t t) const {
  // Own samples in training-set order: every full round of batch_size samples holds
  // own_slots_ of them, and within a round slot s is the ((s - rank) / n)-th.
  return (t / batch_size_) * own_slots_ + (t % batch_size_ - rank_) / world_size_;
}

void ShardSampler::RankBatch(int64_t step, std::vector<int64_t>& indices, std::vector<int64_t>& positions) const {
  indices.clear();
  positions.clear();
  const int64_t epoch = step / steps_per_epoch_, in_epoch = step % steps_per_epoch_;
  const int64_t count = GlobalBatchSize(step);
  for (int64_t p = rank_; p < count; p += world_size_) {
    const int64_t t = p + batch_size_ * SlotOrder(epoch, p)[size_t(in_epoch)];
    indices.push_back(LocalIndex(t));
    positions.push_back(p);
  }
}

}  // namespace mlscale::worker
