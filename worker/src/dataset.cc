#include "mlscale/worker/dataset.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

namespace mlscale::worker {

Standardization FitStandardization(const Dataset& train) {
  const int64_t n = train.samples, f = train.features;
  std::vector<double> sum(size_t(f), 0.0), sum_sq(size_t(f), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < f; ++j) {
      double v = train.x[size_t(i * f + j)];
      sum[size_t(j)] += v;
      sum_sq[size_t(j)] += v * v;
    }
  }
  Standardization s;
  s.mean.resize(size_t(f));
  s.stddev.resize(size_t(f));
  for (int64_t j = 0; j < f; ++j) {
    double mean = n > 0 ? sum[size_t(j)] / double(n) : 0.0;
    double variance = n > 0 ? std::max(0.0, sum_sq[size_t(j)] / double(n) - mean * mean) : 0.0;
    double stddev = std::sqrt(variance);
    s.mean[size_t(j)] = float(mean);
    s.stddev[size_t(j)] = stddev > 1e-8 ? float(stddev) : 1.0f;
  }
  return s;
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

// Sets `classes` from the labels and checks they are usable.
Status CheckLabels(Dataset& data, const std::string& where) {
  if (data.samples == 0) return InvalidArgument(where + ": no samples");
  int32_t max_label = *std::max_element(data.y.begin(), data.y.end());
  data.classes = int64_t(max_label) + 1;
  if (data.classes < 2) return InvalidArgument(where + ": needs at least 2 classes, labels are all 0");
  return Status::Ok();
}

}  // namespace

StatusOr<Dataset> ReadCsv(const std::string& path, int label_column) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open CSV file '" + path + "'");
  Dataset data;
  std::string line;
  std::vector<std::string> fields;
  int64_t line_number = 0;
  int64_t columns = -1;
  size_t label_index = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (Trim(line).empty()) continue;
    fields.clear();
    std::stringstream row(line);
    std::string field;
    while (std::getline(row, field, ',')) fields.push_back(Trim(field));
    if (!line.empty() && line.back() == ',') fields.emplace_back();
    const std::string where = path + ":" + std::to_string(line_number);
    if (columns < 0) {
      columns = int64_t(fields.size());
      if (columns < 2) return InvalidArgument(where + ": needs a label and at least one feature column");
      int64_t index = label_column < 0 ? columns + label_column : label_column;
      if (index < 0 || index >= columns) {
        return InvalidArgument(where + ": labelColumn " + std::to_string(label_column) +
                               " is outside the " + std::to_string(columns) + " columns");
      }
      label_index = size_t(index);
      data.features = columns - 1;
      float ignored;
      bool numeric = std::all_of(fields.begin(), fields.end(),
                                 [&](const std::string& f) { return ParseFloat(f, ignored); });
      if (!numeric && data.samples == 0 && line_number == 1) continue;  // header
    } else if (int64_t(fields.size()) != columns) {
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
  MLSCALE_RETURN_IF_ERROR(CheckLabels(data, path));
  return data;
}

namespace {

StatusOr<std::vector<unsigned char>> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open '" + path + "'");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return bytes;
}

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// Parses an IDX header of unsigned bytes: returns the dimensions, checks the size.
StatusOr<std::vector<uint32_t>> IdxDimensions(const std::vector<unsigned char>& bytes,
                                              const std::string& path) {
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) {
    return InvalidArgument("'" + path + "' is not an IDX file (bad magic number)");
  }
  if (bytes[2] != 0x08) {
    return InvalidArgument("'" + path + "': IDX element type " + std::to_string(bytes[2]) +
                           " is not supported (only unsigned bytes, 0x08)");
  }
  const size_t rank = bytes[3];
  if (rank == 0 || bytes.size() < 4 + 4 * rank) {
    return InvalidArgument("'" + path + "': IDX header is truncated");
  }
  std::vector<uint32_t> dims;
  uint64_t elements = 1;
  for (size_t d = 0; d < rank; ++d) {
    dims.push_back(BigEndian32(&bytes[4 + 4 * d]));
    elements *= dims.back();
    if (elements > (uint64_t(1) << 40)) return InvalidArgument("'" + path + "': IDX dimensions too large");
  }
  if (bytes.size() != 4 + 4 * rank + elements) {
    return InvalidArgument("'" + path + "': IDX data is " + std::to_string(bytes.size() - 4 - 4 * rank) +
                           " bytes, the header says " + std::to_string(elements));
  }
  return dims;
}

}  // namespace

