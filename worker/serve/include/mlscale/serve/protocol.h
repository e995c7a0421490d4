// The wire formats mlscale-serve speaks, as pure functions (body in, typed request or
// error out; result in, body out), so every malformed body is table-tested without HTTP:
//   Open Inference Protocol v2 (KServe, MLServer, Triton): POST .../infer with
//     {"id", "inputs": [{"name", "shape", "datatype", "data", "parameters"}], "outputs", "parameters"}
//   KServe v1: POST /v1/models/{name}:predict with {"instances": [[...], ...]}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::serve {

// The model's one input and its outputs, as the metadata endpoints describe them.
inline constexpr const char* kInputName = "input";
inline constexpr const char* kProbabilitiesOutput = "probabilities";  // FP32 [rows, classes]
inline constexpr const char* kClassOutput = "class";                  // INT64 [rows], the arg-max

struct InferRequest {
  std::string id;              // echoed in the response; empty when absent
  std::vector<float> features;  // rows x inputs, row-major
  int64_t rows = 0;
  bool want_probabilities = true;  // "outputs" selects; absent: both
  bool want_class = true;
};

// Parses a v2 infer body for a model with `inputs` features per row. The one input may
// have any name; its shape is [rows, inputs], [inputs] (one row) or [rows, d1, d2, ...]
// with d1*d2*... == inputs; datatype FP16/FP32/FP64, INT8..INT64 or UINT8..UINT64 (values
// become float32); data flat (row-major) or nested. Errors: InvalidArgument naming the
// field ("inputs[0].shape: ..."), for malformed JSON too.
StatusOr<InferRequest> ParseV2InferRequest(std::string_view body, int64_t inputs);

// Parses a v1 predict body: "instances" is a list of rows of `inputs` numbers (a row may be
// nested, e.g. 8x8 for 64 inputs). Errors: InvalidArgument naming the field.
StatusOr<InferRequest> ParseV1PredictRequest(std::string_view body, int64_t inputs);

// The v2 response: {"model_name", "model_version", "id"?, "outputs": [probabilities, class]}
// with what the request selected.
std::string RenderV2InferResponse(std::string_view model_name, std::string_view model_version,
                                  const InferRequest& request, const float* probabilities,
                                  const int64_t* predicted, int64_t classes);

// The v1 response: {"predictions": [class, ...], "probabilities": [[...], ...]}.
std::string RenderV1PredictResponse(const InferRequest& request, const float* probabilities,
                                    const int64_t* predicted, int64_t classes);

// {"error": "<message>"} with the message JSON-escaped.
std::string ErrorJson(std::string_view message);

}  // namespace mlscale::serve
