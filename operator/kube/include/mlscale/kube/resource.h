// Naming resources and objects: a Resource is a group/version/plural (core or custom);
// objects are nlohmann::json documents as the API server sends them.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mlscale::kube {

using Object = nlohmann::json;

struct Resource {
  std::string group;    // "" for the core group
  std::string version;  // "v1"
  std::string plural;   // "pods"
  bool namespaced = true;
  // "Pod": stamped on listed items (the API server sends items without apiVersion and
  // kind), so that an owner reference built from one is complete.
  std::string kind{};

  // "/api/v1" or "/apis/<group>/<version>".
  std::string GroupVersionPath() const;
  // The collection or object path: ".../namespaces/<ns>/<plural>[/<name>[/<subresource>]]".
  // `namespace_name` empty lists across all namespaces (namespaced resources only).
  std::string Path(std::string_view namespace_name, std::string_view name = "",
                   std::string_view subresource = "") const;
  // "apps/v1" or "v1", as in apiVersion.
  std::string ApiVersion() const;
  bool operator==(const Resource&) const = default;
};

// Well-known resources used by the runtime and its tests.
namespace resources {
Resource Pods();
Resource Services();
Resource ConfigMaps();
Resource Secrets();
Resource Namespaces();
Resource Nodes();
Resource Events();
Resource ServiceAccounts();
Resource Deployments();
Resource Leases();
}  // namespace resources

// Accessors for metadata; missing fields read as "" / 0.
std::string NamespaceOf(const Object& object);
std::string NameOf(const Object& object);
std::string UidOf(const Object& object);
std::string ResourceVersionOf(const Object& object);
int64_t GenerationOf(const Object& object);

// The cache/work-queue key of an object: "<namespace>/<name>", or "<name>" when cluster-scoped.
std::string KeyOf(const Object& object);
std::string MakeKey(std::string_view namespace_name, std::string_view name);
// Splits a key into namespace and name (namespace "" for cluster-scoped keys).
std::pair<std::string, std::string> SplitKey(std::string_view key);

}  // namespace mlscale::kube
