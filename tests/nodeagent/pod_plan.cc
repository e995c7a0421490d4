#include "pod_plan.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "json_fields.h"
#include "quantity.h"

namespace mlscale::nodeagent {
namespace {

using nlohmann::json;

// An ordered environment where a later definition replaces an earlier one in place,
// as the kubelet merges image env, envFrom and env.
class Environment {
 public:
  void Set(const std::string& name, const std::string& value) {
    for (auto& [n, v] : entries_) {
      if (n == name) {
        v = value;
        return;
      }
    }
    entries_.emplace_back(name, value);
  }
  std::vector<std::string> Flatten() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& [n, v] : entries_) out.push_back(n + "=" + v);
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

StatusOr<std::vector<std::string>> StringList(const json& container, const char* key,
                                              const std::string& where) {
  std::vector<std::string> out;
  auto it = container.find(key);
  if (it == container.end() || it->is_null()) return out;
  if (!it->is_array()) return InvalidArgument(where + "." + key + " is not a list");
  for (const json& item : *it) {
    if (!item.is_string()) return InvalidArgument(where + "." + key + " has a non-string item");
    out.push_back(item.get<std::string>());
  }
  return out;
}

StatusOr<int> IntAt(const json& object, const char* key, int fallback, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) return InvalidArgument(where + "." + key + " is not an integer");
  return it->get<int>();
}

// metadata.labels['key'] -> ("labels", "key").
std::optional<std::pair<std::string, std::string>> SubscriptPath(const std::string& path) {
  for (const char* field : {"labels", "annotations"}) {
    std::string prefix = std::string("metadata.") + field + "['";
    if (path.rfind(prefix, 0) == 0 && path.size() > prefix.size() + 2 &&
        path.compare(path.size() - 2, 2, "']") == 0) {
      return std::make_pair(std::string(field),
                            path.substr(prefix.size(), path.size() - prefix.size() - 2));
    }
  }
  return std::nullopt;
}

StatusOr<std::string> FieldRefValue(const json& pod, const std::string& path,
                                    const PlanInputs& inputs) {
  const json& metadata = Field(pod, "metadata");
  const json& spec = Field(pod, "spec");
  if (path == "metadata.name") return StringField(metadata, "name");
  if (path == "metadata.namespace") return StringField(metadata, "namespace");
  if (path == "metadata.uid") return StringField(metadata, "uid");
  if (path == "spec.nodeName") return inputs.node_name;
  if (path == "spec.serviceAccountName") return StringField(spec, "serviceAccountName");
  if (path == "status.podIP" || path == "status.podIPs") return inputs.pod_ip;
  if (path == "status.hostIP" || path == "status.hostIPs") return inputs.host_ip;
  if (auto subscript = SubscriptPath(path)) {
    const json& map = Field(metadata, subscript->first);
    return StringField(map, subscript->second.c_str());
  }
  return InvalidArgument("unsupported fieldRef.fieldPath '" + path + "'");
}

StatusOr<std::string> ResourceFieldValue(const json& container, const json& ref,
                                         const PlanInputs& inputs) {
  std::string resource = StringField(ref, "resource");  // "limits.cpu", "requests.memory"
  auto dot = resource.find('.');
  if (dot == std::string::npos) return InvalidArgument("resourceFieldRef.resource '" + resource + "'");
  std::string section = resource.substr(0, dot);
  std::string name = resource.substr(dot + 1);
  if (section != "limits" && section != "requests") {
    return InvalidArgument("resourceFieldRef.resource '" + resource + "'");
  }
  const json& resources = Field(container, "resources");
  const json& amount = Field(Field(resources, section), name);
  std::string quantity = amount.is_string() ? amount.get<std::string>()
                         : amount.is_number() ? amount.dump()
                                              : "";
  if (quantity.empty() && section == "limits") {
    // Like the kubelet: an unset limit reads as the node's allocatable amount.
    auto allocatable = inputs.node_allocatable.find(name);
    if (allocatable != inputs.node_allocatable.end()) quantity = allocatable->second;
  }
  if (quantity.empty()) return std::string("0");
  StatusOr<double> value = ParseQuantity(quantity);
  if (!value.ok()) return value.status().WithContext("resourceFieldRef " + resource);
  const json& divisor_field = Field(ref, "divisor");
  std::string divisor_text = divisor_field.is_string()   ? divisor_field.get<std::string>()
                             : divisor_field.is_number() ? divisor_field.dump()
                                                         : "";
  StatusOr<double> divisor = ParseQuantity(divisor_text.empty() ? "1" : divisor_text);
  if (!divisor.ok() || *divisor <= 0) {
    return InvalidArgument("resourceFieldRef " + resource + ": bad divisor '" + divisor_text + "'");
  }
  return std::to_string(static_cast<int64_t>(std::ceil(*value / *divisor)));
}

StatusOr<std::map<std::string, std::string>> Lookup(const PlanInputs& inputs,
                                                    const std::string& kind,
                                                    const std::string& namespace_name,
                                                    const std::string& name) {
  if (!inputs.lookup) return InvalidArgument("cannot read " + kind + " here");
  return inputs.lookup(kind, namespace_name, name);
}

// env[].valueFrom.{configMapKeyRef,secretKeyRef}. nullopt: an optional reference that
// is absent (the variable is then not set).
StatusOr<std::optional<std::string>> KeyRefValue(const json& ref, const std::string& kind,
                                                 const std::string& namespace_name,
                                                 const PlanInputs& inputs) {
  std::string name = StringField(ref, "name");
  std::string key = StringField(ref, "key");
  bool optional = BoolField(ref, "optional");
  StatusOr<std::map<std::string, std::string>> data = Lookup(inputs, kind, namespace_name, name);
  if (!data.ok()) {
    if (optional && data.status().code() == StatusCode::kNotFound) return std::optional<std::string>();
    return InvalidArgument(kind + " " + namespace_name + "/" + name + ": " + data.status().message());
  }
  auto it = data->find(key);
  if (it == data->end()) {
    if (optional) return std::optional<std::string>();
    return InvalidArgument("key '" + key + "' not found in " + kind + " " + namespace_name + "/" + name);
  }
  return std::optional<std::string>(it->second);
}

Status AddEnvFrom(const json& container, const std::string& namespace_name,
                  const PlanInputs& inputs, Environment& env, const std::string& where) {
  auto it = container.find("envFrom");
  if (it == container.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return InvalidArgument(where + ".envFrom is not a list");
  for (const json& source : *it) {
    std::string prefix = StringField(source, "prefix");
    for (const auto& [field, kind] : {std::pair{"configMapRef", "configmaps"},
                                      std::pair{"secretRef", "secrets"}}) {
      if (!source.contains(field)) continue;
      const json& ref = source[field];
      std::string name = StringField(ref, "name");
      StatusOr<std::map<std::string, std::string>> data = Lookup(inputs, kind, namespace_name, name);
      if (!data.ok()) {
        if (BoolField(ref, "optional") && data.status().code() == StatusCode::kNotFound) continue;
        return InvalidArgument(where + ".envFrom " + kind + " " + namespace_name + "/" + name +
                               ": " + data.status().message());
      }
      for (const auto& [key, value] : *data) env.Set(prefix + key, value);
    }
  }
  return Status::Ok();
}

Status AddEnv(const json& pod, const json& container, const PlanInputs& inputs,
              Environment& env, const std::string& where) {
  auto it = container.find("env");
  if (it == container.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return InvalidArgument(where + ".env is not a list");
  std::string namespace_name = StringField(Field(pod, "metadata"), "namespace");
  for (const json& variable : *it) {
    std::string name = StringField(variable, "name");
    if (name.empty()) return InvalidArgument(where + ".env has an entry without a name");
    std::string context = where + ".env[" + name + "]";
    if (variable.contains("value")) {
      if (!variable["value"].is_string()) return InvalidArgument(context + ".value is not a string");
      // A value may refer to variables defined before it.
      env.Set(name, ExpandVariables(variable["value"].get<std::string>(), env.Flatten()));
      continue;
    }
    const json& from = Field(variable, "valueFrom");
    if (from.contains("fieldRef")) {
      StatusOr<std::string> value = FieldRefValue(pod, StringField(from["fieldRef"], "fieldPath"), inputs);
      if (!value.ok()) return value.status().WithContext(context);
      env.Set(name, *value);
    } else if (from.contains("resourceFieldRef")) {
      StatusOr<std::string> value = ResourceFieldValue(container, from["resourceFieldRef"], inputs);
      if (!value.ok()) return value.status().WithContext(context);
      env.Set(name, *value);
    } else if (from.contains("configMapKeyRef") || from.contains("secretKeyRef")) {
      bool config_map = from.contains("configMapKeyRef");
      StatusOr<std::optional<std::string>> value =
          KeyRefValue(config_map ? from["configMapKeyRef"] : from["secretKeyRef"],
                      config_map ? "configmaps" : "secrets", namespace_name, inputs);
      if (!value.ok()) return value.status().WithContext(context);
      if (value->has_value()) env.Set(name, **value);
    } else {
      env.Set(name, "");  // a variable with neither value nor valueFrom is set empty
    }
  }
  return Status::Ok();
}

StatusOr<int> ProbePort(const json& port, const json& container, const std::string& where) {
  if (port.is_number_integer()) return port.get<int>();
  if (port.is_string()) {
    std::string name = port.get<std::string>();
    for (const json& declared : ListField(container, "ports")) {
      if (StringField(declared, "name") == name && declared.contains("containerPort") &&
          declared["containerPort"].is_number_integer()) {
        return declared["containerPort"].get<int>();
      }
    }
    // A numeric string is a port number too.
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
      return std::stoi(name);
    }
    return InvalidArgument(where + ": no container port named '" + name + "'");
  }
  return InvalidArgument(where + ": port is neither a number nor a name");
}

StatusOr<std::optional<ProbePlan>> BuildProbe(const json& container, const char* field,
                                              const std::vector<std::string>& env,
                                              const std::string& where_container) {
  auto it = container.find(field);
  if (it == container.end() || it->is_null()) return std::optional<ProbePlan>();
  std::string where = where_container + "." + field;
  if (!it->is_object()) return InvalidArgument(where + " is not an object");
  const json& probe = *it;
  ProbePlan plan;
  StatusOr<int> delay = IntAt(probe, "initialDelaySeconds", 0, where);
  StatusOr<int> period = IntAt(probe, "periodSeconds", 10, where);
  StatusOr<int> timeout = IntAt(probe, "timeoutSeconds", 1, where);
  StatusOr<int> success = IntAt(probe, "successThreshold", 1, where);
  StatusOr<int> failure = IntAt(probe, "failureThreshold", 3, where);
  for (const StatusOr<int>* value : {&delay, &period, &timeout, &success, &failure}) {
    if (!value->ok()) return value->status();
  }
  plan.initial_delay_seconds = *delay;
  plan.period_seconds = std::max(1, *period);
  plan.timeout_seconds = std::max(1, *timeout);
  plan.success_threshold = std::max(1, *success);
  plan.failure_threshold = std::max(1, *failure);
  if (probe.contains("exec")) {
    plan.kind = ProbePlan::Kind::kExec;
    StatusOr<std::vector<std::string>> command = StringList(probe["exec"], "command", where + ".exec");
    if (!command.ok()) return command.status();
    if (command->empty()) return InvalidArgument(where + ".exec.command is empty");
    for (std::string& word : *command) word = ExpandVariables(word, env);
    plan.command = std::move(*command);
  } else if (probe.contains("httpGet") || probe.contains("tcpSocket")) {
    bool http = probe.contains("httpGet");
    const json& action = http ? probe["httpGet"] : probe["tcpSocket"];
    plan.kind = http ? ProbePlan::Kind::kHttpGet : ProbePlan::Kind::kTcpSocket;
    StatusOr<int> port = ProbePort(Field(action, "port"), container, where);
    if (!port.ok()) return port.status();
    plan.port = *port;
    plan.host = StringField(action, "host");
    if (http) {
      std::string scheme = StringField(action, "scheme");
      if (!scheme.empty() && scheme != "HTTP") {
        return InvalidArgument(where + ".httpGet.scheme " + scheme + " is not supported by the test node agent");
      }
      std::string path = StringField(action, "path");
      plan.path = path.empty() ? "/" : path;
      if (plan.path[0] != '/') plan.path = "/" + plan.path;
      for (const json& header : ListField(action, "httpHeaders")) {
        plan.http_headers.emplace_back(StringField(header, "name"), StringField(header, "value"));
      }
    }
  } else {
    return InvalidArgument(where + " has no exec, httpGet or tcpSocket handler");
  }
  return std::optional<ProbePlan>(std::move(plan));
}

// Files of a configMap or secret volume source ("items" honoured) added to `files`.
Status AddKeyedFiles(const json& source, bool config_map, const std::string& namespace_name,
                     const PlanInputs& inputs, std::map<std::string, std::string>& files,
                     const std::string& where) {
  std::string kind = config_map ? "configmaps" : "secrets";
  std::string object = StringField(source, config_map ? "name" : "secretName");
  if (object.empty()) object = StringField(source, "name");  // projected secrets use "name"
  StatusOr<std::map<std::string, std::string>> data = Lookup(inputs, kind, namespace_name, object);
  if (!data.ok()) {
    if (BoolField(source, "optional") && data.status().code() == StatusCode::kNotFound) return Status::Ok();
    return InvalidArgument(where + ": " + kind + " " + namespace_name + "/" + object + ": " +
                           data.status().message());
  }
  const json& items = ListField(source, "items");
  if (items.empty()) {
    for (auto& [key, value] : *data) files[key] = value;
    return Status::Ok();
  }
  for (const json& item : items) {
    std::string key = StringField(item, "key");
    std::string path = StringField(item, "path");
    auto value = data->find(key);
    if (value == data->end()) {
      if (BoolField(source, "optional")) continue;
      return InvalidArgument(where + ": key '" + key + "' not found in " + kind + " " + object);
    }
    if (path.empty() || path[0] == '/' || path.find("..") != std::string::npos) {
      return InvalidArgument(where + ": item path '" + path + "' must be relative without '..'");
    }
    files[path] = value->second;
  }
  return Status::Ok();
}

// Files of a downwardAPI volume source (fieldRef items).
Status AddDownwardFiles(const json& pod, const json& source, const PlanInputs& inputs,
                        std::map<std::string, std::string>& files, const std::string& where) {
  for (const json& item : ListField(source, "items")) {
    std::string path = StringField(item, "path");
    if (!item.contains("fieldRef")) {
      return InvalidArgument(where + ": downwardAPI item '" + path + "': only fieldRef is supported");
    }
    StatusOr<std::string> value = FieldRefValue(pod, StringField(Field(item, "fieldRef"), "fieldPath"), inputs);
    if (!value.ok()) return value.status().WithContext(where);
    files[path] = *value;
  }
  return Status::Ok();
}

// A projected serviceAccountToken source -> a token the agent issues.
Status AddTokenProjection(const json& source, std::vector<TokenProjection>& tokens, const std::string& where) {
  if (!source.is_object()) return InvalidArgument(where + ".serviceAccountToken is not an object");
  TokenProjection token;
  token.path = StringField(source, "path");
  token.audience = StringField(source, "audience");
  if (token.path.empty() || token.path[0] == '/' || token.path.find("..") != std::string::npos) {
    return InvalidArgument(where + ".serviceAccountToken.path must be relative without '..'");
  }
  const json& expiration = Field(source, "expirationSeconds");
  if (!expiration.is_null()) {
    if (!expiration.is_number_integer() || expiration.get<int64_t>() < 600) {
      return InvalidArgument(where + ".serviceAccountToken.expirationSeconds must be an integer >= 600");
    }
    token.expiration_seconds = expiration.get<int64_t>();
  }
  tokens.push_back(std::move(token));
  return Status::Ok();
}

// spec.volumes -> what the runtime prepares.
StatusOr<std::vector<VolumePlan>> BuildVolumes(const json& pod, const PlanInputs& inputs) {
  std::vector<VolumePlan> volumes;
  const json& list = Field(Field(pod, "spec"), "volumes");
  if (list.is_null()) return volumes;
  if (!list.is_array()) return InvalidArgument("spec.volumes is not a list");
  std::string namespace_name = StringField(Field(pod, "metadata"), "namespace");
  for (const json& volume : list) {
    VolumePlan plan;
    plan.name = StringField(volume, "name");
    std::string where = "spec.volumes[" + plan.name + "]";
    if (plan.name.empty() || plan.name.find('/') != std::string::npos) {
      return InvalidArgument("spec.volumes has a volume without a valid name");
    }
    plan.kind = VolumePlan::Kind::kFiles;
    if (volume.contains("emptyDir")) {
      plan.kind = VolumePlan::Kind::kEmptyDir;
    } else if (volume.contains("hostPath")) {
      plan.kind = VolumePlan::Kind::kHostPath;
      plan.host_path = StringField(volume["hostPath"], "path");
      plan.create_host_path = StringField(volume["hostPath"], "type") == "DirectoryOrCreate";
      if (plan.host_path.empty() || plan.host_path[0] != '/') {
        return InvalidArgument(where + ".hostPath.path must be absolute");
      }
    } else if (volume.contains("configMap") || volume.contains("secret")) {
      bool config_map = volume.contains("configMap");
      MLSCALE_RETURN_IF_ERROR(AddKeyedFiles(config_map ? volume["configMap"] : volume["secret"], config_map,
                                            namespace_name, inputs, plan.files, where));
    } else if (volume.contains("downwardAPI")) {
      MLSCALE_RETURN_IF_ERROR(AddDownwardFiles(pod, volume["downwardAPI"], inputs, plan.files, where));
    } else if (volume.contains("projected")) {
      // What the ServiceAccount admission adds to every pod (kube-api-access-*): a token,
      // the CA ConfigMap and the namespace. Tokens are issued by the agent (TokenProjection).
      for (const json& source : ListField(volume["projected"], "sources")) {
        if (source.contains("serviceAccountToken")) {
          MLSCALE_RETURN_IF_ERROR(AddTokenProjection(source["serviceAccountToken"], plan.tokens, where));
          continue;
        }
        if (source.contains("configMap") || source.contains("secret")) {
          bool config_map = source.contains("configMap");
          MLSCALE_RETURN_IF_ERROR(AddKeyedFiles(config_map ? source["configMap"] : source["secret"], config_map,
                                                namespace_name, inputs, plan.files, where));
        } else if (source.contains("downwardAPI")) {
          MLSCALE_RETURN_IF_ERROR(AddDownwardFiles(pod, source["downwardAPI"], inputs, plan.files, where));
        } else {
          return InvalidArgument(where + ": unsupported projected source " + source.dump());
        }
      }
    } else {
      return InvalidArgument(where + ": only emptyDir, hostPath, configMap, secret, downwardAPI and "
                             "projected volumes are supported by the test node agent");
    }
    volumes.push_back(std::move(plan));
  }
  return volumes;
}

StatusOr<std::vector<MountPlan>> BuildMounts(const json& container, const std::vector<VolumePlan>& volumes,
                                             const std::string& where) {
  std::vector<MountPlan> mounts;
  const json& list = Field(container, "volumeMounts");
  if (list.is_null()) return mounts;
  if (!list.is_array()) return InvalidArgument(where + ".volumeMounts is not a list");
  for (const json& mount : list) {
    MountPlan plan{StringField(mount, "name"), StringField(mount, "mountPath"), StringField(mount, "subPath")};
    bool known = std::any_of(volumes.begin(), volumes.end(),
                             [&](const VolumePlan& v) { return v.name == plan.volume; });
    if (!known) return InvalidArgument(where + ".volumeMounts: no volume named '" + plan.volume + "'");
    if (plan.mount_path.empty() || plan.mount_path[0] != '/') {
      return InvalidArgument(where + ".volumeMounts[" + plan.volume + "].mountPath must be absolute");
    }
    if (!plan.sub_path.empty() && (plan.sub_path[0] == '/' || plan.sub_path.find("..") != std::string::npos)) {
      return InvalidArgument(where + ".volumeMounts[" + plan.volume + "].subPath must be relative without '..'");
    }
    mounts.push_back(std::move(plan));
  }
  return mounts;
}

StatusOr<ContainerPlan> BuildContainer(const json& pod, const json& container, const PlanInputs& inputs,
                                       const std::vector<VolumePlan>& volumes, const std::string& where) {
  ContainerPlan plan;
  plan.name = StringField(container, "name");
  plan.image = StringField(container, "image");
  std::string context = where + "[" + plan.name + "]";
  if (plan.name.empty()) return InvalidArgument(where + " has a container without a name");
  std::string namespace_name = StringField(Field(pod, "metadata"), "namespace");

  Environment env;
  for (const std::string& entry : inputs.base_env) {
    auto eq = entry.find('=');
    if (eq != std::string::npos) env.Set(entry.substr(0, eq), entry.substr(eq + 1));
  }
  MLSCALE_RETURN_IF_ERROR(AddEnvFrom(container, namespace_name, inputs, env, context));
  MLSCALE_RETURN_IF_ERROR(AddEnv(pod, container, inputs, env, context));
  plan.env = env.Flatten();

  StatusOr<std::vector<std::string>> command = StringList(container, "command", context);
  if (!command.ok()) return command.status();
  StatusOr<std::vector<std::string>> args = StringList(container, "args", context);
  if (!args.ok()) return args.status();
  if (command->empty()) {
    auto image = inputs.images.find(plan.image);
    if (image == inputs.images.end()) {
      return NotFound(context + ": image '" + plan.image +
                      "' is not in the node agent's image map and the container has no command");
    }
    plan.argv = image->second;
  } else {
    plan.argv = std::move(*command);
  }
  for (std::string& arg : *args) plan.argv.push_back(std::move(arg));
  for (std::string& word : plan.argv) word = ExpandVariables(word, plan.env);

  plan.working_dir = StringField(container, "workingDir");
  std::string message_path = StringField(container, "terminationMessagePath");
  if (!message_path.empty()) {
    if (message_path[0] != '/') {
      return InvalidArgument(context + ".terminationMessagePath must be absolute");
    }
    plan.termination_message_path = message_path;
  }
  plan.fallback_to_logs_on_error =
      StringField(container, "terminationMessagePolicy") == "FallbackToLogsOnError";

  StatusOr<std::optional<ProbePlan>> readiness = BuildProbe(container, "readinessProbe", plan.env, context);
  if (!readiness.ok()) return readiness.status();
  plan.readiness = std::move(*readiness);
  StatusOr<std::optional<ProbePlan>> liveness = BuildProbe(container, "livenessProbe", plan.env, context);
  if (!liveness.ok()) return liveness.status();
  plan.liveness = std::move(*liveness);
  StatusOr<std::vector<MountPlan>> mounts = BuildMounts(container, volumes, context);
  if (!mounts.ok()) return mounts.status();
  plan.mounts = std::move(*mounts);
  return plan;
}

StatusOr<std::vector<ContainerPlan>> BuildContainers(const json& pod, const json& spec, const char* field,
                                                     const PlanInputs& inputs,
                                                     const std::vector<VolumePlan>& volumes) {
  std::vector<ContainerPlan> out;
  auto it = spec.find(field);
  if (it == spec.end() || it->is_null()) return out;
  std::string where = std::string("spec.") + field;
  if (!it->is_array()) return InvalidArgument(where + " is not a list");
  for (const json& container : *it) {
    if (!container.is_object()) return InvalidArgument(where + " has an item that is not an object");
    StatusOr<ContainerPlan> plan = BuildContainer(pod, container, inputs, volumes, where);
    if (!plan.ok()) return plan.status();
    out.push_back(std::move(*plan));
  }
  return out;
}

}  // namespace

std::string ExpandVariables(const std::string& text, const std::vector<std::string>& env) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 >= text.size()) {
      out += text[i];
      continue;
    }
    if (text[i + 1] == '$') {  // $$ escapes a literal $
      out += '$';
      ++i;
      continue;
    }
    size_t close = text.find(')', i + 2);
    if (text[i + 1] != '(' || close == std::string::npos) {
      out += text[i];
      continue;
    }
    std::string name = text.substr(i + 2, close - i - 2);
    std::optional<std::string> value;
    for (const std::string& entry : env) {
      if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
          entry[name.size()] == '=') {
        value = entry.substr(name.size() + 1);  // keep scanning: later definitions win
      }
    }
    out += value ? *value : text.substr(i, close - i + 1);
    i = close;
  }
  return out;
}

