#include "mlscale/kube/selector.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace mlscale::kube {
namespace {

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// A label name or value: at most 63 of [A-Za-z0-9-_.], beginning and ending alphanumeric.
bool IsLabelToken(std::string_view text) {
  if (text.empty() || text.size() > 63 || !IsAlnum(text.front()) || !IsAlnum(text.back())) return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// A DNS-1123 subdomain (a key's prefix): lowercase alphanumerics, '-' and '.', at most 253.
bool IsDnsSubdomain(std::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('.', start);
    std::string_view part = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (part.empty() || part.size() > 63 || !std::isalnum(static_cast<unsigned char>(part.front())) ||
        !std::isalnum(static_cast<unsigned char>(part.back()))) {
      return false;
    }
    for (char c : part) {
      if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-')) return false;
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return true;
}

Status CheckKey(std::string_view key, std::string_view where) {
  size_t slash = key.find('/');
  std::string_view name = slash == std::string_view::npos ? key : key.substr(slash + 1);
  bool ok = IsLabelToken(name) && (slash == std::string_view::npos || IsDnsSubdomain(key.substr(0, slash)));
  if (ok) return Status::Ok();
  return InvalidArgument(std::string(where) + ": invalid label key '" + std::string(key) +
                         "' (a name of at most 63 alphanumerics, '-', '_', '.', optionally prefixed by a DNS subdomain and '/')");
}

Status CheckValue(std::string_view value, std::string_view where) {
  if (value.empty() || IsLabelToken(value)) return Status::Ok();
  return InvalidArgument(std::string(where) + ": invalid label value '" + std::string(value) +
                         "' (at most 63 alphanumerics, '-', '_', '.', beginning and ending alphanumeric)");
}

bool IsInteger(std::string_view text) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

// The lexer of the query-string form: identifiers and the operator tokens.
class Lexer {
 public:
  enum class Kind { kIdentifier, kNot, kEquals, kDoubleEquals, kNotEquals, kGreater, kLess, kOpen, kClose, kComma, kEnd };
  struct Token {
    Kind kind;
    std::string_view text;
    size_t position;
  };
  explicit Lexer(std::string_view text) : text_(text) {}

  Token Next() {
    while (position_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[position_]))) ++position_;
    size_t start = position_;
    if (position_ >= text_.size()) return {Kind::kEnd, "", start};
    char c = text_[position_];
    auto two = [&](char second) { return position_ + 1 < text_.size() && text_[position_ + 1] == second; };
    auto token = [&](Kind kind, size_t length) {
      position_ += length;
      return Token{kind, text_.substr(start, length), start};
    };
    switch (c) {
      case '!': return two('=') ? token(Kind::kNotEquals, 2) : token(Kind::kNot, 1);
      case '=': return two('=') ? token(Kind::kDoubleEquals, 2) : token(Kind::kEquals, 1);
      case '>': return token(Kind::kGreater, 1);
      case '<': return token(Kind::kLess, 1);
      case '(': return token(Kind::kOpen, 1);
      case ')': return token(Kind::kClose, 1);
      case ',': return token(Kind::kComma, 1);
      default: break;
    }
    while (position_ < text_.size()) {
      char d = text_[position_];
      if (std::isspace(static_cast<unsigned char>(d)) || d == '!' || d == '=' || d == '>' || d == '<' || d == '(' ||
          d == ')' || d == ',') {
        break;
      }
      ++position_;
    }
    return {Kind::kIdentifier, text_.substr(start, position_ - start), start};
  }
  Token Peek() {
    size_t saved = position_;
    Token token = Next();
    position_ = saved;
    return token;
  }

 private:
  std::string_view text_;
  size_t position_ = 0;
};

std::string At(std::string_view text, size_t position) {
  return "label selector '" + std::string(text) + "' at " + std::to_string(position);
}

bool Holds(const LabelSelector::Requirement& requirement, const Object& labels) {
  const Object* value = nullptr;
  if (labels.is_object()) {
    auto it = labels.find(requirement.key);
    if (it != labels.end() && it->is_string()) value = &*it;
  }
  using Op = LabelSelector::Operator;
  auto in_values = [&] {
    const std::string& text = value->get_ref<const std::string&>();
    return std::find(requirement.values.begin(), requirement.values.end(), text) != requirement.values.end();
  };
  switch (requirement.op) {
    case Op::kExists: return value != nullptr;
    case Op::kDoesNotExist: return value == nullptr;
    case Op::kEquals:
    case Op::kIn: return value != nullptr && in_values();
    case Op::kNotEquals:
    case Op::kNotIn: return value == nullptr || !in_values();
    case Op::kGreaterThan:
    case Op::kLessThan: {
      if (value == nullptr) return false;
      const std::string& text = value->get_ref<const std::string&>();
      if (!IsInteger(text)) return false;
      int64_t have = std::stoll(text);
      int64_t bound = std::stoll(requirement.values.front());
      return requirement.op == Op::kGreaterThan ? have > bound : have < bound;
    }
  }
  return false;
}

}  // namespace

