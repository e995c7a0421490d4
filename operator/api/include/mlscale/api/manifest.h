// Reading manifests: YAML documents into JSON values, and strict, typed reading of the
// fields of a JSON object with errors that name the field's path (e.g. "spec.replicas").
// Shared by every resource kind (TrainingJob, sweeps, services); pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"

namespace mlscale::api {

// Parses one YAML document (JSON is a subset) into JSON. Plain scalars that read as an
// integer, a float, true/false or null become those; quoted scalars stay strings, so
// `"1"` is a string and `1` a number. Errors carry the line and column. An empty
// input or more than one document is an error.
StatusOr<nlohmann::json> ParseYamlDocument(std::string_view text);

// Reads the fields of one JSON object. Every getter marks its field as known;
// Finish() then rejects the fields nobody asked for, which catches typos such as
// `replica:` instead of `replicas:`. The object must outlive the reader.
class ObjectReader {
 public:
  // An error unless `value` is an object; `path` names it in errors ("spec").
  static StatusOr<ObjectReader> Make(const nlohmann::json& value, std::string path);

  // The dotted path of a field of this object, e.g. "spec.replicas".
  std::string PathOf(std::string_view key) const;
  bool Has(std::string_view key) const;

  // Each getter returns the field's value, or `fallback` when the field is absent
  // (an error naming the field when there is no fallback).
  StatusOr<std::string> String(std::string_view key, std::optional<std::string> fallback);
  // An integer within [min, max].
  StatusOr<std::int64_t> Integer(std::string_view key, std::optional<std::int64_t> fallback,
                                 std::int64_t min, std::int64_t max);
  // One of `choices`, e.g. "rendezvous" or "mpi".
  StatusOr<std::string> Choice(std::string_view key, std::optional<std::string> fallback,
                               std::initializer_list<std::string_view> choices);
  // A JSON object, returned as is (for sections validated elsewhere).
  StatusOr<nlohmann::json> Object(std::string_view key, std::optional<nlohmann::json> fallback);
  // A field of any type that is accepted and left to the caller (or ignored).
  const nlohmann::json* Accept(std::string_view key);

  // An error naming the first field no getter asked for, and the known ones.
  Status Finish() const;

 private:
  ObjectReader(const nlohmann::json& object, std::string path) : object_(&object), path_(std::move(path)) {}
  // The field, marked as known; nullptr when absent.
  const nlohmann::json* Field(std::string_view key);

  const nlohmann::json* object_;
  std::string path_;
  std::set<std::string, std::less<>> known_;
};

}  // namespace mlscale::api