std::string WaitingReasonFor(const Status& plan_error) {
  return plan_error.code() == StatusCode::kNotFound ? "ErrImagePull" : "CreateContainerConfigError";
}

std::chrono::system_clock::time_point TokenRefreshTime(std::chrono::system_clock::time_point issued,
                                                       std::chrono::system_clock::time_point expires,
                                                       int percent) {
  auto lifetime = std::max(expires - issued, std::chrono::system_clock::duration::zero());
  return issued + std::min<std::chrono::system_clock::duration>(lifetime * percent / 100, std::chrono::hours(24));
}

std::string PodHostname(const json& pod) {
  std::string hostname = StringField(Field(pod, "spec"), "hostname");
  if (!hostname.empty()) return hostname;
  hostname = StringField(Field(pod, "metadata"), "name");
  if (hostname.size() > 63) hostname.resize(63);
  while (!hostname.empty() && (hostname.back() == '-' || hostname.back() == '.')) hostname.pop_back();
  return hostname;
}

PodPlan PlanSkeleton(const json& pod) {
  PodPlan plan;
  const json& metadata = Field(pod, "metadata");
  const json& spec = Field(pod, "spec");
  plan.namespace_name = StringField(metadata, "namespace");
  plan.name = StringField(metadata, "name");
  plan.uid = StringField(metadata, "uid");
  plan.hostname = PodHostname(pod);
  plan.subdomain = StringField(spec, "subdomain");
  std::string policy = StringField(spec, "restartPolicy");
  plan.restart_policy = policy == "Never"       ? RestartPolicy::kNever
                        : policy == "OnFailure" ? RestartPolicy::kOnFailure
                                                : RestartPolicy::kAlways;
  for (const auto& [field, out] : {std::pair{"initContainers", &plan.init_containers},
                                   std::pair{"containers", &plan.containers}}) {
    const json& list = ListField(spec, field);
    if (!list.is_array()) continue;
    for (const json& container : list) {
      ContainerPlan skeleton;
      skeleton.name = StringField(container, "name");
      skeleton.image = StringField(container, "image");
      out->push_back(std::move(skeleton));
    }
  }
  return plan;
}

