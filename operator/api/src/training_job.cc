#include "mlscale/api/training_job.h"

#include <algorithm>
#include <limits>
#include <regex>
#include <set>

#include "mlscale/api/manifest.h"

namespace mlscale::api {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxTrainerMessageBytes = 512;

// Name rules as the API server applies them (k8s.io/apimachinery/pkg/util/validation).
// Lengths are checked before a pattern, which also bounds what std::regex sees.
const std::regex kDnsLabel("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
const std::regex kDnsSubdomain("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
const std::regex kLabelValue("(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?");
const std::regex kEnvName("[-._a-zA-Z][-._a-zA-Z0-9]*");
const std::regex kQuantity(
    "[+-]?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?");

// A DNS-1123 subdomain (service account and priority class names).
Status CheckDnsSubdomain(const std::string& value, const std::string& path) {
  if (value.size() > 253 || !std::regex_match(value, kDnsSubdomain)) {
    return InvalidArgument(path + ": " + Quote(value) +
                           " is not a valid name: lower-case letters, digits, '-' and '.', at most 253 characters");
  }
  return Status::Ok();
}

Status CheckLabelValue(const std::string& value, const std::string& path) {
  if (value.size() > 63 || !std::regex_match(value, kLabelValue)) {
    return InvalidArgument(path + ": " + Quote(value) +
                           " is not a valid label value: at most 63 letters, digits, '-', '_' or '.', "
                           "starting and ending with a letter or digit");
  }
  return Status::Ok();
}

Status CheckAbsolutePath(const std::string& value, const std::string& path) {
  if (value.empty() || value.front() != '/') return InvalidArgument(path + ": must be an absolute path (got " + Quote(value) + ")");
  return Status::Ok();
}

// `key` of a string map as it appears in a path (bounded like any echoed value).
std::string PathOfKey(const std::string& map_path, const std::string& key) {
  return map_path + "[" + Quote(key) + "]";
}

// Reads a named-item list (volumes, env): each item an object whose `name` matches
// `check_name`, names unique; `read_item` checks the rest of the item.
Status CheckNamedList(const json& items, const std::string& path,
                      const std::function<Status(const std::string&, const std::string&)>& check_name,
                      const std::function<Status(ObjectReader&)>& read_item) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < items.size(); ++i) {
    std::string item_path = path + "[" + std::to_string(i) + "]";
    auto item = ObjectReader::Make(items[i], item_path);
    if (!item.ok()) return item.status();
    auto name = item->String("name", std::nullopt);
    if (!name.ok()) return name.status();
    MLSCALE_RETURN_IF_ERROR(check_name(*name, item->PathOf("name")));
    if (!names.insert(*name).second) return InvalidArgument(item->PathOf("name") + ": duplicate name " + Quote(*name));
    MLSCALE_RETURN_IF_ERROR(read_item(*item));
  }
  return Status::Ok();
}

StatusOr<UserContainer> ContainerFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.container");
  if (!reader.ok()) return reader.status();
  UserContainer container;
  auto image = reader->BoundedString("image", std::nullopt, kMaxImageBytes, false);
  if (!image.ok()) return image.status();
  container.image = std::move(*image);
  auto command = reader->StringList("command", kMaxArguments, kMaxArgumentBytes);
  if (!command.ok()) return command.status();
  container.command = std::move(*command);
  auto args = reader->StringList("args", kMaxArguments, kMaxArgumentBytes);
  if (!args.ok()) return args.status();
  container.args = std::move(*args);
  auto working_dir = reader->BoundedString("workingDir", "", kMaxPathBytes, false);
  if (!working_dir.ok()) return working_dir.status();
  if (!working_dir->empty()) MLSCALE_RETURN_IF_ERROR(CheckAbsolutePath(*working_dir, reader->PathOf("workingDir")));
  container.working_dir = std::move(*working_dir);
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return container;
}

