#include "mlscale/serve/protocol.h"

#include <charconv>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace mlscale::serve {
namespace {

using nlohmann::json;

// Nested data deeper than this is refused rather than walked (a body of 4 MiB of '['
// would otherwise recurse that deep).
constexpr int kMaxNesting = 32;

struct Datatype {
  const char* name;
  bool integer;
  double min, max;  // for integer types
};

const Datatype kDatatypes[] = {
    {"FP32", false, 0, 0},
    {"FP64", false, 0, 0},
    {"FP16", false, 0, 0},
    {"INT8", true, -128, 127},
    {"INT16", true, -32768, 32767},
    {"INT32", true, -2147483648.0, 2147483647.0},
    {"INT64", true, -9.3e18, 9.3e18},
    {"UINT8", true, 0, 255},
    {"UINT16", true, 0, 65535},
    {"UINT32", true, 0, 4294967295.0},
    {"UINT64", true, 0, 1.9e19},
};

const char* JsonTypeName(const json& value) { return value.type_name(); }

// Appends the numbers of `value` (a number or nested arrays of numbers) to `out`.
Status Flatten(const json& value, const Datatype& type, const std::string& field, int depth, std::vector<float>& out) {
  if (value.is_array()) {
    if (depth >= kMaxNesting) return InvalidArgument(field + ": nested deeper than " + std::to_string(kMaxNesting));
    for (size_t i = 0; i < value.size(); ++i) {
      const json& element = value[i];
      if (element.is_number_float() && !type.integer) {
        out.push_back(float(element.get<double>()));
        continue;
      }
      MLSCALE_RETURN_IF_ERROR(Flatten(element, type, field, depth + 1, out));
    }
    return Status::Ok();
  }
  if (!value.is_number()) {
    return InvalidArgument(field + ": expected numbers for datatype " + type.name + ", got " + JsonTypeName(value));
  }
  if (type.integer) {
    if (!value.is_number_integer()) {
      return InvalidArgument(field + ": " + value.dump() + " is not an integer (datatype " + type.name + ")");
    }
    const double number = value.is_number_unsigned() ? double(value.get<uint64_t>()) : double(value.get<int64_t>());
    if (number < type.min || number > type.max) {
      return InvalidArgument(field + ": " + value.dump() + " is out of range for datatype " + type.name);
    }
    out.push_back(float(number));
    return Status::Ok();
  }
  const double number = value.get<double>();
  if (!std::isfinite(number)) return InvalidArgument(field + ": not a finite number");
  out.push_back(float(number));
  return Status::Ok();
}

StatusOr<json> ParseObject(std::string_view body) {
  json document = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return InvalidArgument("the request body is not valid JSON");
  if (!document.is_object()) return InvalidArgument("the request body must be a JSON object");
  return document;
}

// Parameters we do not implement are refused, not ignored, when ignoring would change the
// meaning (binary tensors would be read as garbage).
Status CheckParameters(const json& owner, const std::string& field) {
  auto parameters = owner.find("parameters");
  if (parameters == owner.end()) return Status::Ok();
  if (!parameters->is_object()) return InvalidArgument(field + ".parameters: must be an object");
  for (const char* binary : {"binary_data", "binary_data_size", "binary_data_output"}) {
    if (parameters->contains(binary)) {
      return InvalidArgument(field + ".parameters." + binary + ": the binary tensor data extension is not supported");
    }
  }
  return Status::Ok();
}

void AppendFloat(std::string& out, float value) {
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, end);
}

void AppendInt(std::string& out, int64_t value) {
  char buffer[24];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, end);
}

