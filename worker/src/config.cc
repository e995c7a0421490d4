#include "mlscale/worker/config.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace mlscale::worker {
namespace {

using nlohmann::json;

// Reads the fields of one JSON object, remembering the first error and which keys were
// used, so that unknown keys can be reported by name.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path) : object_(object), path_(std::move(path)) {
    if (!object_.is_object()) Fail(path_, "must be an object");
  }

  bool Has(const std::string& key) const { return object_.is_object() && object_.contains(key); }
  std::string PathOf(const std::string& key) const { return path_ + "." + key; }

  // Reads an integer in [min, max] when the key is present.
  template <typename Int>
  void Integer(const std::string& key, Int& out, int64_t min, int64_t max) {
    const json* value = Take(key);
    if (value == nullptr) return;
    if (!value->is_number_integer()) return Fail(PathOf(key), "must be an integer");
    int64_t v = value->is_number_unsigned() && value->get<uint64_t>() > uint64_t(INT64_MAX)
                    ? INT64_MAX : value->get<int64_t>();
    if (v < min) return Fail(PathOf(key), "must be >= " + std::to_string(min));
    if (v > max) return Fail(PathOf(key), "must be <= " + std::to_string(max));
    out = static_cast<Int>(v);
  }

  // Reads a finite number accepted by `valid` (whose failure text is `requirement`).
  void Number(const std::string& key, double& out, const std::function<bool(double)>& valid,
              const std::string& requirement) {
    const json* value = Take(key);
    if (value == nullptr) return;
    if (!value->is_number()) return Fail(PathOf(key), "must be a number");
    double v = value->get<double>();
    if (!std::isfinite(v) || !valid(v)) return Fail(PathOf(key), requirement);
    out = v;
  }

  void String(const std::string& key, std::string& out) {
    const json* value = Take(key);
    if (value == nullptr) return;
    if (!value->is_string() || value->get<std::string>().empty()) {
      return Fail(PathOf(key), "must be a non-empty string");
    }
    out = value->get<std::string>();
  }

  // Reads a string that must be one of `choices`, storing the matching enum value.
  template <typename Enum>
  void Choice(const std::string& key, Enum& out,
              const std::vector<std::pair<std::string, Enum>>& choices) {
    const json* value = Take(key);
    if (value == nullptr) return;
    std::string names;
    for (const auto& [name, e] : choices) {
      if (value->is_string() && value->get<std::string>() == name) {
        out = e;
        return;
      }
      names += (names.empty() ? "" : ", ") + name;
    }
    Fail(PathOf(key), "must be one of " + names);
  }

  // Returns the sub-object at `key` (or null when absent), marking the key as used.
  const json* Object(const std::string& key) { return Take(key); }

  void Fail(const std::string& path, const std::string& message) {
    if (status_.ok()) status_ = InvalidArgument(path + ": " + message);
  }
  void Merge(const Status& status) {
    if (status_.ok() && !status.ok()) status_ = status;
  }

  // The first error, or an error naming the first unknown key.
  Status Finish() {
    if (!status_.ok() || !object_.is_object()) return status_;
    for (const auto& [key, value] : object_.items()) {
      if (!used_.contains(key)) {
        std::string known;
        for (const auto& k : used_known_) known += (known.empty() ? "" : ", ") + k;
        return InvalidArgument(PathOf(key) + ": unknown field (known: " + known + ")");
      }
    }
    return status_;
  }

 private:
  const json* Take(const std::string& key) {
    used_known_.insert(key);
    if (!object_.is_object() || !object_.contains(key)) return nullptr;
    used_.insert(key);
    const json& value = object_.at(key);
    return value.is_null() ? nullptr : &value;
  }

  const json& object_;
  std::string path_;
  std::set<std::string> used_, used_known_;
  Status status_;
};

Status ParseDataset(const json& j, const std::string& path, DatasetConfig& out) {
  ObjectReader r(j, path);
  int sources = int(r.Has("name")) + int(r.Has("path")) + int(r.Has("synthetic"));
  if (sources > 1) r.Fail(path, "give only one of name, path, synthetic");
  r.String("name", out.name);
  if (r.Has("name") && out.name != "digits") {
    r.Fail(r.PathOf("name"), "must be a bundled dataset: digits");
  }
  if (r.Has("path")) out.source = DatasetConfig::Source::kFiles;
  r.String("path", out.path);
  r.String("labelsPath", out.labels_path);
  r.String("testPath", out.test_path);
  r.String("testLabelsPath", out.test_labels_path);
  r.Choice<DatasetConfig::Format>("format", out.format,
                                  {{"csv", DatasetConfig::Format::kCsv},
                                   {"idx", DatasetConfig::Format::kIdx}});
  r.Integer("labelColumn", out.label_column, -100000, 100000);
  bool file_keys = r.Has("labelsPath") || r.Has("testPath") || r.Has("testLabelsPath") ||
                   r.Has("format") || r.Has("labelColumn");
  if (file_keys && out.source != DatasetConfig::Source::kFiles) {
    r.Fail(path, "labelsPath, testPath, testLabelsPath, format and labelColumn need path");
  }
  if (out.source == DatasetConfig::Source::kFiles && out.format == DatasetConfig::Format::kIdx) {
    if (out.labels_path.empty()) r.Fail(r.PathOf("labelsPath"), "required for format idx");
    if (out.test_path.empty() != out.test_labels_path.empty()) {
      r.Fail(r.PathOf("testLabelsPath"), "give testPath and testLabelsPath together");
    }
  }
  if (out.format == DatasetConfig::Format::kCsv &&
      (r.Has("labelsPath") || r.Has("testLabelsPath"))) {
    r.Fail(r.PathOf("labelsPath"), "only for format idx (CSV holds the label in labelColumn)");
  }
  if (const json* synthetic = r.Object("synthetic")) {
    out.source = DatasetConfig::Source::kSynthetic;
    ObjectReader s(*synthetic, r.PathOf("synthetic"));
    s.Integer("samples", out.synthetic_samples, 2, int64_t(1) << 31);
    s.Integer("features", out.synthetic_features, 1, 1 << 20);
    s.Integer("classes", out.synthetic_classes, 2, 1 << 16);
    r.Merge(s.Finish());
  }
  return r.Finish();
}