StatusOr<LabelSelector> LabelSelector::Parse(std::string_view text) {
  LabelSelector selector;
  Lexer lexer(text);
  using Kind = Lexer::Kind;
  if (lexer.Peek().kind == Kind::kEnd) return selector;
  while (true) {
    Requirement requirement;
    Lexer::Token token = lexer.Next();
    if (token.kind == Kind::kNot) {
      Lexer::Token key = lexer.Next();
      if (key.kind != Kind::kIdentifier) return InvalidArgument(At(text, key.position) + ": expected a key after '!'");
      MLSCALE_RETURN_IF_ERROR(CheckKey(key.text, At(text, key.position)));
      requirement = {std::string(key.text), Operator::kDoesNotExist, {}};
    } else if (token.kind == Kind::kIdentifier) {
      MLSCALE_RETURN_IF_ERROR(CheckKey(token.text, At(text, token.position)));
      requirement.key = std::string(token.text);
      Lexer::Token op = lexer.Peek();
      if (op.kind == Kind::kComma || op.kind == Kind::kEnd) {
        requirement.op = Operator::kExists;
      } else {
        lexer.Next();
        if (op.kind == Kind::kEquals || op.kind == Kind::kDoubleEquals || op.kind == Kind::kNotEquals) {
          requirement.op = op.kind == Kind::kNotEquals ? Operator::kNotEquals : Operator::kEquals;
          Lexer::Token value = lexer.Peek();
          std::string_view value_text;
          if (value.kind == Kind::kIdentifier) {
            lexer.Next();
            value_text = value.text;
          } else if (value.kind != Kind::kComma && value.kind != Kind::kEnd) {
            return InvalidArgument(At(text, value.position) + ": expected a value");
          }
          MLSCALE_RETURN_IF_ERROR(CheckValue(value_text, At(text, value.position)));
          requirement.values.emplace_back(value_text);
        } else if (op.kind == Kind::kGreater || op.kind == Kind::kLess) {
          requirement.op = op.kind == Kind::kGreater ? Operator::kGreaterThan : Operator::kLessThan;
          Lexer::Token value = lexer.Next();
          if (value.kind != Kind::kIdentifier || !IsInteger(value.text)) {
            return InvalidArgument(At(text, value.position) + ": expected an integer after '" + std::string(op.text) + "'");
          }
          requirement.values.emplace_back(value.text);
        } else if (op.kind == Kind::kIdentifier && (op.text == "in" || op.text == "notin")) {
          requirement.op = op.text == "in" ? Operator::kIn : Operator::kNotIn;
          Lexer::Token open = lexer.Next();
          if (open.kind != Kind::kOpen) return InvalidArgument(At(text, open.position) + ": expected '('");
          while (true) {
            Lexer::Token value = lexer.Next();
            if (value.kind == Kind::kClose && requirement.values.empty()) {
              return InvalidArgument(At(text, value.position) + ": '" + std::string(op.text) + "' needs at least one value");
            }
            if (value.kind != Kind::kIdentifier) return InvalidArgument(At(text, value.position) + ": expected a value");
            MLSCALE_RETURN_IF_ERROR(CheckValue(value.text, At(text, value.position)));
            requirement.values.emplace_back(value.text);
            Lexer::Token separator = lexer.Next();
            if (separator.kind == Kind::kClose) break;
            if (separator.kind != Kind::kComma) {
              return InvalidArgument(At(text, separator.position) + ": expected ',' or ')'");
            }
          }
        } else {
          return InvalidArgument(At(text, op.position) + ": expected an operator (=, ==, !=, in, notin, >, <) after '" +
                                 requirement.key + "'");
        }
      }
    } else {
      return InvalidArgument(At(text, token.position) + ": expected a key or '!'");
    }
    selector.requirements_.push_back(std::move(requirement));
    Lexer::Token separator = lexer.Next();
    if (separator.kind == Kind::kEnd) break;
    if (separator.kind != Kind::kComma) return InvalidArgument(At(text, separator.position) + ": expected ','");
  }
  return selector;
}