void AppendJsonString(std::string& out, std::string_view text) {
  out += json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

StatusOr<InferRequest> ParseV2InferRequest(std::string_view body, int64_t inputs) {
  auto document = ParseObject(body);
  if (!document.ok()) return document.status();
  const json& root = *document;
  InferRequest request;
  try {
    if (auto id = root.find("id"); id != root.end()) {
      if (!id->is_string()) return InvalidArgument("id: must be a string");
      request.id = id->get<std::string>();
    }
    MLSCALE_RETURN_IF_ERROR(CheckParameters(root, "request"));
    auto tensors = root.find("inputs");
    if (tensors == root.end() || !tensors->is_array()) return InvalidArgument("inputs: required, a list of tensors");
    if (tensors->size() != 1) {
      return InvalidArgument("inputs: the model has one input ('" + std::string(kInputName) + "'), got " +
                             std::to_string(tensors->size()));
    }
    const json& input = (*tensors)[0];
    const std::string field = "inputs[0]";
    if (!input.is_object()) return InvalidArgument(field + ": must be an object");
    if (!input.contains("name") || !input["name"].is_string()) return InvalidArgument(field + ".name: required, a string");
    MLSCALE_RETURN_IF_ERROR(CheckParameters(input, field));

    if (!input.contains("datatype") || !input["datatype"].is_string()) {
      return InvalidArgument(field + ".datatype: required, a string");
    }
    const std::string datatype = input["datatype"].get<std::string>();
    const Datatype* type = nullptr;
    for (const auto& candidate : kDatatypes) {
      if (datatype == candidate.name) type = &candidate;
    }
    if (type == nullptr) {
      return InvalidArgument(field + ".datatype: '" + datatype + "' is not a numeric datatype this model takes (FP32, FP64, FP16, INT8..INT64, UINT8..UINT64)");
    }

    if (!input.contains("shape") || !input["shape"].is_array() || input["shape"].empty()) {
      return InvalidArgument(field + ".shape: required, a non-empty list of sizes");
    }
    std::vector<int64_t> shape;
    for (const json& size : input["shape"]) {
      if (!size.is_number_integer() || size.get<int64_t>() < 0) {
        return InvalidArgument(field + ".shape: sizes must be integers >= 0");
      }
      shape.push_back(size.get<int64_t>());
    }
    // [inputs] is one row; otherwise the first size is the rows, the rest make one row.
    int64_t row_size = 1;
    for (size_t i = shape.size() == 1 ? 0 : 1; i < shape.size(); ++i) {
      if (shape[i] > 0 && row_size > std::numeric_limits<int64_t>::max() / shape[i]) {
        return InvalidArgument(field + ".shape: too large");
      }
      row_size *= shape[i];
    }
    request.rows = shape.size() == 1 ? 1 : shape[0];
    if (row_size != inputs) {
      return InvalidArgument(field + ".shape: " + input["shape"].dump() + " does not give " + std::to_string(inputs) +
                             " features per row (expected [rows, " + std::to_string(inputs) + "])");
    }
    if (!input.contains("data")) return InvalidArgument(field + ".data: required");
    request.features.reserve(size_t(std::min<int64_t>(request.rows, 1 << 16) * inputs));
    MLSCALE_RETURN_IF_ERROR(Flatten(input["data"], *type, field + ".data", 0, request.features));
    if (int64_t(request.features.size()) != request.rows * inputs) {
      return InvalidArgument(field + ".data: " + std::to_string(request.features.size()) + " values for shape " +
                             input["shape"].dump() + " (needs " + std::to_string(request.rows * inputs) + ")");
    }

    if (auto outputs = root.find("outputs"); outputs != root.end()) {
      if (!outputs->is_array()) return InvalidArgument("outputs: must be a list");
      request.want_probabilities = request.want_class = outputs->empty();
      for (size_t i = 0; i < outputs->size(); ++i) {
        const json& output = (*outputs)[i];
        const std::string output_field = "outputs[" + std::to_string(i) + "]";
        if (!output.is_object() || !output.contains("name") || !output["name"].is_string()) {
          return InvalidArgument(output_field + ".name: required, a string");
        }
        MLSCALE_RETURN_IF_ERROR(CheckParameters(output, output_field));
        const std::string name = output["name"].get<std::string>();
        if (name == kProbabilitiesOutput) {
          request.want_probabilities = true;
        } else if (name == kClassOutput) {
          request.want_class = true;
        } else {
          return InvalidArgument(output_field + ".name: '" + name + "' is not an output of this model (" +
                                 kProbabilitiesOutput + ", " + kClassOutput + ")");
        }
      }
    }
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("the request does not follow the inference protocol: ") + e.what());
  }
  return request;
}

