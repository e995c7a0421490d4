#include "mlscale/kube/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mlscale/kube/base64.h"

namespace mlscale::kube {
namespace {

StatusOr<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + what + " file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || std::filesystem::path(path).is_absolute() || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / path).string();
}

// A string field of a map node, "" when absent; an error when present but not a scalar.
StatusOr<std::string> StringField(const YAML::Node& node, const char* field, const std::string& where) {
  YAML::Node value = node[field];
  if (!value || value.IsNull()) return std::string();
  if (!value.IsScalar()) return InvalidArgument(where + "." + field + " must be a string");
  return value.as<std::string>();
}

// The entry named `name` in a list like clusters: [{name: x, cluster: {...}}], returning its `inner` map.
StatusOr<YAML::Node> NamedEntry(const YAML::Node& root, const char* list, const char* inner,
                                const std::string& name) {
  YAML::Node entries = root[list];
  if (!entries || !entries.IsSequence()) return InvalidArgument(std::string("no '") + list + "' list");
  for (const YAML::Node& entry : entries) {
    if (!entry.IsMap()) return InvalidArgument(std::string("an entry of '") + list + "' is not a map");
    YAML::Node entry_name = entry["name"];
    if (entry_name && entry_name.IsScalar() && entry_name.as<std::string>() == name) {
      YAML::Node body = entry[inner];
      if (!body || !body.IsMap()) {
        return InvalidArgument(std::string(list) + " entry '" + name + "' has no '" + inner + "' map");
      }
      return body;
    }
  }
  return InvalidArgument(std::string("no entry named '") + name + "' in '" + list + "'");
}

// Fills `out` from `<field>-data` (base64) or `<field>` (a file path), data first as kubectl does.
Status LoadPem(const YAML::Node& node, const std::string& field, const std::string& where,
               const std::string& base_dir, std::string& out) {
  StatusOr<std::string> data = StringField(node, (field + "-data").c_str(), where);
  if (!data.ok()) return data.status();
  if (!data->empty()) {
    std::optional<std::string> decoded = Base64Decode(*data);
    if (!decoded) return InvalidArgument(where + "." + field + "-data is not valid base64");
    out = std::move(*decoded);
    return Status::Ok();
  }
  StatusOr<std::string> path = StringField(node, field.c_str(), where);
  if (!path.ok()) return path.status();
  if (path->empty()) return Status::Ok();
  StatusOr<std::string> text = ReadFile(Resolve(base_dir, *path), where + "." + field);
  if (!text.ok()) return text.status();
  out = std::move(*text);
  return Status::Ok();
}

Status ParseInto(const YAML::Node& root, const std::string& base_dir, const std::string& wanted_context,
                 ClientConfig& config) {
  if (!root.IsMap()) return InvalidArgument("not a kubeconfig: the document is not a map");
  std::string context_name = wanted_context;
  if (context_name.empty()) {
    StatusOr<std::string> current = StringField(root, "current-context", "kubeconfig");
    if (!current.ok()) return current.status();
    if (current->empty()) return InvalidArgument("no current-context and no context was named");
    context_name = *current;
  }
  StatusOr<YAML::Node> context = NamedEntry(root, "contexts", "context", context_name);
  if (!context.ok()) return context.status();
  std::string where = "context '" + context_name + "'";
  StatusOr<std::string> cluster_name = StringField(*context, "cluster", where);
  StatusOr<std::string> user_name = StringField(*context, "user", where);
  StatusOr<std::string> namespace_name = StringField(*context, "namespace", where);
  if (!cluster_name.ok()) return cluster_name.status();
  if (!user_name.ok()) return user_name.status();
  if (!namespace_name.ok()) return namespace_name.status();
  if (cluster_name->empty()) return InvalidArgument(where + " names no cluster");
  if (!namespace_name->empty()) config.namespace_name = *namespace_name;

  StatusOr<YAML::Node> cluster = NamedEntry(root, "clusters", "cluster", *cluster_name);
  if (!cluster.ok()) return cluster.status();
  where = "cluster '" + *cluster_name + "'";
  StatusOr<std::string> server = StringField(*cluster, "server", where);
  if (!server.ok()) return server.status();
  if (server->empty()) return InvalidArgument(where + " has no server");
  config.server = *server;
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  YAML::Node insecure = (*cluster)["insecure-skip-tls-verify"];
  if (insecure && !insecure.IsNull()) {
    if (!insecure.IsScalar()) return InvalidArgument(where + ".insecure-skip-tls-verify must be a boolean");
    try {
      config.insecure_skip_tls_verify = insecure.as<bool>();
    } catch (const YAML::Exception&) {
      return InvalidArgument(where + ".insecure-skip-tls-verify must be true or false");
    }
  }
  MLSCALE_RETURN_IF_ERROR(LoadPem(*cluster, "certificate-authority", where, base_dir, config.ca_pem));

  if (user_name->empty()) return Status::Ok();  // anonymous
  StatusOr<YAML::Node> user = NamedEntry(root, "users", "user", *user_name);
  if (!user.ok()) return user.status();
  where = "user '" + *user_name + "'";
  if ((*user)["exec"] || (*user)["auth-provider"]) {
    return InvalidArgument(where + " uses an exec or auth-provider credential plugin, which is not supported");
  }
  MLSCALE_RETURN_IF_ERROR(LoadPem(*user, "client-certificate", where, base_dir, config.client_certificate_pem));
  MLSCALE_RETURN_IF_ERROR(LoadPem(*user, "client-key", where, base_dir, config.client_key_pem));
  if (config.client_certificate_pem.empty() != config.client_key_pem.empty()) {
    return InvalidArgument(where + " has a client certificate without a key or a key without a certificate");
  }
  StatusOr<std::string> token = StringField(*user, "token", where);
  StatusOr<std::string> token_file = StringField(*user, "tokenFile", where);
  if (!token.ok()) return token.status();
  if (!token_file.ok()) return token_file.status();
  config.bearer_token = *token;
  if (!token_file->empty()) {
    config.token_file = Resolve(base_dir, *token_file);
    StatusOr<std::string> probe = ReadFile(config.token_file, where + ".tokenFile");
    if (!probe.ok()) return probe.status();
  }
  return Status::Ok();
}

}  // namespace