Status ParseModel(const json& j, const std::string& path, ModelConfig& out) {
  ObjectReader r(j, path);
  if (const json* layers = r.Object("hiddenLayers")) {
    if (!layers->is_array()) {
      r.Fail(r.PathOf("hiddenLayers"), "must be a list of layer widths");
    } else {
      out.hidden_layers.clear();
      for (size_t i = 0; i < layers->size(); ++i) {
        const json& w = (*layers)[i];
        if (!w.is_number_integer() || w.get<int64_t>() < 1 || w.get<int64_t>() > (1 << 20)) {
          r.Fail(r.PathOf("hiddenLayers") + "[" + std::to_string(i) + "]",
                 "must be an integer in [1, 1048576]");
          break;
        }
        out.hidden_layers.push_back(w.get<int>());
      }
    }
  }
  r.Choice<Activation>("activation", out.activation,
                       {{"relu", Activation::kRelu}, {"tanh", Activation::kTanh},
                        {"gelu", Activation::kGelu}});
  r.Number("dropout", out.dropout, [](double v) { return v >= 0 && v < 1; }, "must be in [0, 1)");
  return r.Finish();
}

Status ParseOptimizer(const json& j, const std::string& path, OptimizerConfig& out) {
  ObjectReader r(j, path);
  r.Choice<OptimizerName>("name", out.name,
                          {{"sgd", OptimizerName::kSgd}, {"adam", OptimizerName::kAdam},
                           {"adamw", OptimizerName::kAdamW}});
  auto positive = [](double v) { return v > 0; };
  auto unit = [](double v) { return v >= 0 && v < 1; };
  r.Number("learningRate", out.learning_rate, positive, "must be > 0");
  r.Number("momentum", out.momentum, unit, "must be in [0, 1)");
  r.Number("beta1", out.beta1, unit, "must be in [0, 1)");
  r.Number("beta2", out.beta2, unit, "must be in [0, 1)");
  r.Number("epsilon", out.epsilon, positive, "must be > 0");
  r.Number("weightDecay", out.weight_decay, [](double v) { return v >= 0; }, "must be >= 0");
  if (out.name != OptimizerName::kSgd && r.Has("momentum")) {
    r.Fail(r.PathOf("momentum"), "only for sgd (adam uses beta1)");
  }
  return r.Finish();
}

Status ParseSchedule(const json& j, const std::string& path, ScheduleConfig& out) {
  ObjectReader r(j, path);
  r.Choice<ScheduleName>("name", out.name,
                         {{"constant", ScheduleName::kConstant}, {"step", ScheduleName::kStep},
                          {"cosine", ScheduleName::kCosine}});
  r.Integer("warmupSteps", out.warmup_steps, 0, int64_t(1) << 40);
  r.Integer("stepSize", out.step_size, 1, int64_t(1) << 40);
  r.Number("gamma", out.gamma, [](double v) { return v > 0 && v <= 1; }, "must be in (0, 1]");
  r.Number("minLearningRate", out.min_learning_rate, [](double v) { return v >= 0; },
           "must be >= 0");
  return r.Finish();
}

}  // namespace