StatusOr<LabelSelector> LabelSelector::FromObject(const Object& object, std::string_view field) {
  LabelSelector selector;
  const std::string where(field);
  if (object.is_null()) return selector;
  if (!object.is_object()) return InvalidArgument(where + ": must be an object");
  if (auto labels = object.find("matchLabels"); labels != object.end() && !labels->is_null()) {
    if (!labels->is_object()) return InvalidArgument(where + ".matchLabels: must be a map of strings");
    for (const auto& [key, value] : labels->items()) {
      const std::string at = where + ".matchLabels." + key;
      if (!value.is_string()) return InvalidArgument(at + ": must be a string");
      MLSCALE_RETURN_IF_ERROR(CheckKey(key, at));
      MLSCALE_RETURN_IF_ERROR(CheckValue(value.get<std::string>(), at));
      selector.requirements_.push_back({key, Operator::kEquals, {value.get<std::string>()}});
    }
  }
  if (auto expressions = object.find("matchExpressions"); expressions != object.end() && !expressions->is_null()) {
    if (!expressions->is_array()) return InvalidArgument(where + ".matchExpressions: must be a list");
    for (size_t i = 0; i < expressions->size(); ++i) {
      const Object& expression = (*expressions)[i];
      const std::string at = where + ".matchExpressions[" + std::to_string(i) + "]";
      if (!expression.is_object()) return InvalidArgument(at + ": must be an object");
      const Object& key = expression.value("key", Object());
      const Object& op = expression.value("operator", Object());
      const Object& values = expression.value("values", Object::array());
      if (!key.is_string()) return InvalidArgument(at + ".key: must be a string");
      MLSCALE_RETURN_IF_ERROR(CheckKey(key.get<std::string>(), at + ".key"));
      if (!values.is_array()) return InvalidArgument(at + ".values: must be a list of strings");
      Requirement requirement{key.get<std::string>(), Operator::kIn, {}};
      for (const Object& value : values) {
        if (!value.is_string()) return InvalidArgument(at + ".values: must be a list of strings");
        MLSCALE_RETURN_IF_ERROR(CheckValue(value.get<std::string>(), at + ".values"));
        requirement.values.push_back(value.get<std::string>());
      }
      const std::string op_name = op.is_string() ? op.get<std::string>() : "";
      if (op_name == "In" || op_name == "NotIn") {
        requirement.op = op_name == "In" ? Operator::kIn : Operator::kNotIn;
        if (requirement.values.empty()) return InvalidArgument(at + ".values: " + op_name + " needs at least one value");
      } else if (op_name == "Exists" || op_name == "DoesNotExist") {
        requirement.op = op_name == "Exists" ? Operator::kExists : Operator::kDoesNotExist;
        if (!requirement.values.empty()) return InvalidArgument(at + ".values: must be empty for " + op_name);
      } else {
        return InvalidArgument(at + ".operator: must be In, NotIn, Exists or DoesNotExist");
      }
      selector.requirements_.push_back(std::move(requirement));
    }
  }
  return selector;
}

LabelSelector LabelSelector::FromLabels(const std::map<std::string, std::string>& labels) {
  LabelSelector selector;
  for (const auto& [key, value] : labels) selector.requirements_.push_back({key, Operator::kEquals, {value}});
  return selector;
}

bool LabelSelector::Matches(const Object& labels) const {
  return std::all_of(requirements_.begin(), requirements_.end(),
                     [&](const Requirement& requirement) { return Holds(requirement, labels); });
}

bool LabelSelector::MatchesObject(const Object& object) const {
  static const Object kNone = Object::object();
  if (!object.is_object()) return Matches(kNone);
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return Matches(kNone);
  auto labels = metadata->find("labels");
  return Matches(labels == metadata->end() ? kNone : *labels);
}

std::string LabelSelector::ToString() const {
  std::string out;
  for (const Requirement& requirement : requirements_) {
    if (!out.empty()) out += ',';
    auto list = [&] {
      std::string values;
      for (const std::string& value : requirement.values) values += (values.empty() ? "" : ",") + value;
      return "(" + values + ")";
    };
    switch (requirement.op) {
      case Operator::kEquals: out += requirement.key + "=" + requirement.values.front(); break;
      case Operator::kNotEquals: out += requirement.key + "!=" + requirement.values.front(); break;
      case Operator::kIn: out += requirement.key + " in " + list(); break;
      case Operator::kNotIn: out += requirement.key + " notin " + list(); break;
      case Operator::kExists: out += requirement.key; break;
      case Operator::kDoesNotExist: out += "!" + requirement.key; break;
      case Operator::kGreaterThan: out += requirement.key + ">" + requirement.values.front(); break;
      case Operator::kLessThan: out += requirement.key + "<" + requirement.values.front(); break;
    }
  }
  return out;
}

}  // namespace mlscale::kube
