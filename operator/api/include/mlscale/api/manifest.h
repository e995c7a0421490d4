// Reading manifests: YAML documents into JSON values, and strict, typed reading of the
// fields of a JSON object with errors that name the field's path (e.g. "spec.replicas").
// Shared by every resource kind (TrainingJob, sweeps, services); pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"

namespace mlscale::api {

// The largest manifest read (etcd's default request limit is 1.5 MiB; a TrainingJob is
// a few KiB): larger input is refused before it is parsed.
inline constexpr std::size_t kMaxManifestBytes = 1 << 20;
// Values quoted in error messages are cut to this many bytes (then "...").
inline constexpr std::size_t kMaxQuotedBytes = 64;

// Parses one YAML document (JSON is a subset) into JSON. Plain scalars become what
// kubectl makes of them (go-yaml v2, YAML 1.1): null, booleans (true/false, yes/no,
// on/off, y/n), integers (17, 0x11, 0o21, 021, 0b10001, 1_000) and floats; quoted
// scalars stay strings, so `"1"` is a string and `1` a number. Errors carry the line
// and column. An error for: .inf and .nan (JSON has no such numbers),
// empty input, more than one document, more than kMaxManifestBytes, bytes that are not
// UTF-8, nesting deeper than 128 levels, an unterminated quoted scalar.
StatusOr<nlohmann::json> ParseYamlDocument(std::string_view text);

// Reads a manifest file, refusing one larger than kMaxManifestBytes before reading it
// (and a file that grows while read). NotFound when it cannot be opened.
StatusOr<std::string> ReadManifestFile(const std::string& path);

// `text` cut to at most `max_bytes` on a UTF-8 character boundary, with "..." appended
// when cut.
std::string Truncate(std::string_view text, std::size_t max_bytes);

// `value` for an error message: a string quoted (cut to kMaxQuotedBytes), anything
// else as compact JSON (cut likewise); never throws, whatever the bytes.
std::string QuoteJson(const nlohmann::json& value);
std::string Quote(std::string_view text);

// The integer a JSON number stands for: an integer, or a whole float within +-2^53
// (what Kubernetes' schema validation accepts as an integer); nullopt otherwise.
std::optional<std::int64_t> AsInteger(const nlohmann::json& value);

// Reads the fields of one JSON object. Every getter marks its field as known;
// Finish() then rejects the fields nobody asked for, which catches typos such as
// `replica:` instead of `replicas:`. A field whose value is null is absent, as for the
// API server (which drops such nulls before validating). The object must outlive the reader.
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
  // A string of at most `max_bytes` bytes, not empty unless `allow_empty`.
  StatusOr<std::string> BoundedString(std::string_view key, std::optional<std::string> fallback,
                                      std::size_t max_bytes, bool allow_empty);
  // An integer within [min, max]. A whole float within 2^53 (`4.0`) is an integer, as
  // for the API server's schema validation.
  StatusOr<std::int64_t> Integer(std::string_view key, std::optional<std::int64_t> fallback,
                                 std::int64_t min, std::int64_t max);
  // An integer within [min, max], or nullopt when absent.
  StatusOr<std::optional<std::int64_t>> OptionalInteger(std::string_view key, std::int64_t min, std::int64_t max);
  StatusOr<bool> Bool(std::string_view key, bool fallback);
  // A list of strings (each at most `max_bytes`), at most `max_items`; empty when absent.
  StatusOr<std::vector<std::string>> StringList(std::string_view key, std::size_t max_items, std::size_t max_bytes);
  // An object whose values are all strings (labels, annotations, nodeSelector); empty when absent.
  StatusOr<std::map<std::string, std::string>> StringMap(std::string_view key);
  // A list, returned as is (items are checked by the caller); an empty list when absent.
  StatusOr<nlohmann::json> Array(std::string_view key, std::size_t max_items);
  // One of `choices`, e.g. "rendezvous" or "mpi".
  StatusOr<std::string> Choice(std::string_view key, std::optional<std::string> fallback,
                               std::initializer_list<std::string_view> choices);
  // A JSON object, returned as is (for sections validated elsewhere).
  StatusOr<nlohmann::json> Object(std::string_view key, std::optional<nlohmann::json> fallback);
  // A field of any type that is accepted and left to the caller (or ignored).
  const nlohmann::json* Accept(std::string_view key);
  // Accepts every field (an object passed through whole, its shape checked elsewhere).
  void AcceptAll();

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

// A DNS-1123 label (what Kubernetes requires of names that become hostnames): OK, or
// an error "<path>: "<value>" is not a valid name: <why>".
Status CheckDnsLabel(const std::string& value, const std::string& path);

// What every mlscale resource's manifest says around its spec.
struct ManifestEnvelope {
  std::string name;
  std::string namespace_;  // "" when not given
};

// Reads the envelope of a manifest from `top` (the manifest's reader): apiVersion must
// be `api_version`, kind must be `kind`, metadata.name a DNS label (required),
// metadata.namespace one when given; the rest of metadata (uid, managedFields, ... the
// API server adds) is ignored. Marks apiVersion, kind and metadata as known; errors
// name the field.
StatusOr<ManifestEnvelope> ReadManifestEnvelope(ObjectReader& top, std::string_view api_version, std::string_view kind);

}  // namespace mlscale::api