// A quantity map (limits, requests): integers become their decimal text.
StatusOr<std::map<std::string, std::string>> QuantitiesFromJson(ObjectReader& reader, std::string_view key) {
  auto object = reader.Object(key, json::object());
  if (!object.ok()) return object.status();
  std::string path = reader.PathOf(key);
  if (object->size() > kMaxResourceNames) {
    return InvalidArgument(path + ": at most " + std::to_string(kMaxResourceNames) + " resources");
  }
  std::map<std::string, std::string> quantities;
  for (const auto& [name, value] : object->items()) {
    std::string item_path = PathOfKey(path, name);
    std::string text;
    if (auto integer = AsInteger(value)) {
      text = std::to_string(*integer);
    } else if (value.is_string()) {
      text = value.get<std::string>();
      if (text.size() > 64 || !std::regex_match(text, kQuantity)) {
        return InvalidArgument(item_path + ": " + Quote(text) + " is not a quantity (e.g. 2, 500m, 4Gi)");
      }
    } else {
      return InvalidArgument(item_path + ": must be a quantity, an integer or a string such as \"500m\" (got " +
                             QuoteJson(value) + ")");
    }
    if (name == kGpuResource && (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)) {
      return InvalidArgument(item_path + ": must be a whole number of GPUs (got " + Quote(text) + ")");
    }
    quantities.emplace(name, std::move(text));
  }
  return quantities;
}

StatusOr<Resources> ResourcesFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.resources");
  if (!reader.ok()) return reader.status();
  Resources resources;
  auto limits = QuantitiesFromJson(*reader, "limits");
  if (!limits.ok()) return limits.status();
  resources.limits = std::move(*limits);
  auto requests = QuantitiesFromJson(*reader, "requests");
  if (!requests.ok()) return requests.status();
  resources.requests = std::move(*requests);
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return resources;
}

// As the API server checks a pod's tolerations.
Status CheckToleration(const json& item, const std::string& path) {
  auto reader = ObjectReader::Make(item, path);
  if (!reader.ok()) return reader.status();
  auto key = reader->BoundedString("key", "", 316, true);
  if (!key.ok()) return key.status();
  auto operator_name = reader->Choice("operator", "Equal", {"Equal", "Exists"});
  if (!operator_name.ok()) return operator_name.status();
  auto value = reader->BoundedString("value", "", 63, true);
  if (!value.ok()) return value.status();
  if (*operator_name == "Exists" && !value->empty()) {
    return InvalidArgument(reader->PathOf("value") + ": must be empty when operator is Exists");
  }
  if (key->empty() && *operator_name != "Exists") {
    return InvalidArgument(reader->PathOf("operator") + ": must be Exists when key is empty (to tolerate every taint)");
  }
  if (reader->Has("effect")) {
    auto effect = reader->Choice("effect", std::nullopt, {"NoSchedule", "PreferNoSchedule", "NoExecute"});
    if (!effect.ok()) return effect.status();
  }
  auto seconds = reader->OptionalInteger("tolerationSeconds", std::numeric_limits<std::int64_t>::min(),
                                         std::numeric_limits<std::int64_t>::max());
  if (!seconds.ok()) return seconds.status();
  return reader->Finish();
}

Status CheckVolumeMount(const json& item, const std::string& path) {
  auto reader = ObjectReader::Make(item, path);
  if (!reader.ok()) return reader.status();
  auto name = reader->String("name", std::nullopt);
  if (!name.ok()) return name.status();
  MLSCALE_RETURN_IF_ERROR(CheckDnsLabel(*name, reader->PathOf("name")));
  auto mount_path = reader->BoundedString("mountPath", std::nullopt, kMaxPathBytes, false);
  if (!mount_path.ok()) return mount_path.status();
  MLSCALE_RETURN_IF_ERROR(CheckAbsolutePath(*mount_path, reader->PathOf("mountPath")));
  auto sub_path = reader->BoundedString("subPath", "", kMaxPathBytes, true);
  if (!sub_path.ok()) return sub_path.status();
  auto read_only = reader->Bool("readOnly", false);
  if (!read_only.ok()) return read_only.status();
  return reader->Finish();
}

