#include "mlscale/api/manifest.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <string>

namespace mlscale::api {
namespace {

using nlohmann::json;

// Bounds for hostile input: nesting depth, and nodes after alias expansion
// (a "billion laughs" document expands aliases exponentially).
constexpr int kMaxDepth = 128;
constexpr std::size_t kMaxNodes = 1'000'000;

bool IsYamlNull(std::string_view s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

std::optional<bool> YamlBool(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

std::optional<std::int64_t> YamlInteger(std::string_view s) {
  std::string_view digits = s;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  if (digits.empty()) return std::nullopt;
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

// YAML 1.2 core-schema floats: 1.5, -2e-3, .5, .inf, -.Inf, .nan.
std::optional<double> YamlFloat(std::string_view s) {
  if (s == ".inf" || s == ".Inf" || s == "+.inf") return std::numeric_limits<double>::infinity();
  if (s == "-.inf" || s == "-.Inf") return -std::numeric_limits<double>::infinity();
  if (s == ".nan" || s == ".NaN") return std::numeric_limits<double>::quiet_NaN();
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  std::size_t mantissa_digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) { ++i; ++mantissa_digits; }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) { ++i; ++mantissa_digits; }
  }
  if (mantissa_digits == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t exponent_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) { ++i; ++exponent_digits; }
    if (exponent_digits == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  std::string copy(s);
  errno = 0;
  double value = std::strtod(copy.c_str(), nullptr);
  if (errno == ERANGE) return std::nullopt;
  return value;
}

json PlainScalar(const std::string& s) {
  if (IsYamlNull(s)) return nullptr;
  if (auto b = YamlBool(s)) return *b;
  if (auto i = YamlInteger(s)) return *i;
  if (auto f = YamlFloat(s)) return *f;
  return s;
}

std::string Where(const YAML::Mark& mark) {
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
}

class Converter {
 public:
  StatusOr<json> Convert(const YAML::Node& node, int depth) {
    if (depth > kMaxDepth) return InvalidArgument("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    if (++nodes_ > kMaxNodes) return InvalidArgument("more than " + std::to_string(kMaxNodes) + " nodes (after expanding aliases)");
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return json(nullptr);
      case YAML::NodeType::Scalar:
        // yaml-cpp tags quoted scalars "!" and plain ones "?".
        if (node.Tag() == "!") return json(node.Scalar());
        if (node.Tag() != "?" && node.Tag() != "tag:yaml.org,2002:str") {
          return InvalidArgument(Where(node.Mark()) + ": unsupported tag '" + node.Tag() + "'");
        }
        return node.Tag() == "?" ? PlainScalar(node.Scalar()) : json(node.Scalar());
      case YAML::NodeType::Sequence: {
        json array = json::array();
        for (const auto& item : node) {
          auto value = Convert(item, depth + 1);
          if (!value.ok()) return value.status();
          array.push_back(std::move(*value));
        }
        return array;
      }
      case YAML::NodeType::Map: {
        json object = json::object();
        for (const auto& entry : node) {
          if (!entry.first.IsScalar()) return InvalidArgument(Where(entry.first.Mark()) + ": a mapping key must be a plain string");
          const std::string& key = entry.first.Scalar();
          if (object.contains(key)) return InvalidArgument(Where(entry.first.Mark()) + ": duplicate key '" + key + "'");
          auto value = Convert(entry.second, depth + 1);
          if (!value.ok()) return value.status();
          object[key] = std::move(*value);
        }
        return object;
      }
    }
    return Internal("unknown YAML node type");
  }

 private:
  std::size_t nodes_ = 0;
};

std::string JsonTypeName(const json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number()) return "number";
  return value.type_name();
}

}  // namespace

StatusOr<json> ParseYamlDocument(std::string_view text) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return InvalidArgument("invalid YAML at " + Where(e.mark) + ": " + e.msg);
  } catch (const std::exception& e) {  // yaml-cpp throws others for deep recursion
    return InvalidArgument(std::string("invalid YAML: ") + e.what());
  }
  if (documents.empty() || documents.front().IsNull()) return InvalidArgument("the document is empty");
  if (documents.size() > 1) return InvalidArgument("expected one YAML document, found " + std::to_string(documents.size()));
  return Converter().Convert(documents.front(), 0);
}

