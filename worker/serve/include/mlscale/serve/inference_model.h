// One trained model ready to answer: the artifact of worker/MODEL_FORMAT.md read, verified
// and laid out for the forward pass (z-score normalization stored in the artifact, dense
// layers, softmax). The same arithmetic as the trainer's evaluation (cpu_backend.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"
#include "mlscale/worker/model_artifact.h"

namespace mlscale::serve {

class InferenceModel {
 public:
  // Reads the artifact in `dir` (model.json + weights.bin). Errors: NotFound when model.json
  // is missing, DataLoss (naming the file and what is wrong) for a corrupt, truncated or
  // mismatched artifact.
  static StatusOr<std::shared_ptr<const InferenceModel>> Load(const std::string& dir);
  explicit InferenceModel(worker::ModelArtifact artifact);

  int64_t inputs() const { return artifact_.spec.inputs; }
  int64_t classes() const { return artifact_.spec.classes; }
  const worker::ModelArtifact& artifact() const { return artifact_; }

  // For `count` raw feature vectors (row after row, inputs() each), writes classes()
  // probabilities per row into `probabilities` (resized) and each row's arg-max into
  // `predicted`. Thread-safe (const; the workspace is per call).
  void Predict(const float* features, int64_t count, std::vector<float>& probabilities,
               std::vector<int64_t>& predicted) const;

 private:
  worker::ModelArtifact artifact_;
  worker::ParameterLayout layout_;
};

}  // namespace mlscale::serve