StatusOr<PodTemplateOverlay> TemplateFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.template");
  if (!reader.ok()) return reader.status();
  PodTemplateOverlay overlay;

  auto labels = reader->StringMap("labels");
  if (!labels.ok()) return labels.status();
  for (const auto& [key, label] : *labels) {
    MLSCALE_RETURN_IF_ERROR(CheckLabelValue(label, PathOfKey(reader->PathOf("labels"), key)));
  }
  overlay.labels = std::move(*labels);
  auto annotations = reader->StringMap("annotations");
  if (!annotations.ok()) return annotations.status();
  overlay.annotations = std::move(*annotations);
  auto node_selector = reader->StringMap("nodeSelector");
  if (!node_selector.ok()) return node_selector.status();
  for (const auto& [key, label] : *node_selector) {
    MLSCALE_RETURN_IF_ERROR(CheckLabelValue(label, PathOfKey(reader->PathOf("nodeSelector"), key)));
  }
  overlay.node_selector = std::move(*node_selector);

  auto affinity = reader->Object("affinity", json());
  if (!affinity.ok()) return affinity.status();
  overlay.affinity = std::move(*affinity);

  auto tolerations = reader->Array("tolerations", kMaxListItems);
  if (!tolerations.ok()) return tolerations.status();
  for (std::size_t i = 0; i < tolerations->size(); ++i) {
    MLSCALE_RETURN_IF_ERROR(CheckToleration((*tolerations)[i], reader->PathOf("tolerations") + "[" + std::to_string(i) + "]"));
  }
  overlay.tolerations = std::move(*tolerations);

  // A volume's source (hostPath, persistentVolumeClaim, ...) is checked by the API
  // server when the pod is created; here only its name.
  auto volumes = reader->Array("volumes", kMaxListItems);
  if (!volumes.ok()) return volumes.status();
  MLSCALE_RETURN_IF_ERROR(CheckNamedList(*volumes, reader->PathOf("volumes"), CheckDnsLabel,
                                         [](ObjectReader& volume) {
                                           volume.AcceptAll();
                                           return Status::Ok();
                                         }));
  overlay.volumes = std::move(*volumes);

  auto volume_mounts = reader->Array("volumeMounts", kMaxListItems);
  if (!volume_mounts.ok()) return volume_mounts.status();
  for (std::size_t i = 0; i < volume_mounts->size(); ++i) {
    MLSCALE_RETURN_IF_ERROR(
        CheckVolumeMount((*volume_mounts)[i], reader->PathOf("volumeMounts") + "[" + std::to_string(i) + "]"));
  }
  overlay.volume_mounts = std::move(*volume_mounts);

  auto env = reader->Array("env", kMaxEnvItems);
  if (!env.ok()) return env.status();
  auto check_env_name = [](const std::string& name, const std::string& path) -> Status {
    if (name.empty() || name.size() > 256 || !std::regex_match(name, kEnvName)) {
      return InvalidArgument(path + ": " + Quote(name) +
                             " is not a valid variable name: letters, digits, '_', '-' or '.', not starting with a digit");
    }
    for (std::string_view reserved : kReservedEnvNames) {
      if (name == reserved) return InvalidArgument(path + ": " + Quote(name) + " is set by the controller in every worker");
    }
    return Status::Ok();
  };
  MLSCALE_RETURN_IF_ERROR(CheckNamedList(*env, reader->PathOf("env"), check_env_name, [](ObjectReader& variable) {
    auto text = variable.String("value", "");
    if (!text.ok()) return text.status();
    auto from = variable.Object("valueFrom", json());
    if (!from.ok()) return from.status();
    if (variable.Has("value") && variable.Has("valueFrom")) {
      return InvalidArgument(variable.PathOf("valueFrom") + ": give value or valueFrom, not both");
    }
    return variable.Finish();
  }));
  overlay.env = std::move(*env);

  for (auto [key, out] : {std::pair{"serviceAccountName", &overlay.service_account_name},
                          std::pair{"priorityClassName", &overlay.priority_class_name}}) {
    auto name = reader->String(key, "");
    if (!name.ok()) return name.status();
    if (reader->Has(key)) MLSCALE_RETURN_IF_ERROR(CheckDnsSubdomain(*name, reader->PathOf(key)));
    *out = std::move(*name);
  }
  auto scheduler = reader->BoundedString("schedulerName", "", 253, false);
  if (!scheduler.ok()) return scheduler.status();
  overlay.scheduler_name = std::move(*scheduler);

  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return overlay;
}