StatusOr<PodPlan> BuildPodPlan(const json& pod, const PlanInputs& inputs) {
  if (!pod.is_object() || !Field(pod, "metadata").is_object() ||
      !Field(pod, "spec").is_object()) {
    return InvalidArgument("the pod has no metadata or spec object");
  }
  const json& metadata = pod["metadata"];
  const json& spec = pod["spec"];
  PodPlan plan;
  plan.namespace_name = StringField(metadata, "namespace");
  plan.name = StringField(metadata, "name");
  plan.uid = StringField(metadata, "uid");
  if (plan.name.empty() || plan.uid.empty()) return InvalidArgument("the pod has no name or uid");
  plan.hostname = PodHostname(pod);
  plan.subdomain = StringField(spec, "subdomain");
  if (std::string account = StringField(spec, "serviceAccountName"); !account.empty()) {
    plan.service_account = account;
  }
  std::string policy = StringField(spec, "restartPolicy");
  if (policy.empty() || policy == "Always") {
    plan.restart_policy = RestartPolicy::kAlways;
  } else if (policy == "OnFailure") {
    plan.restart_policy = RestartPolicy::kOnFailure;
  } else if (policy == "Never") {
    plan.restart_policy = RestartPolicy::kNever;
  } else {
    return InvalidArgument("spec.restartPolicy '" + policy + "' is not Always, OnFailure or Never");
  }
  if (auto it = spec.find("terminationGracePeriodSeconds"); it != spec.end() && it->is_number_integer()) {
    plan.termination_grace_seconds = std::max<int64_t>(0, it->get<int64_t>());
  }
  StatusOr<std::vector<VolumePlan>> volumes = BuildVolumes(pod, inputs);
  if (!volumes.ok()) return volumes.status();
  StatusOr<std::vector<ContainerPlan>> init = BuildContainers(pod, spec, "initContainers", inputs, *volumes);
  if (!init.ok()) return init.status();
  StatusOr<std::vector<ContainerPlan>> containers = BuildContainers(pod, spec, "containers", inputs, *volumes);
  if (!containers.ok()) return containers.status();
  if (containers->empty()) return InvalidArgument("spec.containers is empty");
  plan.volumes = std::move(*volumes);
  plan.init_containers = std::move(*init);
  plan.containers = std::move(*containers);
  return plan;
}

}  // namespace mlscale::nodeagent
