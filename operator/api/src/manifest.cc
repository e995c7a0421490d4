#include "mlscale/api/manifest.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace mlscale::api {
namespace {

using nlohmann::json;

// Bounds for hostile input: nesting depth, and nodes after alias expansion
// (a "billion laughs" document expands aliases exponentially).
constexpr int kMaxDepth = 128;
constexpr std::size_t kMaxNodes = 1'000'000;

// Plain scalars are typed as kubectl types them (go-yaml v2's resolve table, YAML 1.1),
// so that `mlscale validate` and `kubectl apply` read a manifest alike: yes/no/on/off are
// booleans, 0x1F, 0o17, 017 and 0b101 are integers, 1_000 is 1000.
bool IsYamlNull(std::string_view s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

std::optional<bool> YamlBool(std::string_view s) {
  for (std::string_view yes : {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}) {
    if (s == yes) return true;
  }
  for (std::string_view no : {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}) {
    if (s == no) return false;
  }
  return std::nullopt;
}

bool IsNonFinite(std::string_view s) {
  for (std::string_view name : {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
                                ".NaN", ".NAN"}) {
    if (s == name) return true;
  }
  return false;
}

// Go's strconv.ParseInt(s, 0, 64) / ParseUint: an optional sign, then 0x/0o/0b or a
// leading 0 (octal) prefix, or decimal digits.
std::optional<json> GoInteger(std::string_view s) {
  bool negative = false;
  std::string_view digits = s;
  if (!digits.empty() && (digits.front() == '+' || digits.front() == '-')) {
    negative = digits.front() == '-';
    digits.remove_prefix(1);
  }
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  } else if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O')) {
    base = 8;
    digits.remove_prefix(2);
  } else if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'b' || digits[1] == 'B')) {
    base = 2;
    digits.remove_prefix(2);
  } else if (digits.size() > 1 && digits[0] == '0') {
    base = 8;
    digits.remove_prefix(1);
  }
  if (digits.empty()) return std::nullopt;
  std::uint64_t magnitude = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (!negative) {
    if (magnitude <= kMax) return json(static_cast<std::int64_t>(magnitude));
    return json(magnitude);
  }
  if (magnitude <= kMax) return json(-static_cast<std::int64_t>(magnitude));
  if (magnitude == kMax + 1) return json(std::numeric_limits<std::int64_t>::min());
  return std::nullopt;
}

// go-yaml v2's float form: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
std::optional<double> GoFloat(std::string_view s) {
  std::size_t i = 0;
  auto digits = [&] {
    std::size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    return i - start;
  };
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return std::nullopt;
  } else {
    if (digits() == 0) return std::nullopt;
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  std::string copy(s);
  errno = 0;
  double value = std::strtod(copy.c_str(), nullptr);
  if (errno == ERANGE && std::abs(value) > 1) return std::nullopt;  // overflow: kubectl keeps the text
  return value;
}

// A plain scalar's JSON value; nullopt for .inf and .nan, which JSON cannot hold.
std::optional<json> PlainScalar(const std::string& s) {
  if (IsYamlNull(s)) return json(nullptr);
  if (auto b = YamlBool(s)) return json(*b);
  if (IsNonFinite(s)) return std::nullopt;
  if (s.empty() || !(std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '+' || s[0] == '-' || s[0] == '.')) {
    return json(s);
  }
  std::string plain;
  for (char c : s) {
    if (c != '_') plain += c;
  }
  if (auto i = GoInteger(plain)) return *i;
  if (auto f = GoFloat(plain)) return json(*f);
  return json(s);
}

std::string Where(int line, int column) {
  return "line " + std::to_string(line + 1) + ", column " + std::to_string(column + 1);
}
std::string Where(const YAML::Mark& mark) { return Where(mark.line, mark.column); }