StatusOr<Dataset> ReadIdx(const std::string& images_path, const std::string& labels_path) {
  auto images = ReadFileBytes(images_path);
  if (!images.ok()) return images.status();
  auto labels = ReadFileBytes(labels_path);
  if (!labels.ok()) return labels.status();
  auto image_dims = IdxDimensions(*images, images_path);
  if (!image_dims.ok()) return image_dims.status();
  auto label_dims = IdxDimensions(*labels, labels_path);
  if (!label_dims.ok()) return label_dims.status();
  if (label_dims->size() != 1) return InvalidArgument("'" + labels_path + "': labels must be one-dimensional");
  if ((*label_dims)[0] != (*image_dims)[0]) {
    return InvalidArgument("'" + images_path + "' has " + std::to_string((*image_dims)[0]) + " images but '" +
                           labels_path + "' has " + std::to_string((*label_dims)[0]) + " labels");
  }
  Dataset data;
  data.samples = (*image_dims)[0];
  data.features = 1;
  for (size_t d = 1; d < image_dims->size(); ++d) data.features *= (*image_dims)[d];
  const size_t image_offset = 4 + 4 * image_dims->size();
  data.x.assign(images->begin() + long(image_offset), images->end());
  data.y.assign(labels->begin() + 8, labels->end());
  MLSCALE_RETURN_IF_ERROR(CheckLabels(data, labels_path));
  return data;
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

Dataset Select(const Dataset& all, const std::vector<int64_t>& indices) {
  Dataset out;
  out.samples = int64_t(indices.size());
  out.features = all.features;
  out.classes = all.classes;
  out.x.reserve(size_t(out.samples * out.features));
  for (int64_t i : indices) {
    out.x.insert(out.x.end(), all.x.begin() + i * all.features, all.x.begin() + (i + 1) * all.features);
    out.y.push_back(all.y[size_t(i)]);
  }
  return out;
}

// Splits `all` by a seeded shuffle, keeping `test_fraction` (at least one sample) for test.
Status SplitHoldOut(const Dataset& all, double test_fraction, uint64_t seed, TrainTestData& out) {
  if (all.samples < 2) return InvalidArgument("needs at least 2 samples to hold out a test set");
  std::vector<int64_t> order(size_t(all.samples));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed ^ 0x7e57ULL);
  std::shuffle(order.begin(), order.end(), rng);
  int64_t test = std::clamp<int64_t>(int64_t(std::llround(double(all.samples) * test_fraction)), 1,
                                     all.samples - 1);
  std::vector<int64_t> test_indices(order.begin(), order.begin() + test);
  std::vector<int64_t> train_indices(order.begin() + test, order.end());
  std::sort(test_indices.begin(), test_indices.end());
  std::sort(train_indices.begin(), train_indices.end());
  out.train = Select(all, train_indices);
  out.test = Select(all, test_indices);
  return Status::Ok();
}

StatusOr<Dataset> ReadFiles(const DatasetConfig& c, const std::string& path, const std::string& labels) {
  if (c.format == DatasetConfig::Format::kIdx) return ReadIdx(path, labels);
  return ReadCsv(path, c.label_column);
}

}  // namespace

StatusOr<TrainTestData> LoadTrainTestData(const DatasetConfig& c, double test_fraction, uint64_t seed,
                                          const std::string& data_dir) {
  TrainTestData out;
  switch (c.source) {
    case DatasetConfig::Source::kBundled: {
      out.name = c.name;
      auto all = ReadCsv(data_dir + "/" + c.name + "/" + c.name + ".csv", -1);
      if (!all.ok()) return all.status().WithContext("bundled data set '" + c.name + "' (MLSCALE_DATA_DIR)");
      MLSCALE_RETURN_IF_ERROR(SplitHoldOut(*all, test_fraction, seed, out));
      break;
    }
    case DatasetConfig::Source::kSynthetic: {
      out.name = "synthetic(" + std::to_string(c.synthetic_samples) + "x" + std::to_string(c.synthetic_features) +
                 ", " + std::to_string(c.synthetic_classes) + " classes)";
      Dataset all = GenerateSynthetic(c.synthetic_samples, c.synthetic_features, c.synthetic_classes, seed);
      MLSCALE_RETURN_IF_ERROR(SplitHoldOut(all, test_fraction, seed, out));
      break;
    }
    case DatasetConfig::Source::kFiles: {
      out.name = c.path;
      auto train = ReadFiles(c, c.path, c.labels_path);
      if (!train.ok()) return train.status().WithContext("trainer.dataset.path");
      if (c.test_path.empty()) {
        MLSCALE_RETURN_IF_ERROR(SplitHoldOut(*train, test_fraction, seed, out));
      } else {
        auto test = ReadFiles(c, c.test_path, c.test_labels_path);
        if (!test.ok()) return test.status().WithContext("trainer.dataset.testPath");
        out.train = std::move(*train);
        out.test = std::move(*test);
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
  return out;
}

ShardSampler::ShardSampler(int64_t samples, int64_t batch_size, uint64_t seed, int rank, int world_size)
    : samples_(samples), batch_size_(batch_size), seed_(seed), rank_(rank), world_size_(world_size),
      steps_per_epoch_((samples + batch_size - 1) / batch_size) {}

const std::vector<int64_t>& ShardSampler::Permutation(int64_t epoch) const {
  if (epoch != cached_epoch_) {
    cached_permutation_.resize(size_t(samples_));
    std::iota(cached_permutation_.begin(), cached_permutation_.end(), 0);
    std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ULL + uint64_t(epoch) + 1);
    std::shuffle(cached_permutation_.begin(), cached_permutation_.end(), rng);
    cached_epoch_ = epoch;
  }
  return cached_permutation_;
}

int64_t ShardSampler::GlobalBatchSize(int64_t step) const {
  int64_t in_epoch = step % steps_per_epoch_;
  return std::min(batch_size_, samples_ - in_epoch * batch_size_);
}

void ShardSampler::RankBatch(int64_t step, std::vector<int64_t>& indices, std::vector<int64_t>& positions) const {
  indices.clear();
  positions.clear();
  const std::vector<int64_t>& permutation = Permutation(step / steps_per_epoch_);
  const int64_t first = (step % steps_per_epoch_) * batch_size_;
  const int64_t count = GlobalBatchSize(step);
  for (int64_t p = rank_; p < count; p += world_size_) {
    indices.push_back(permutation[size_t(first + p)]);
    positions.push_back(p);
  }
}

}  // namespace mlscale::worker