StatusOr<InferRequest> ParseV1PredictRequest(std::string_view body, int64_t inputs) {
  auto document = ParseObject(body);
  if (!document.ok()) return document.status();
  const json& root = *document;
  auto instances = root.find("instances");
  if (instances == root.end() || !instances->is_array()) return InvalidArgument("instances: required, a list of rows");
  InferRequest request;
  request.rows = int64_t(instances->size());
  request.features.reserve(size_t(std::min<int64_t>(request.rows, 1 << 16) * inputs));
  const Datatype& fp32 = kDatatypes[0];
  for (size_t i = 0; i < instances->size(); ++i) {
    const std::string field = "instances[" + std::to_string(i) + "]";
    const size_t before = request.features.size();
    MLSCALE_RETURN_IF_ERROR(Flatten((*instances)[i], fp32, field, 0, request.features));
    if (int64_t(request.features.size() - before) != inputs) {
      return InvalidArgument(field + ": " + std::to_string(request.features.size() - before) + " values, the model takes " +
                             std::to_string(inputs));
    }
  }
  return request;
}

std::string RenderV2InferResponse(std::string_view model_name, std::string_view model_version,
                                  const InferRequest& request, const float* probabilities,
                                  const int64_t* predicted, int64_t classes) {
  std::string out;
  out.reserve(size_t(64 + request.rows * (request.want_probabilities ? classes * 14 : 0) + request.rows * 4));
  out += "{\"model_name\":";
  AppendJsonString(out, model_name);
  out += ",\"model_version\":";
  AppendJsonString(out, model_version);
  if (!request.id.empty()) {
    out += ",\"id\":";
    AppendJsonString(out, request.id);
  }
  out += ",\"outputs\":[";
  bool first_output = true;
  if (request.want_probabilities) {
    out += "{\"name\":\"probabilities\",\"datatype\":\"FP32\",\"shape\":[";
    AppendInt(out, request.rows);
    out += ',';
    AppendInt(out, classes);
    out += "],\"data\":[";
    for (int64_t i = 0; i < request.rows * classes; ++i) {
      if (i > 0) out += ',';
      AppendFloat(out, probabilities[i]);
    }
    out += "]}";
    first_output = false;
  }
  if (request.want_class) {
    if (!first_output) out += ',';
    out += "{\"name\":\"class\",\"datatype\":\"INT64\",\"shape\":[";
    AppendInt(out, request.rows);
    out += "],\"data\":[";
    for (int64_t i = 0; i < request.rows; ++i) {
      if (i > 0) out += ',';
      AppendInt(out, predicted[i]);
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

std::string RenderV1PredictResponse(const InferRequest& request, const float* probabilities,
                                    const int64_t* predicted, int64_t classes) {
  std::string out = "{\"predictions\":[";
  for (int64_t i = 0; i < request.rows; ++i) {
    if (i > 0) out += ',';
    AppendInt(out, predicted[i]);
  }
  out += "],\"probabilities\":[";
  for (int64_t i = 0; i < request.rows; ++i) {
    out += i > 0 ? ",[" : "[";
    for (int64_t c = 0; c < classes; ++c) {
      if (c > 0) out += ',';
      AppendFloat(out, probabilities[i * classes + c]);
    }
    out += ']';
  }
  out += "]}";
  return out;
}

std::string ErrorJson(std::string_view message) {
  std::string out = "{\"error\":";
  out += json(std::string(message)).dump(-1, ' ', false, json::error_handler_t::replace);
  out += '}';
  return out;
}

}  // namespace mlscale::serve