StatusOr<ObjectReader> ObjectReader::Make(const json& value, std::string path) {
  if (!value.is_object()) return InvalidArgument(path + ": must be an object (got " + JsonTypeName(value) + ")");
  return ObjectReader(value, std::move(path));
}

std::string ObjectReader::PathOf(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

bool ObjectReader::Has(std::string_view key) const { return object_->contains(key); }

const json* ObjectReader::Field(std::string_view key) {
  known_.emplace(key);
  auto it = object_->find(key);
  return it == object_->end() ? nullptr : &*it;
}

const json* ObjectReader::Accept(std::string_view key) { return Field(key); }

StatusOr<std::string> ObjectReader::String(std::string_view key, std::optional<std::string> fallback) {
  const json* value = Field(key);
  if (value == nullptr) {
    if (fallback) return *fallback;
    return InvalidArgument(PathOf(key) + ": required");
  }
  if (!value->is_string()) return InvalidArgument(PathOf(key) + ": must be a string (got " + JsonTypeName(*value) + ")");
  return value->get<std::string>();
}

StatusOr<std::int64_t> ObjectReader::Integer(std::string_view key, std::optional<std::int64_t> fallback,
                                             std::int64_t min, std::int64_t max) {
  const json* value = Field(key);
  if (value == nullptr) {
    if (fallback) return *fallback;
    return InvalidArgument(PathOf(key) + ": required");
  }
  if (!value->is_number_integer()) {
    return InvalidArgument(PathOf(key) + ": must be an integer (got " + JsonTypeName(*value) + " " + value->dump() + ")");
  }
  // Unsigned values above INT64_MAX are out of range too.
  if (value->is_number_unsigned() && value->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
    return InvalidArgument(PathOf(key) + ": must be between " + std::to_string(min) + " and " + std::to_string(max) +
                           " (got " + value->dump() + ")");
  }
  auto number = value->get<std::int64_t>();
  if (number < min || number > max) {
    return InvalidArgument(PathOf(key) + ": must be between " + std::to_string(min) + " and " + std::to_string(max) +
                           " (got " + std::to_string(number) + ")");
  }
  return number;
}

StatusOr<std::string> ObjectReader::Choice(std::string_view key, std::optional<std::string> fallback,
                                           std::initializer_list<std::string_view> choices) {
  auto value = String(key, std::move(fallback));
  if (!value.ok()) return value;
  std::string listed;
  for (std::string_view choice : choices) {
    if (*value == choice) return value;
    listed += (listed.empty() ? "\"" : ", \"") + std::string(choice) + "\"";
  }
  return InvalidArgument(PathOf(key) + ": must be one of " + listed + " (got \"" + *value + "\")");
}

StatusOr<json> ObjectReader::Object(std::string_view key, std::optional<json> fallback) {
  const json* value = Field(key);
  if (value == nullptr) {
    if (fallback) return *fallback;
    return InvalidArgument(PathOf(key) + ": required");
  }
  if (!value->is_object()) return InvalidArgument(PathOf(key) + ": must be an object (got " + JsonTypeName(*value) + ")");
  return *value;
}

Status ObjectReader::Finish() const {
  for (const auto& [key, value] : object_->items()) {
    if (known_.contains(key)) continue;
    std::string listed;
    for (const auto& name : known_) listed += (listed.empty() ? "" : ", ") + name;
    return InvalidArgument(PathOf(key) + ": unknown field (known fields: " + listed + ")");
  }
  return Status::Ok();
}

}  // namespace mlscale::api