// The offset of the first byte of `text` that does not belong to a well-formed UTF-8
// sequence (overlong forms, surrogates and code points above U+10FFFF are ill-formed),
// or npos. yaml-cpp passes such bytes through and JSON serialisation then throws.
std::size_t FirstInvalidUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    unsigned char lead = byte(i);
    std::size_t length = 0;
    unsigned char min_second = 0x80, max_second = 0xBF;
    if (lead < 0x80) {
      length = 1;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) min_second = 0xA0;  // overlong
      if (lead == 0xED) max_second = 0x9F;  // surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) min_second = 0x90;  // overlong
      if (lead == 0xF4) max_second = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + length > text.size()) return i;
    for (std::size_t k = 1; k < length; ++k) {
      unsigned char b = byte(i + k);
      unsigned char low = k == 1 ? min_second : 0x80, high = k == 1 ? max_second : 0xBF;
      if (b < low || b > high) return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

// 0-based line and column (in bytes) of `offset`.
std::pair<int, int> LineAndColumn(std::string_view text, std::size_t offset) {
  int line = 0;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return {line, static_cast<int>(offset - line_start)};
}

// Thrown by StructureCheck, caught in ParseYamlDocument.
struct StructureError {
  YAML::Mark mark;
  std::string message;
};

// A first pass over the YAML events, before yaml-cpp builds nodes, that stops
//  - at the first collection nested deeper than kMaxDepth, with its position (yaml-cpp's
//    own guard, at a few hundred levels, reports "bad file" at line 1, column 1);
//  - at a second document. yaml-cpp 0.7 starts a new, empty document at a token it
//    cannot place (a ',' outside brackets) without consuming it, forever: LoadAll of
//    "," never returns. So a document starting where the last one did is an error.
class StructureCheck : public YAML::EventHandler {
 public:
  explicit StructureCheck(std::string_view text) : text_(text) {}

  int documents() const { return documents_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ == 1) {
      first_ = mark;
      return;
    }
    std::string_view rest = text_.substr(std::min(text_.size(), static_cast<std::size_t>(mark.pos)));
    if (mark.pos == first_.pos || !rest.starts_with("---")) {
      throw StructureError{mark, rest.empty() ? "unexpected end" : "unexpected " + Quote(rest.substr(0, 1))};
    }
    throw StructureError{mark, "expected one YAML document, found more"};
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    Enter(mark);
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    Enter(mark);
  }
  void OnMapEnd() override { --depth_; }

 private:
  void Enter(const YAML::Mark& mark) {
    if (++depth_ > kMaxDepth) throw StructureError{mark, "nesting deeper than " + std::to_string(kMaxDepth) + " levels"};
  }
  std::string_view text_;
  int depth_ = 0;
  int documents_ = 0;
  YAML::Mark first_;
};