StatusOr<ClientConfig> ParseKubeconfig(const std::string& yaml_text, const std::string& base_dir,
                                       const std::string& context) {
  ClientConfig config;
  try {
    YAML::Node root = YAML::Load(yaml_text);
    MLSCALE_RETURN_IF_ERROR(ParseInto(root, base_dir, context, config));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("malformed kubeconfig: ") + e.what());
  }
  return config;
}

StatusOr<ClientConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  StatusOr<std::string> text = ReadFile(path, "kubeconfig");
  if (!text.ok()) return text.status();
  StatusOr<ClientConfig> config =
      ParseKubeconfig(*text, std::filesystem::path(path).parent_path().string(), context);
  if (!config.ok()) return config.status().WithContext("kubeconfig " + path);
  return config;
}

StatusOr<ClientConfig> InClusterConfig(const std::string& service_account_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return FailedPrecondition("not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
  }
  ClientConfig config;
  std::string host_text = host;
  if (host_text.find(':') != std::string::npos) host_text = "[" + host_text + "]";  // IPv6
  config.server = "https://" + host_text + ":" + port;
  StatusOr<std::string> ca = ReadFile(service_account_dir + "/ca.crt", "service-account CA");
  if (!ca.ok()) return ca.status();
  config.ca_pem = std::move(*ca);
  config.token_file = service_account_dir + "/token";
  StatusOr<std::string> token = ReadFile(config.token_file, "service-account token");
  if (!token.ok()) return token.status();
  StatusOr<std::string> ns = ReadFile(service_account_dir + "/namespace", "service-account namespace");
  if (ns.ok() && !ns->empty()) config.namespace_name = *ns;
  return config;
}

StatusOr<ClientConfig> LoadDefaultConfig(const std::string& explicit_path, const std::string& context) {
  if (!explicit_path.empty()) return LoadKubeconfig(explicit_path, context);
  const char* env = std::getenv("KUBECONFIG");
  if (env != nullptr && *env != '\0') {
    std::string first = env;
    first = first.substr(0, first.find(':'));
    return LoadKubeconfig(first, context);
  }
  const char* service_host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (service_host != nullptr && *service_host != '\0') return InClusterConfig();
  const char* home = std::getenv("HOME");
  if (home == nullptr) return NotFound("no kubeconfig: set --kubeconfig or KUBECONFIG");
  return LoadKubeconfig(std::string(home) + "/.kube/config", context);
}

}  // namespace mlscale::kube
