// Requests are parsed with simdjson (the parse is most of a small request's cost, and
// simdjson's DOM parser and number conversion are several times nlohmann's); responses
// are written directly.
#include "mlscale/serve/protocol.h"

#include <charconv>
#include <cmath>
#include <limits>

#include <simdjson.h>

namespace mlscale::serve {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Nested data deeper than this is refused rather than walked.
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

const char* TypeName(const element& value) {
  switch (value.type()) {
    case element_type::ARRAY: return "array";
    case element_type::OBJECT: return "object";
    case element_type::STRING: return "string";
    case element_type::BOOL: return "boolean";
    case element_type::NULL_VALUE: return "null";
    default: return "number";
  }
}

std::string Text(const element& value) { return simdjson::minify(value); }

// Appends the numbers of `value` (a number or nested arrays of numbers) to `out`.
Status Flatten(const element& value, const Datatype& type, const std::string& field, int depth, std::vector<float>& out) {
  switch (value.type()) {
    case element_type::ARRAY: {
      if (depth >= kMaxNesting) return InvalidArgument(field + ": nested deeper than " + std::to_string(kMaxNesting));
      const simdjson::dom::array items = value.get_array().value_unsafe();
      for (element item : items) {
        if (item.type() == element_type::DOUBLE && !type.integer) {  // the common case, without the recursion
          const double number = item.get_double().value_unsafe();
          if (!std::isfinite(number)) return InvalidArgument(field + ": not a finite number");
          out.push_back(float(number));
          continue;
        }
        MLSCALE_RETURN_IF_ERROR(Flatten(item, type, field, depth + 1, out));
      }
      return Status::Ok();
    }
    case element_type::INT64:
    case element_type::UINT64: {
      const double number = value.type() == element_type::INT64 ? double(value.get_int64().value_unsafe())
                                                                : double(value.get_uint64().value_unsafe());
      if (type.integer && (number < type.min || number > type.max)) {
        return InvalidArgument(field + ": " + Text(value) + " is out of range for datatype " + type.name);
      }
      out.push_back(float(number));
      return Status::Ok();
    }
    case element_type::DOUBLE: {
      if (type.integer) return InvalidArgument(field + ": " + Text(value) + " is not an integer (datatype " + type.name + ")");
      const double number = value.get_double().value_unsafe();
      if (!std::isfinite(number)) return InvalidArgument(field + ": not a finite number");
      out.push_back(float(number));
      return Status::Ok();
    }
    default:
      return InvalidArgument(field + ": expected numbers for datatype " + type.name + ", got " + TypeName(value));
  }
}

// One parser per thread: it keeps its buffers between requests (no allocation per parse).
StatusOr<element> ParseObject(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  element document;
  if (parser.parse(body.data(), body.size()).get(document) != simdjson::SUCCESS) {
    return InvalidArgument("the request body is not valid JSON");
  }
  if (document.type() != element_type::OBJECT) return InvalidArgument("the request body must be a JSON object");
  return document;
}

// The member `key` of an object, or nothing.
bool Member(const element& object, std::string_view key, element& out) {
  return object.get_object().value_unsafe().at_key(key).get(out) == simdjson::SUCCESS;
}

// Parameters we do not implement are refused, not ignored, when ignoring would change the
// meaning (binary tensors would be read as garbage).
Status CheckParameters(const element& owner, const std::string& field) {
  element parameters;
  if (!Member(owner, "parameters", parameters)) return Status::Ok();
  if (parameters.type() != element_type::OBJECT) return InvalidArgument(field + ".parameters: must be an object");
  for (const char* binary : {"binary_data", "binary_data_size", "binary_data_output"}) {
    element ignored;
    if (Member(parameters, binary, ignored)) {
      return InvalidArgument(field + ".parameters." + binary + ": the binary tensor data extension is not supported");
    }
  }
  return Status::Ok();
}

std::string StringOf(const element& value) { return std::string(value.get_string().value_unsafe()); }

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

// A JSON string literal: quotes, backslashes and control characters escaped.
void AppendJsonString(std::string& out, std::string_view text) {
  // Text that is not UTF-8 (a request path is any bytes) keeps its ASCII only.
  const bool utf8 = simdjson::validate_utf8(text.data(), text.size());
  out += '"';
  for (char c : text) {
    if (!utf8 && static_cast<unsigned char>(c) >= 0x80) {
      out += '?';
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[(c >> 4) & 0xf];
      out += kHex[c & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

StatusOr<InferRequest> ParseV2InferRequest(std::string_view body, int64_t inputs) {
  auto document = ParseObject(body);
  if (!document.ok()) return document.status();
  const element root = *document;
  InferRequest request;
  element id;
  if (Member(root, "id", id)) {
    if (id.type() != element_type::STRING) return InvalidArgument("id: must be a string");
    request.id = StringOf(id);
  }
  MLSCALE_RETURN_IF_ERROR(CheckParameters(root, "request"));
  element tensors;
  if (!Member(root, "inputs", tensors) || tensors.type() != element_type::ARRAY) {
    return InvalidArgument("inputs: required, a list of tensors");
  }
  const auto tensor_list = tensors.get_array().value_unsafe();
  if (tensor_list.size() != 1) {
    return InvalidArgument("inputs: the model has one input ('" + std::string(kInputName) + "'), got " +
                           std::to_string(tensor_list.size()));
  }
  const element input = tensor_list.at(0).value_unsafe();
  const std::string field = "inputs[0]";
  if (input.type() != element_type::OBJECT) return InvalidArgument(field + ": must be an object");
  element name;
  if (!Member(input, "name", name) || name.type() != element_type::STRING) {
    return InvalidArgument(field + ".name: required, a string");
  }
  MLSCALE_RETURN_IF_ERROR(CheckParameters(input, field));

  element datatype_element;
  if (!Member(input, "datatype", datatype_element) || datatype_element.type() != element_type::STRING) {
    return InvalidArgument(field + ".datatype: required, a string");
  }
  const std::string datatype = StringOf(datatype_element);
  const Datatype* type = nullptr;
  for (const auto& candidate : kDatatypes) {
    if (datatype == candidate.name) type = &candidate;
  }
  if (type == nullptr) {
    return InvalidArgument(field + ".datatype: '" + datatype +
                           "' is not a numeric datatype this model takes (FP32, FP64, FP16, INT8..INT64, UINT8..UINT64)");
  }

  element shape_element;
  if (!Member(input, "shape", shape_element) || shape_element.type() != element_type::ARRAY ||
      shape_element.get_array().value_unsafe().size() == 0) {
    return InvalidArgument(field + ".shape: required, a non-empty list of sizes");
  }
  std::vector<int64_t> shape;
  const simdjson::dom::array sizes = shape_element.get_array().value_unsafe();
  for (element size : sizes) {
    int64_t value = 0;
    if (size.get_int64().get(value) != simdjson::SUCCESS || value < 0) {
      return InvalidArgument(field + ".shape: sizes must be integers >= 0");
    }
    shape.push_back(value);
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
    return InvalidArgument(field + ".shape: " + Text(shape_element) + " does not give " + std::to_string(inputs) +
                           " features per row (expected [rows, " + std::to_string(inputs) + "])");
  }
  element data;
  if (!Member(input, "data", data)) return InvalidArgument(field + ".data: required");
  request.features.reserve(size_t(std::min<int64_t>(request.rows, 1 << 16) * inputs));
  MLSCALE_RETURN_IF_ERROR(Flatten(data, *type, field + ".data", 0, request.features));
  if (int64_t(request.features.size()) != request.rows * inputs) {
    return InvalidArgument(field + ".data: " + std::to_string(request.features.size()) + " values for shape " +
                           Text(shape_element) + " (needs " + std::to_string(request.rows * inputs) + ")");
  }

  element outputs;
  if (Member(root, "outputs", outputs)) {
    if (outputs.type() != element_type::ARRAY) return InvalidArgument("outputs: must be a list");
    const auto output_list = outputs.get_array().value_unsafe();
    request.want_probabilities = request.want_class = output_list.size() == 0;
    size_t i = 0;
    for (element output : output_list) {
      const std::string output_field = "outputs[" + std::to_string(i++) + "]";
      element output_name;
      if (output.type() != element_type::OBJECT || !Member(output, "name", output_name) ||
          output_name.type() != element_type::STRING) {
        return InvalidArgument(output_field + ".name: required, a string");
      }
      MLSCALE_RETURN_IF_ERROR(CheckParameters(output, output_field));
      const std::string wanted = StringOf(output_name);
      if (wanted == kProbabilitiesOutput) {
        request.want_probabilities = true;
      } else if (wanted == kClassOutput) {
        request.want_class = true;
      } else {
        return InvalidArgument(output_field + ".name: '" + wanted + "' is not an output of this model (" +
                               kProbabilitiesOutput + ", " + kClassOutput + ")");
      }
    }
  }
  return request;
}

StatusOr<InferRequest> ParseV1PredictRequest(std::string_view body, int64_t inputs) {
  auto document = ParseObject(body);
  if (!document.ok()) return document.status();
  element instances;
  if (!Member(*document, "instances", instances) || instances.type() != element_type::ARRAY) {
    return InvalidArgument("instances: required, a list of rows");
  }
  InferRequest request;
  const auto rows = instances.get_array().value_unsafe();
  request.rows = int64_t(rows.size());
  request.features.reserve(size_t(std::min<int64_t>(request.rows, 1 << 16) * inputs));
  const Datatype& fp32 = kDatatypes[0];
  size_t i = 0;
  for (element row : rows) {
    const std::string field = "instances[" + std::to_string(i++) + "]";
    const size_t before = request.features.size();
    MLSCALE_RETURN_IF_ERROR(Flatten(row, fp32, field, 0, request.features));
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
  AppendJsonString(out, message);
  out += '}';
  return out;
}

}  // namespace mlscale::serve