class Converter {
 public:
  StatusOr<json> Convert(const YAML::Node& node, int depth) {
    if (depth > kMaxDepth) {
      return InvalidArgument(Where(node.Mark()) + ": nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    if (++nodes_ > kMaxNodes) return InvalidArgument("more than " + std::to_string(kMaxNodes) + " nodes (after expanding aliases)");
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return json(nullptr);
      case YAML::NodeType::Scalar:
        // yaml-cpp tags quoted scalars "!" and plain ones "?".
        if (node.Tag() == "!") return json(node.Scalar());
        if (node.Tag() != "?" && node.Tag() != "tag:yaml.org,2002:str") {
          return InvalidArgument(Where(node.Mark()) + ": unsupported tag " + Quote(node.Tag()));
        }
        if (node.Tag() != "?") return json(node.Scalar());
        if (auto value = PlainScalar(node.Scalar())) return *value;
        return InvalidArgument(Where(node.Mark()) + ": " + node.Scalar() + " cannot be represented in JSON");
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
          if (object.contains(key)) return InvalidArgument(Where(entry.first.Mark()) + ": duplicate key " + Quote(key));
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
  if (text.size() > kMaxManifestBytes) {
    return InvalidArgument("the manifest is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                           std::to_string(kMaxManifestBytes));
  }
  if (std::size_t bad = FirstInvalidUtf8(text); bad != std::string_view::npos) {
    auto [line, column] = LineAndColumn(text, bad);
    return InvalidArgument("invalid YAML at " + Where(line, column) + ": not UTF-8 text");
  }
  // yaml-cpp accepts a quoted scalar left open at the end of the input when a line
  // break precedes the end; a final comment line makes that end fall inside the
  // scalar, where yaml-cpp reports it. (A comment changes no value.)
  std::string input(text);
  input += input.empty() || input.back() == '\n' ? "#" : "\n#";
  YAML::Node document;
  try {
    std::istringstream stream(input);
    YAML::Parser parser(stream);
    StructureCheck check(input);
    while (parser.HandleNextDocument(check)) {
    }
    if (check.documents() == 0) return InvalidArgument("the document is empty");
    document = YAML::Load(input);
  } catch (const StructureError& e) {
    return InvalidArgument("invalid YAML at " + Where(e.mark) + ": " + e.message);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("invalid YAML at " + Where(e.mark) + ": " + e.msg);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("invalid YAML: ") + e.what());
  }
  if (document.IsNull()) return InvalidArgument("the document is empty");
  return Converter().Convert(document, 0);
}

StatusOr<std::string> ReadManifestFile(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) return NotFound("cannot read " + path);
  std::error_code error;
  auto size = std::filesystem::file_size(path, error);
  if (!error && size > kMaxManifestBytes) {
    return InvalidArgument("the manifest is " + std::to_string(size) + " bytes, more than the limit of " +
                           std::to_string(kMaxManifestBytes));
  }
  // Read at most one byte past the limit: the file may grow, or be a pipe of unknown size.
  std::string text(kMaxManifestBytes + 1, '\0');
  stream.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (stream.bad()) return NotFound("cannot read " + path);
  text.resize(static_cast<std::size_t>(stream.gcount()));
  if (text.size() > kMaxManifestBytes) {
    return InvalidArgument("the manifest is more than the limit of " + std::to_string(kMaxManifestBytes) + " bytes");
  }
  return text;
}

std::string Truncate(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  text = text.substr(0, max_bytes);
  // Do not end in the middle of a UTF-8 sequence.
  while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) text.remove_suffix(1);
  if (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xC0) text.remove_suffix(1);
  return std::string(text) + "...";
}

std::string Quote(std::string_view text) {
  bool cut = text.size() > kMaxQuotedBytes;
  std::string shown = cut ? Truncate(text, kMaxQuotedBytes) : std::string(text);
  if (cut) shown.resize(shown.size() - 3);
  std::string quoted = json(shown).dump(-1, ' ', false, json::error_handler_t::replace);
  return cut ? quoted.substr(0, quoted.size() - 1) + "...\"" : quoted;
}

std::string QuoteJson(const json& value) {
  if (value.is_string()) return Quote(value.get_ref<const std::string&>());
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  return text.size() > kMaxQuotedBytes ? text.substr(0, kMaxQuotedBytes) + "..." : text;
}

std::optional<std::int64_t> AsInteger(const json& value) {
  if (value.is_number_unsigned()) {
    auto number = value.get<std::uint64_t>();
    if (number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(number);
  }
  if (value.is_number_integer()) return value.get<std::int64_t>();
  if (value.is_number_float()) {
    double number = value.get<double>();
    constexpr double kLargestExact = 9007199254740992.0;  // 2^53
    if (std::isfinite(number) && std::floor(number) == number && std::abs(number) <= kLargestExact) {
      return static_cast<std::int64_t>(number);
    }
  }
  return std::nullopt;
}

StatusOr<ObjectReader> ObjectReader::Make(const json& value, std::string path) {
  if (!value.is_object()) return InvalidArgument(path + ": must be an object (got " + JsonTypeName(value) + ")");
  return ObjectReader(value, std::move(path));
}

std::string ObjectReader::PathOf(std::string_view key) const {
  // A key from the input is echoed, so it is bounded like any value.
  std::string name = key.size() > kMaxQuotedBytes ? Quote(key) : std::string(key);
  return path_.empty() ? name : path_ + "." + name;
}

bool ObjectReader::Has(std::string_view key) const {
  auto it = object_->find(key);
  return it != object_->end() && !it->is_null();
}

const json* ObjectReader::Field(std::string_view key) {
  known_.emplace(key);
  auto it = object_->find(key);
  return it == object_->end() || it->is_null() ? nullptr : &*it;
}

const json* ObjectReader::Accept(std::string_view key) { return Field(key); }

void ObjectReader::AcceptAll() {
  for (const auto& [key, value] : object_->items()) known_.insert(key);
}

StatusOr<std::string> ObjectReader::String(std::string_view key, std::optional<std::string> fallback) {
  const json* value = Field(key);
  if (value == nullptr) {
    if (fallback) return *fallback;
    return InvalidArgument(PathOf(key) + ": required");
  }
  if (!value->is_string()) return InvalidArgument(PathOf(key) + ": must be a string (got " + JsonTypeName(*value) + ")");
  return value->get<std::string>();
}

StatusOr<std::string> ObjectReader::BoundedString(std::string_view key, std::optional<std::string> fallback,
                                                  std::size_t max_bytes, bool allow_empty) {
  bool given = Has(key);
  auto value = String(key, std::move(fallback));
  if (!value.ok() || !given) return value;
  if (value->empty() && !allow_empty) return InvalidArgument(PathOf(key) + ": must not be empty");
  if (value->size() > max_bytes) {
    return InvalidArgument(PathOf(key) + ": at most " + std::to_string(max_bytes) + " bytes (got " +
                           std::to_string(value->size()) + ": " + Quote(*value) + ")");
  }
  return value;
}

namespace {

// The integer `value` within [min, max], or an error naming `path`.
StatusOr<std::int64_t> IntegerWithin(const json& value, const std::string& path, std::int64_t min, std::int64_t max) {
  bool is_integer = value.is_number_integer() || AsInteger(value).has_value();
  if (!is_integer) {
    return InvalidArgument(path + ": must be an integer (got " + JsonTypeName(value) + " " + QuoteJson(value) + ")");
  }
  // Unsigned values above INT64_MAX are out of range too.
  auto number = AsInteger(value);
  if (!number || *number < min || *number > max) {
    return InvalidArgument(path + ": must be between " + std::to_string(min) + " and " + std::to_string(max) +
                           " (got " + QuoteJson(value) + ")");
  }
  return *number;
}

}  // namespace

StatusOr<std::int64_t> ObjectReader::Integer(std::string_view key, std::optional<std::int64_t> fallback,
                                             std::int64_t min, std::int64_t max) {
  const json* value = Field(key);
  if (value == nullptr) {
    if (fallback) return *fallback;
    return InvalidArgument(PathOf(key) + ": required");
  }
  return IntegerWithin(*value, PathOf(key), min, max);
}

StatusOr<std::optional<std::int64_t>> ObjectReader::OptionalInteger(std::string_view key, std::int64_t min,
                                                                    std::int64_t max) {
  const json* value = Field(key);
  if (value == nullptr) return std::optional<std::int64_t>();
  auto number = IntegerWithin(*value, PathOf(key), min, max);
  if (!number.ok()) return number.status();
  return std::optional<std::int64_t>(*number);
}

StatusOr<bool> ObjectReader::Bool(std::string_view key, bool fallback) {
  const json* value = Field(key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) {
    return InvalidArgument(PathOf(key) + ": must be true or false (got " + JsonTypeName(*value) + " " + QuoteJson(*value) + ")");
  }
  return value->get<bool>();
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
  return InvalidArgument(PathOf(key) + ": must be one of " + listed + " (got " + Quote(*value) + ")");
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

StatusOr<json> ObjectReader::Array(std::string_view key, std::size_t max_items) {
  const json* value = Field(key);
  if (value == nullptr) return json::array();
  if (!value->is_array()) return InvalidArgument(PathOf(key) + ": must be a list (got " + JsonTypeName(*value) + ")");
  if (value->size() > max_items) {
    return InvalidArgument(PathOf(key) + ": at most " + std::to_string(max_items) + " items (got " +
                           std::to_string(value->size()) + ")");
  }
  return *value;
}

StatusOr<std::vector<std::string>> ObjectReader::StringList(std::string_view key, std::size_t max_items,
                                                            std::size_t max_bytes) {
  auto items = Array(key, max_items);
  if (!items.ok()) return items.status();
  std::vector<std::string> strings;
  for (std::size_t i = 0; i < items->size(); ++i) {
    const json& item = (*items)[i];
    std::string path = PathOf(key) + "[" + std::to_string(i) + "]";
    if (!item.is_string()) return InvalidArgument(path + ": must be a string (got " + JsonTypeName(item) + ")");
    if (item.get_ref<const std::string&>().size() > max_bytes) {
      return InvalidArgument(path + ": at most " + std::to_string(max_bytes) + " bytes");
    }
    strings.push_back(item.get<std::string>());
  }
  return strings;
}

StatusOr<std::map<std::string, std::string>> ObjectReader::StringMap(std::string_view key) {
  auto object = Object(key, json::object());
  if (!object.ok()) return object.status();
  std::map<std::string, std::string> strings;
  for (const auto& [name, item] : object->items()) {
    if (!item.is_string()) {
      return InvalidArgument(PathOf(key) + "." + name + ": must be a string (got " + JsonTypeName(item) + " " +
                             QuoteJson(item) + ")");
    }
    strings.emplace(name, item.get<std::string>());
  }
  return strings;
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

Status CheckDnsLabel(const std::string& value, const std::string& path) {
  auto fail = [&](const std::string& why) {
    return InvalidArgument(path + ": " + Quote(value) + " is not a valid name: " + why);
  };
  if (value.empty()) return fail("must not be empty");
  if (value.size() > 63) return fail("at most 63 characters");
  for (char c : value) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return fail("only lower-case letters, digits and '-' are allowed");
    }
  }
  if (value.front() == '-' || value.back() == '-') return fail("must start and end with a letter or digit");
  return Status::Ok();
}

StatusOr<ManifestEnvelope> ReadManifestEnvelope(ObjectReader& top, std::string_view api_version, std::string_view kind) {
  auto given_version = top.String("apiVersion", std::nullopt);
  if (!given_version.ok()) return given_version.status();
  if (*given_version != api_version) {
    return InvalidArgument("apiVersion: must be \"" + std::string(api_version) + "\" (got " + Quote(*given_version) + ")");
  }
  auto given_kind = top.String("kind", std::nullopt);
  if (!given_kind.ok()) return given_kind.status();
  if (*given_kind != kind) {
    return InvalidArgument("kind: must be \"" + std::string(kind) + "\" (got " + Quote(*given_kind) + ")");
  }
  const nlohmann::json* metadata_json = top.Accept("metadata");
  if (metadata_json == nullptr) return InvalidArgument("metadata.name: required");
  // The API server adds many fields to metadata (uid, managedFields, ...): read what we need.
  auto metadata = ObjectReader::Make(*metadata_json, "metadata");
  if (!metadata.ok()) return metadata.status();
  ManifestEnvelope envelope;
  auto name = metadata->String("name", std::nullopt);
  if (!name.ok()) return name.status();
  MLSCALE_RETURN_IF_ERROR(CheckDnsLabel(*name, "metadata.name"));
  envelope.name = std::move(*name);
  auto namespace_name = metadata->String("namespace", "");
  if (!namespace_name.ok()) return namespace_name.status();
  if (!namespace_name->empty()) MLSCALE_RETURN_IF_ERROR(CheckDnsLabel(*namespace_name, "metadata.namespace"));
  envelope.namespace_ = std::move(*namespace_name);
  return envelope;
}

}  // namespace mlscale::api
