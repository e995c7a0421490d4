// The final model: what a later model server loads. Two files in the output folder,
// described in worker/MODEL_FORMAT.md:
//   model.json   architecture, normalization statistics, metadata, and a table of the
//                weight tensors (name, shape, byte offset) with the SHA-256 of
//   weights.bin  the tensors as little-endian float32, row-major, one after another.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"
#include "mlscale/worker/dataset.h"
#include "mlscale/worker/model.h"

namespace mlscale::worker {

inline constexpr int kModelFormatVersion = 1;

struct ModelArtifact {
  ModelSpec spec;
  Standardization standardization;
  std::vector<float> parameters;  // in ParameterLayout order (weights column-major)
  nlohmann::json metadata;        // dataset, hyperparameters, metrics, version, ...
};

// Writes model.json and weights.bin into `dir` (created if missing), each atomically.
Status WriteModelArtifact(const std::string& dir, const ModelArtifact& artifact);

// Reads and verifies an artifact written by WriteModelArtifact.
StatusOr<ModelArtifact> ReadModelArtifact(const std::string& dir);

}  // namespace mlscale::worker
