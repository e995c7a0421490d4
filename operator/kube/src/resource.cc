#include "mlscale/kube/resource.h"

namespace mlscale::kube {

std::string Resource::GroupVersionPath() const {
  return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
}

std::string Resource::Path(std::string_view namespace_name, std::string_view name,
                           std::string_view subresource) const {
  std::string path = GroupVersionPath();
  if (namespaced && !namespace_name.empty()) {
    path += "/namespaces/";
    path += namespace_name;
  }
  path += "/" + plural;
  if (!name.empty()) {
    path += "/";
    path += name;
    if (!subresource.empty()) {
      path += "/";
      path += subresource;
    }
  }
  return path;
}

std::string Resource::ApiVersion() const { return group.empty() ? version : group + "/" + version; }

namespace resources {
Resource Pods() { return {"", "v1", "pods", true, "Pod"}; }
Resource Services() { return {"", "v1", "services", true, "Service"}; }
Resource ConfigMaps() { return {"", "v1", "configmaps", true, "ConfigMap"}; }
Resource Secrets() { return {"", "v1", "secrets", true, "Secret"}; }
Resource Namespaces() { return {"", "v1", "namespaces", false, "Namespace"}; }
Resource Nodes() { return {"", "v1", "nodes", false, "Node"}; }
Resource Events() { return {"", "v1", "events", true, "Event"}; }
Resource ServiceAccounts() { return {"", "v1", "serviceaccounts", true, "ServiceAccount"}; }
Resource Deployments() { return {"apps", "v1", "deployments", true, "Deployment"}; }
Resource Leases() { return {"coordination.k8s.io", "v1", "leases", true, "Lease"}; }
}  // namespace resources

namespace {
std::string MetadataString(const Object& object, const char* field) {
  if (!object.is_object()) return "";
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return "";
  auto value = metadata->find(field);
  if (value == metadata->end() || !value->is_string()) return "";
  return value->get<std::string>();
}
}  // namespace

std::string NamespaceOf(const Object& object) { return MetadataString(object, "namespace"); }
std::string NameOf(const Object& object) { return MetadataString(object, "name"); }
std::string UidOf(const Object& object) { return MetadataString(object, "uid"); }
std::string ResourceVersionOf(const Object& object) { return MetadataString(object, "resourceVersion"); }

int64_t GenerationOf(const Object& object) {
  if (!object.is_object()) return 0;
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return 0;
  auto value = metadata->find("generation");
  return value != metadata->end() && value->is_number_integer() ? value->get<int64_t>() : 0;
}

std::string MakeKey(std::string_view namespace_name, std::string_view name) {
  if (namespace_name.empty()) return std::string(name);
  std::string key(namespace_name);
  key += "/";
  key += name;
  return key;
}

std::string KeyOf(const Object& object) { return MakeKey(NamespaceOf(object), NameOf(object)); }

std::pair<std::string, std::string> SplitKey(std::string_view key) {
  size_t slash = key.find('/');
  if (slash == std::string_view::npos) return {"", std::string(key)};
  return {std::string(key.substr(0, slash)), std::string(key.substr(slash + 1))};
}

}  // namespace mlscale::kube