StatusOr<RunPolicy> RunPolicyFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.runPolicy");
  if (!reader.ok()) return reader.status();
  RunPolicy policy;
  auto backoff = reader->Integer("backoffLimit", policy.backoff_limit, 0, kMaxBackoffLimit);
  if (!backoff.ok()) return backoff.status();
  policy.backoff_limit = *backoff;
  auto deadline = reader->OptionalInteger("activeDeadlineSeconds", 1, kMaxSeconds);
  if (!deadline.ok()) return deadline.status();
  policy.active_deadline_seconds = *deadline;
  auto ttl = reader->OptionalInteger("ttlSecondsAfterFinished", 0, kMaxSeconds);
  if (!ttl.ok()) return ttl.status();
  policy.ttl_seconds_after_finished = *ttl;
  auto suspend = reader->Bool("suspend", policy.suspend);
  if (!suspend.ok()) return suspend.status();
  policy.suspend = *suspend;
  auto clean = reader->Choice("cleanPodPolicy", std::string(CleanPodPolicyName(policy.clean_pod_policy)),
                              {"None", "Running", "All"});
  if (!clean.ok()) return clean.status();
  policy.clean_pod_policy = *clean == "None" ? CleanPodPolicy::kNone
                            : *clean == "All" ? CleanPodPolicy::kAll
                                              : CleanPodPolicy::kRunning;
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return policy;
}

StatusOr<FailurePolicy> FailurePolicyFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.failurePolicy");
  if (!reader.ok()) return reader.status();
  FailurePolicy policy;
  auto rules = reader->Array("rules", kMaxFailureRules);
  if (!rules.ok()) return rules.status();
  for (std::size_t i = 0; i < rules->size(); ++i) {
    auto rule_reader = ObjectReader::Make((*rules)[i], reader->PathOf("rules") + "[" + std::to_string(i) + "]");
    if (!rule_reader.ok()) return rule_reader.status();
    ExitCodeRule rule;
    auto action = rule_reader->Choice("action", std::nullopt, {"Retry", "Fail"});
    if (!action.ok()) return action.status();
    rule.action = *action == "Fail" ? FailureAction::kFail : FailureAction::kRetry;
    auto codes = rule_reader->Array("exitCodes", 255);
    if (!codes.ok()) return codes.status();
    if (!rule_reader->Has("exitCodes") || codes->empty()) {
      return InvalidArgument(rule_reader->PathOf("exitCodes") + ": required (at least one exit code)");
    }
    for (std::size_t k = 0; k < codes->size(); ++k) {
      std::string code_path = rule_reader->PathOf("exitCodes") + "[" + std::to_string(k) + "]";
      const json& code = (*codes)[k];
      auto number = AsInteger(code);
      if (!number || *number < 1 || *number > 255) {
        return InvalidArgument(code_path + ": must be an exit code between 1 and 255 (got " + QuoteJson(code) + ")");
      }
      int exit_code = static_cast<int>(*number);
      if (std::find(rule.exit_codes.begin(), rule.exit_codes.end(), exit_code) != rule.exit_codes.end()) {
        return InvalidArgument(code_path + ": duplicate exit code " + std::to_string(exit_code));
      }
      rule.exit_codes.push_back(exit_code);
    }
    MLSCALE_RETURN_IF_ERROR(rule_reader->Finish());
    policy.rules.push_back(std::move(rule));
  }
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return policy;
}

StatusOr<GangPolicy> GangFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.gang");
  if (!reader.ok()) return reader.status();
  GangPolicy gang;
  auto timeout = reader->Integer("timeoutSeconds", gang.timeout_seconds, 1, kMaxGangTimeoutSeconds);
  if (!timeout.ok()) return timeout.status();
  gang.timeout_seconds = *timeout;
  auto queue = reader->String("queueName", "");
  if (!queue.ok()) return queue.status();
  if (reader->Has("queueName")) {
    if (queue->empty()) return InvalidArgument(reader->PathOf("queueName") + ": must not be empty");
    MLSCALE_RETURN_IF_ERROR(CheckLabelValue(*queue, reader->PathOf("queueName")));
  }
  gang.queue_name = std::move(*queue);
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return gang;
}

