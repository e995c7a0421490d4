// Model artifacts for the serve tests, written in the trainer's format by the trainer's own
// writer (WriteModelArtifact) with seeded parameters, so tests need no training run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mlscale/worker/model_artifact.h"

namespace mlscale::serve::testing {

inline worker::ModelArtifact MakeArtifact(int64_t inputs, std::vector<int> hidden, int64_t classes, uint64_t seed) {
  worker::ModelArtifact artifact;
  artifact.spec.inputs = inputs;
  artifact.spec.hidden = std::move(hidden);
  artifact.spec.classes = classes;
  artifact.parameters = worker::InitialParameters(worker::ParameterLayout::For(artifact.spec), seed);
  for (int64_t i = 0; i < inputs; ++i) {
    artifact.standardization.mean.push_back(0.5f * float(i % 7));
    artifact.standardization.stddev.push_back(1.0f + 0.25f * float(i % 3));
  }
  artifact.metadata = {{"dataset", "test"}, {"seed", seed}};
  return artifact;
}

inline void WriteArtifact(const std::string& dir, const worker::ModelArtifact& artifact) {
  auto written = worker::WriteModelArtifact(dir, artifact);
  ASSERT_TRUE(written.ok()) << written.ToString();
}

// A v2 infer body with `rows` rows of `inputs` values: row r, feature i = (r + i) % 5.
inline std::string InferBody(int64_t rows, int64_t inputs) {
  std::string data;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < inputs; ++i) data += (data.empty() ? "" : ",") + std::to_string((r + i) % 5);
  }
  return R"({"id":"t","inputs":[{"name":"input","shape":[)" + std::to_string(rows) + "," + std::to_string(inputs) +
         R"(],"datatype":"FP32","data":[)" + data + "]}]}";
}

}  // namespace mlscale::serve::testing
