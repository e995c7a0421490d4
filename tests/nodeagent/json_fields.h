// Reading fields of API objects that may be malformed, without exceptions: a missing
// field or one of the wrong type reads as null / "" / an empty list.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mlscale::nodeagent {

// object[key], or null when `object` is not an object or has no such key.
inline const nlohmann::json& Field(const nlohmann::json& object, std::string_view key) {
  static const nlohmann::json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

// object[key] when it is a list, else an empty list.
inline const nlohmann::json& ListField(const nlohmann::json& object, std::string_view key) {
  static const nlohmann::json kEmpty = nlohmann::json::array();
  const nlohmann::json& value = Field(object, key);
  return value.is_array() ? value : kEmpty;
}

inline std::string StringField(const nlohmann::json& object, std::string_view key) {
  const nlohmann::json& value = Field(object, key);
  return value.is_string() ? value.get<std::string>() : "";
}

inline bool BoolField(const nlohmann::json& object, std::string_view key, bool fallback = false) {
  const nlohmann::json& value = Field(object, key);
  return value.is_boolean() ? value.get<bool>() : fallback;
}

}  // namespace mlscale::nodeagent