// The volume and path of spec.checkpoint or spec.output.
Status ReadVolumeLocation(ObjectReader& reader, VolumeLocation& location) {
  auto volume = reader.String("volume", "");
  if (!volume.ok()) return volume.status();
  if (reader.Has("volume")) MLSCALE_RETURN_IF_ERROR(CheckDnsLabel(*volume, reader.PathOf("volume")));
  location.volume = std::move(*volume);
  auto path = reader.BoundedString("path", location.path, kMaxPathBytes, false);
  if (!path.ok()) return path.status();
  MLSCALE_RETURN_IF_ERROR(CheckAbsolutePath(*path, reader.PathOf("path")));
  location.path = std::move(*path);
  return Status::Ok();
}

StatusOr<CheckpointPolicy> CheckpointFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.checkpoint");
  if (!reader.ok()) return reader.status();
  CheckpointPolicy checkpoint;
  MLSCALE_RETURN_IF_ERROR(ReadVolumeLocation(*reader, checkpoint.location));
  auto interval = reader->OptionalInteger("intervalSteps", 0, kMaxIntervalSteps);
  if (!interval.ok()) return interval.status();
  checkpoint.interval_steps = *interval;
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return checkpoint;
}

StatusOr<OutputLocation> OutputFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.output");
  if (!reader.ok()) return reader.status();
  OutputLocation output;
  MLSCALE_RETURN_IF_ERROR(ReadVolumeLocation(*reader, output.location));
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return output;
}

// `value` as the API server stores it: without the members whose value is null (nulls
// inside lists are kept: they are errors there), whole floats as integers (4.0 is 4).
json AsStored(const json& value) {
  if (value.is_object()) {
    json copy = json::object();
    for (const auto& [key, item] : value.items()) {
      if (!item.is_null()) copy[key] = AsStored(item);
    }
    return copy;
  }
  if (value.is_array()) {
    json copy = json::array();
    for (const auto& item : value) copy.push_back(item.is_null() ? item : AsStored(item));
    return copy;
  }
  if (value.is_number_float()) {
    if (auto integer = AsInteger(value)) return *integer;
  }
  return value;
}

// Reads section `key` of spec with `parse` when it is given.
template <typename T>
Status ReadSection(ObjectReader& reader, std::string_view key, StatusOr<T> (*parse)(const json&), T& out) {
  const json* value = reader.Accept(key);
  if (value == nullptr) return Status::Ok();
  auto parsed = parse(*value);
  if (!parsed.ok()) return parsed.status();
  out = std::move(*parsed);
  return Status::Ok();
}

// The checks across fields of spec, made here so a bad job is refused at once.
Status CheckAcrossFields(const TrainingJobSpec& spec) {
  if (spec.container) {
    if (spec.Given("image")) return InvalidArgument("spec.container: give image or container, not both");
    if (spec.Given("trainer")) {
      return InvalidArgument("spec.trainer: only for our worker image; a user container (spec.container) reads its own configuration");
    }
  } else {
    std::int64_t batch_size = kDefaultTrainerBatchSize;
    if (auto it = spec.trainer.find("batchSize"); it != spec.trainer.end() && it->is_number_integer()) {
      batch_size = it->get<std::int64_t>();  // validated by the trainer's parser when one is given
    }
    if (batch_size < spec.replicas) {
      return InvalidArgument("spec.trainer.batchSize: the global batch size (" + std::to_string(batch_size) +
                             ") must be at least spec.replicas (" + std::to_string(spec.replicas) +
                             "): every worker needs at least one sample per step");
    }
  }
  std::set<std::string> volumes;
  for (const auto& volume : spec.pod_template.volumes) volumes.insert(volume.at("name").get<std::string>());
  for (std::size_t i = 0; i < spec.pod_template.volume_mounts.size(); ++i) {
    const std::string& name = spec.pod_template.volume_mounts[i].at("name").get_ref<const std::string&>();
    if (!volumes.contains(name)) {
      return InvalidArgument("spec.template.volumeMounts[" + std::to_string(i) + "].name: " + Quote(name) +
                             " is not a volume of spec.template.volumes");
    }
  }
  for (auto [field, location] : {std::pair{"checkpoint", &spec.checkpoint.location},
                                 std::pair{"output", &spec.output.location}}) {
    if (!location->volume.empty() && !volumes.contains(location->volume)) {
      return InvalidArgument("spec." + std::string(field) + ".volume: " + Quote(location->volume) +
                             " is not a volume of spec.template.volumes");
    }
  }
  return Status::Ok();
}