StatusOr<TrainerConfig> ParseTrainerConfig(const json& trainer) {
  TrainerConfig config;
  const std::string root = "trainer";
  if (trainer.is_null()) return config;
  ObjectReader r(trainer, root);
  if (const json* j = r.Object("dataset")) r.Merge(ParseDataset(*j, r.PathOf("dataset"), config.dataset));
  if (const json* j = r.Object("model")) r.Merge(ParseModel(*j, r.PathOf("model"), config.model));
  if (const json* j = r.Object("optimizer")) {
    r.Merge(ParseOptimizer(*j, r.PathOf("optimizer"), config.optimizer));
  }
  if (const json* j = r.Object("schedule")) {
    r.Merge(ParseSchedule(*j, r.PathOf("schedule"), config.schedule));
  }
  r.Integer("batchSize", config.batch_size, 1, 1 << 24);
  r.Integer("epochs", config.epochs, 1, 1 << 24);
  r.Integer("seed", config.seed, 0, INT64_MAX);
  if (const json* j = r.Object("checkpoint")) {
    ObjectReader c(*j, r.PathOf("checkpoint"));
    c.Integer("everySteps", config.checkpoint_every_steps, 0, int64_t(1) << 40);
    r.Merge(c.Finish());
  }
  r.Number("testFraction", config.test_fraction, [](double v) { return v > 0 && v < 1; },
           "must be in (0, 1)");
  r.Choice<Precision>("precision", config.precision,
                      {{"float32", Precision::kFloat32}, {"bfloat16", Precision::kBFloat16}});
  r.Integer("bucketBytes", config.bucket_bytes, 4096, int64_t(1) << 32);
  r.Number("logEverySeconds", config.log_every_seconds, [](double v) { return v > 0; },
           "must be > 0");
  MLSCALE_RETURN_IF_ERROR(r.Finish());
  return config;
}

namespace {

// YAML to JSON: scalars become numbers, booleans or null when they read as such.
json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json object = json::object();
      for (const auto& item : node) object[item.first.as<std::string>()] = YamlToJson(item.second);
      return object;
    }
    case YAML::NodeType::Sequence: {
      json array = json::array();
      for (const auto& item : node) array.push_back(YamlToJson(item));
      return array;
    }
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      if (node.Tag() == "!") return text;  // quoted: stays a string
      json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!parsed.is_discarded() && (parsed.is_number() || parsed.is_boolean())) return parsed;
      if (text == "~" || text == "null") return nullptr;
      if (text == "true" || text == "True") return true;
      if (text == "false" || text == "False") return false;
      return text;
    }
    default:
      return nullptr;
  }
}

}  // namespace

StatusOr<TrainerConfig> LoadTrainerConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("cannot read config file '" + path + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    try {
      parsed = YamlToJson(YAML::Load(text));
    } catch (const YAML::Exception& e) {
      return InvalidArgument("config file '" + path + "' is neither JSON nor YAML: " + e.what());
    }
  }
  auto config = ParseTrainerConfig(parsed);
  if (!config.ok()) return config.status().WithContext("config file '" + path + "'");
  return config;
}

json TrainerConfigToJson(const TrainerConfig& c) {
  json dataset;
  switch (c.dataset.source) {
    case DatasetConfig::Source::kBundled: dataset = {{"name", c.dataset.name}}; break;
    case DatasetConfig::Source::kSynthetic:
      dataset = {{"synthetic", {{"samples", c.dataset.synthetic_samples},
                                {"features", c.dataset.synthetic_features},
                                {"classes", c.dataset.synthetic_classes}}}};
      break;
    case DatasetConfig::Source::kFiles:
      dataset = {{"path", c.dataset.path},
                 {"format", c.dataset.format == DatasetConfig::Format::kCsv ? "csv" : "idx"}};
      if (c.dataset.format == DatasetConfig::Format::kCsv) {
        dataset["labelColumn"] = c.dataset.label_column;
      } else {
        dataset["labelsPath"] = c.dataset.labels_path;
      }
      if (!c.dataset.test_path.empty()) dataset["testPath"] = c.dataset.test_path;
      if (!c.dataset.test_labels_path.empty()) dataset["testLabelsPath"] = c.dataset.test_labels_path;
      break;
  }
  const char* activations[] = {"relu", "tanh", "gelu"};
  const char* optimizers[] = {"sgd", "adam", "adamw"};
  const char* schedules[] = {"constant", "step", "cosine"};
  json optimizer = {{"name", optimizers[int(c.optimizer.name)]},
                    {"learningRate", c.optimizer.learning_rate},
                    {"weightDecay", c.optimizer.weight_decay}};
  if (c.optimizer.name == OptimizerName::kSgd) {
    optimizer["momentum"] = c.optimizer.momentum;
  } else {
    optimizer["beta1"] = c.optimizer.beta1;
    optimizer["beta2"] = c.optimizer.beta2;
    optimizer["epsilon"] = c.optimizer.epsilon;
  }
  return {
      {"dataset", dataset},
      {"model", {{"hiddenLayers", c.model.hidden_layers},
                 {"activation", activations[int(c.model.activation)]},
                 {"dropout", c.model.dropout}}},
      {"optimizer", optimizer},
      {"schedule", {{"name", schedules[int(c.schedule.name)]},
                    {"warmupSteps", c.schedule.warmup_steps},
                    {"stepSize", c.schedule.step_size},
                    {"gamma", c.schedule.gamma},
                    {"minLearningRate", c.schedule.min_learning_rate}}},
      {"batchSize", c.batch_size},
      {"epochs", c.epochs},
      {"seed", c.seed},
      {"checkpoint", {{"everySteps", c.checkpoint_every_steps}}},
      {"testFraction", c.test_fraction},
      {"precision", c.precision == Precision::kFloat32 ? "float32" : "bfloat16"},
      {"bucketBytes", c.bucket_bytes},
      {"logEverySeconds", c.log_every_seconds},
  };
}

}  // namespace mlscale::worker
