#include "mlscale/worker/model_artifact.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mlscale/worker/checkpoint.h"

namespace mlscale::worker {
namespace {

namespace fs = std::filesystem;
const char* kActivationNames[] = {"relu", "tanh", "gelu"};

StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open '" + path + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

Status WriteModelArtifact(const std::string& dir, const ModelArtifact& artifact) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return Unavailable("cannot create output folder '" + dir + "': " + error.message());
  const ParameterLayout layout = ParameterLayout::For(artifact.spec);
  std::string weights;
  nlohmann::json tensors = nlohmann::json::array();
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const LayerLayout& layer = layout.layers[l];
    // Stored row-major [out, in] like torch.nn.Linear.weight; memory is column-major.
    tensors.push_back({{"name", "layers." + std::to_string(l) + ".weight"},
                       {"shape", {layer.out, layer.in}},
                       {"offset", weights.size()}});
    for (int64_t o = 0; o < layer.out; ++o) {
      for (int64_t i = 0; i < layer.in; ++i) {
        float w = artifact.parameters[size_t(layer.weight_offset + i * layer.out + o)];
        weights.append(reinterpret_cast<const char*>(&w), sizeof(w));
      }
    }
    tensors.push_back({{"name", "layers." + std::to_string(l) + ".bias"},
                       {"shape", {layer.out}},
                       {"offset", weights.size()}});
    weights.append(reinterpret_cast<const char*>(artifact.parameters.data() + layer.bias_offset),
                   size_t(layer.out) * sizeof(float));
  }
  nlohmann::json model = {
      {"format", "mlscale-mlp"},
      {"formatVersion", kModelFormatVersion},
      {"architecture",
       {{"type", "mlp"},
        {"inputs", artifact.spec.inputs},
        {"hiddenLayers", artifact.spec.hidden},
        {"classes", artifact.spec.classes},
        {"activation", kActivationNames[int(artifact.spec.activation)]},
        {"dropout", artifact.spec.dropout},
        {"output", "logits"}}},
      {"normalization",
       {{"type", "zscore"}, {"mean", artifact.standardization.mean}, {"stddev", artifact.standardization.stddev}}},
      {"weights",
       {{"file", "weights.bin"},
        {"dtype", "float32"},
        {"byteOrder", "little"},
        {"bytes", weights.size()},
        {"sha256", Sha256Hex(weights.data(), weights.size())},
        {"tensors", tensors}}},
      {"metadata", artifact.metadata},
  };
  MLSCALE_RETURN_IF_ERROR(WriteFileAtomically((fs::path(dir) / "weights.bin").string(), weights));
  return WriteFileAtomically((fs::path(dir) / "model.json").string(), model.dump(2) + "\n");
}

StatusOr<ModelArtifact> ReadModelArtifact(const std::string& dir) {
  const std::string json_path = (fs::path(dir) / "model.json").string();
  auto text = ReadWholeFile(json_path);
  if (!text.ok()) return text.status();
  nlohmann::json model = nlohmann::json::parse(*text, nullptr, false);
  auto bad = [&](const std::string& why) { return DataLoss("'" + json_path + "': " + why); };
  if (model.is_discarded()) return bad("not JSON");
  ModelArtifact artifact;
  try {
    if (model.at("format") != "mlscale-mlp" || model.at("formatVersion") != kModelFormatVersion) {
      return bad("not an mlscale-mlp model of format version " + std::to_string(kModelFormatVersion));
    }
    const auto& a = model.at("architecture");
    artifact.spec.inputs = a.at("inputs").get<int64_t>();
    artifact.spec.hidden = a.at("hiddenLayers").get<std::vector<int>>();
    artifact.spec.classes = a.at("classes").get<int64_t>();
    artifact.spec.dropout = a.at("dropout").get<double>();
    if (artifact.spec.inputs < 1 || artifact.spec.classes < 2) return bad("architecture needs inputs >= 1 and classes >= 2");
    for (int width : artifact.spec.hidden) {
      if (width < 1) return bad("architecture.hiddenLayers: every width must be >= 1");
    }
    const std::string activation = a.at("activation").get<std::string>();
    bool known_activation = false;
    for (int k = 0; k < 3; ++k) {
      if (activation == kActivationNames[k]) {
        artifact.spec.activation = Activation(k);
        known_activation = true;
      }
    }
    if (!known_activation) return bad("architecture.activation '" + activation + "' is not relu, tanh or gelu");
    artifact.standardization.mean = model.at("normalization").at("mean").get<std::vector<float>>();
    artifact.standardization.stddev = model.at("normalization").at("stddev").get<std::vector<float>>();
    if (artifact.standardization.mean.size() != size_t(artifact.spec.inputs) ||
        artifact.standardization.stddev.size() != size_t(artifact.spec.inputs)) {
      return bad("normalization.mean and .stddev must have architecture.inputs (" +
                 std::to_string(artifact.spec.inputs) + ") values");
    }
    for (float stddev : artifact.standardization.stddev) {
      if (!(stddev > 0.0f) || !std::isfinite(stddev)) return bad("normalization.stddev: every value must be > 0");
    }
    artifact.metadata = model.at("metadata");
    const std::string weights_file = model.at("weights").at("file").get<std::string>();
    if (weights_file.empty() || weights_file.find('/') != std::string::npos || weights_file == "..") {
      return bad("weights.file must name a file in the model's folder");
    }
    auto weights = ReadWholeFile((fs::path(dir) / weights_file).string());
    if (!weights.ok()) return weights.status();
    if (Sha256Hex(weights->data(), weights->size()) != model.at("weights").at("sha256").get<std::string>()) {
      return bad("weights.bin does not match its SHA-256");
    }
    const ParameterLayout layout = ParameterLayout::For(artifact.spec);
    if (weights->size() != size_t(layout.parameter_count) * sizeof(float)) return bad("weights.bin has the wrong size");
    // The tensor table must describe this architecture's layout, in order.
    const auto& tensors = model.at("weights").at("tensors");
    if (tensors.size() != layout.layers.size() * 2) return bad("weights.tensors does not match the architecture");
    int64_t offset = 0;
    for (size_t l = 0; l < layout.layers.size(); ++l) {
      const LayerLayout& layer = layout.layers[l];
      const std::vector<int64_t> shapes[2] = {{layer.out, layer.in}, {layer.out}};
      for (int part = 0; part < 2; ++part) {
        const auto& tensor = tensors.at(2 * l + size_t(part));
        const std::string name = "layers." + std::to_string(l) + (part == 0 ? ".weight" : ".bias");
        if (tensor.at("name") != name || tensor.at("shape").get<std::vector<int64_t>>() != shapes[part] ||
            tensor.at("offset").get<int64_t>() != offset) {
          return bad("weights.tensors[" + std::to_string(2 * l + size_t(part)) + "] does not match the architecture (" +
                     name + ")");
        }
        offset += (part == 0 ? layer.out * layer.in : layer.out) * int64_t(sizeof(float));
      }
    }
    const float* stored = reinterpret_cast<const float*>(weights->data());
    artifact.parameters.resize(size_t(layout.parameter_count));
    size_t k = 0;
    for (const LayerLayout& layer : layout.layers) {
      for (int64_t o = 0; o < layer.out; ++o) {
        for (int64_t i = 0; i < layer.in; ++i) artifact.parameters[size_t(layer.weight_offset + i * layer.out + o)] = stored[k++];
      }
      for (int64_t o = 0; o < layer.out; ++o) artifact.parameters[size_t(layer.bias_offset + o)] = stored[k++];
    }
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
  return artifact;
}

}  // namespace mlscale::worker