StatusOr<TrainingJobSpec> SpecFromJson(const json& spec_json, const TrainerValidator& validate_trainer) {
  auto reader = ObjectReader::Make(spec_json, "spec");
  if (!reader.ok()) return reader.status();
  TrainingJobSpec spec;
  for (std::string_view field : kSpecFields) {
    if (reader->Has(field)) spec.given.emplace_back(field);
  }

  auto replicas = reader->Integer("replicas", spec.replicas, 1, kMaxReplicas);
  if (!replicas.ok()) return replicas.status();
  spec.replicas = *replicas;

  auto launcher = reader->Choice("launcher", std::string(LauncherKindName(spec.launcher)), {"rendezvous", "mpi"});
  if (!launcher.ok()) return launcher.status();
  spec.launcher = *launcher == "mpi" ? LauncherKind::kMpi : LauncherKind::kRendezvous;

  auto backend = reader->Choice("backend", std::string(BackendName(spec.backend)), {"auto", "cpu", "gpu"});
  if (!backend.ok()) return backend.status();
  spec.backend = *backend == "cpu" ? Backend::kCpu : *backend == "gpu" ? Backend::kGpu : Backend::kAuto;

  auto trainer = reader->Object("trainer", json::object());
  if (!trainer.ok()) return trainer.status();
  spec.trainer = AsStored(*trainer);
  if (validate_trainer) {
    Status valid = validate_trainer(spec.trainer);
    if (!valid.ok()) {
      // The trainer's parser may echo what it was given (a key of any length): bounded here.
      const std::string message = Truncate(valid.message(), kMaxTrainerMessageBytes);
      bool names_field = message.starts_with("trainer.") || message.starts_with("trainer:");
      return Status(valid.code(), names_field ? "spec." + message : "spec.trainer: " + message);
    }
  }

  auto image = reader->BoundedString("image", spec.image, kMaxImageBytes, false);
  if (!image.ok()) return image.status();
  spec.image = std::move(*image);
  const json* container = reader->Accept("container");
  if (container != nullptr) {
    auto parsed = ContainerFromJson(*container);
    if (!parsed.ok()) return parsed.status();
    spec.container = std::move(*parsed);
  }
  MLSCALE_RETURN_IF_ERROR(ReadSection(*reader, "resources", ResourcesFromJson, spec.resources));
  MLSCALE_RETURN_IF_ERROR(ReadSection(*reader, "template", TemplateFromJson, spec.pod_template));
  MLSCALE_RETURN_IF_ERROR(ReadSection(*reader, "runPolicy", RunPolicyFromJson, spec.run_policy));
  MLSCALE_RETURN_IF_ERROR(ReadSection(*reader, "failurePolicy", FailurePolicyFromJson, spec.failure_policy));
  MLSCALE_RETURN_IF_ERROR(ReadSection(*reader, "gang", GangFromJson, spec.gang));
  MLSCALE_RETURN_IF_ERROR(ReadSection(*reader, "checkpoint", CheckpointFromJson, spec.checkpoint));
  MLSCALE_RETURN_IF_ERROR(ReadSection(*reader, "output", OutputFromJson, spec.output));

  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  MLSCALE_RETURN_IF_ERROR(CheckAcrossFields(spec));
  return spec;
}

}  // namespace

std::string_view LauncherKindName(LauncherKind kind) {
  return kind == LauncherKind::kMpi ? "mpi" : "rendezvous";
}

std::string_view BackendName(Backend backend) {
  switch (backend) {
    case Backend::kAuto: return "auto";
    case Backend::kCpu: return "cpu";
    case Backend::kGpu: return "gpu";
  }
  return "auto";
}

std::string_view CleanPodPolicyName(CleanPodPolicy policy) {
  switch (policy) {
    case CleanPodPolicy::kNone: return "None";
    case CleanPodPolicy::kRunning: return "Running";
    case CleanPodPolicy::kAll: return "All";
  }
  return "Running";
}

std::string_view FailureActionName(FailureAction action) { return action == FailureAction::kFail ? "Fail" : "Retry"; }

std::int64_t Resources::Gpus() const {
  // Kubernetes requires limits == requests for extended resources; either may be given.
  for (const auto* quantities : {&limits, &requests}) {
    auto it = quantities->find(std::string(kGpuResource));
    if (it == quantities->end()) continue;
    // The parser admits only whole numbers here; 18 digits stay within int64.
    if (it->second.empty() || it->second.size() > 18 || it->second.find_first_not_of("0123456789") != std::string::npos) {
      return 0;
    }
    return std::stoll(it->second);
  }
  return 0;
}

bool PodTemplateOverlay::Empty() const {
  return labels.empty() && annotations.empty() && node_selector.empty() && affinity.is_null() && tolerations.empty() &&
         volumes.empty() && volume_mounts.empty() && env.empty() && service_account_name.empty() &&
         priority_class_name.empty() && scheduler_name.empty();
}

FailureAction FailurePolicy::Classify(int exit_code) const {
  for (const auto& rule : rules) {
    if (std::find(rule.exit_codes.begin(), rule.exit_codes.end(), exit_code) != rule.exit_codes.end()) return rule.action;
  }
  return exit_code >= 128 ? FailureAction::kRetry : FailureAction::kFail;
}

bool TrainingJobSpec::Given(std::string_view field) const {
  return std::find(given.begin(), given.end(), field) != given.end();
}

std::vector<std::string> TrainingJobSpec::ClusterOnlyFields() const {
  std::vector<std::string> fields;
  for (const auto& field : given) {
    if (field != "replicas" && field != "launcher" && field != "backend" && field != "trainer") fields.push_back(field);
  }
  return fields;
}

const std::string& TrainingJobSpec::WorkerImage() const { return container ? container->image : image; }

StatusOr<TrainingJob> TrainingJobFromJson(const json& manifest, const TrainerValidator& validate_trainer) {
  auto top = ObjectReader::Make(manifest, "");
  if (!top.ok()) return InvalidArgument("the manifest must be an object (a YAML mapping)");

  auto envelope = ReadManifestEnvelope(*top, kApiVersion, kTrainingJobKind);
  if (!envelope.ok()) return envelope.status();
  TrainingJob job;
  job.name = std::move(envelope->name);
  job.namespace_ = std::move(envelope->namespace_);

  const json* spec_json = top->Accept("spec");
  if (spec_json == nullptr) return InvalidArgument("spec: required");
  auto spec = SpecFromJson(*spec_json, validate_trainer);
  if (!spec.ok()) return spec.status();
  job.spec = std::move(*spec);

  top->Accept("status");  // written by the controller; ignored when reading a manifest
  MLSCALE_RETURN_IF_ERROR(top->Finish());
  return job;
}

StatusOr<TrainingJob> ParseTrainingJob(std::string_view yaml, const TrainerValidator& validate_trainer) {
  auto manifest = ParseYamlDocument(yaml);
  if (!manifest.ok()) return manifest.status();
  return TrainingJobFromJson(*manifest, validate_trainer);
}

StatusOr<TrainingJob> LoadTrainingJobFile(const std::string& path, const TrainerValidator& validate_trainer) {
  auto text = ReadManifestFile(path);
  if (!text.ok()) return text.status().WithContext(path);
  auto job = ParseTrainingJob(*text, validate_trainer);
  if (!job.ok()) return job.status().WithContext(path);
  return job;
}

}  // namespace mlscale::api
