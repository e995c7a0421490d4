#include "mlscale/api/inference_service.h"

#include <cmath>

#include "mlscale/api/manifest.h"

namespace mlscale::api {
namespace {

using nlohmann::json;

// A DNS-1123 label, as the API server checks names.
Status CheckName(const std::string& value, const std::string& path) {
  bool valid = !value.empty() && value.size() <= 63 && value.front() != '-' && value.back() != '-';
  for (char c : value) valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  if (!valid) {
    return InvalidArgument(path + ": " + Quote(value) +
                           " is not a valid name: at most 63 lower-case letters, digits or '-', starting and ending "
                           "with a letter or digit");
  }
  return Status::Ok();
}

// A number in (min, max] (exclusive_min) or [min, max].
StatusOr<double> Number(ObjectReader& reader, std::string_view key, double fallback, double min, bool exclusive_min,
                        double max) {
  const json* value = reader.Accept(key);
  if (value == nullptr) return fallback;
  const std::string path = reader.PathOf(key);
  if (!value->is_number()) return InvalidArgument(path + ": must be a number (got " + QuoteJson(*value) + ")");
  double number = value->get<double>();
  if (!std::isfinite(number) || (exclusive_min ? number <= min : number < min) || number > max) {
    std::string low = exclusive_min ? "greater than " : "at least ";
    return InvalidArgument(path + ": must be " + low + json(min).dump() + " and at most " + json(max).dump() +
                           " (got " + QuoteJson(*value) + ")");
  }
  return number;
}

StatusOr<ModelSource> ModelFromJson(const json& value, const std::string& path) {
  auto reader = ObjectReader::Make(value, path);
  if (!reader.ok()) return reader.status();
  ModelSource model;
  auto job = reader->String("trainingJob", "");
  if (!job.ok()) return job.status();
  if (reader->Has("trainingJob")) MLSCALE_RETURN_IF_ERROR(CheckName(*job, reader->PathOf("trainingJob")));
  model.training_job = std::move(*job);
  auto volume = reader->String("volume", "");
  if (!volume.ok()) return volume.status();
  if (reader->Has("volume")) MLSCALE_RETURN_IF_ERROR(CheckName(*volume, reader->PathOf("volume")));
  model.volume = std::move(*volume);
  auto model_path = reader->BoundedString("path", "", kMaxPathBytes, true);
  if (!model_path.ok()) return model_path.status();
  if (!model_path->empty()) {
    bool dots = *model_path == ".." || model_path->starts_with("../") || model_path->ends_with("/..") ||
                model_path->find("/../") != std::string::npos;
    if (model_path->front() == '/' || dots) {
      return InvalidArgument(reader->PathOf("path") + ": must be relative to the volume, without \"..\" (got " +
                             Quote(*model_path) + ")");
    }
  }
  model.path = std::move(*model_path);
  auto layout = reader->Choice("layout", "model", {"model", "repository"});
  if (!layout.ok()) return layout.status();
  model.layout = *layout == "repository" ? ModelLayout::kRepository : ModelLayout::kModel;
  auto name = reader->String("name", "");
  if (!name.ok()) return name.status();
  if (reader->Has("name")) MLSCALE_RETURN_IF_ERROR(CheckName(*name, reader->PathOf("name")));
  model.name = std::move(*name);
  auto version = reader->OptionalInteger("version", 1, kMaxModelVersion);
  if (!version.ok()) return version.status();
  model.version = *version;
  MLSCALE_RETURN_IF_ERROR(reader->Finish());

  if (model.training_job.empty() == model.volume.empty()) {
    return InvalidArgument(path + ": give exactly one model source: trainingJob or volume");
  }
  if (model.FromTrainingJob()) {
    for (const char* field : {"path", "layout"}) {
      if (reader->Has(field)) return InvalidArgument(reader->PathOf(field) + ": only with volume (not with trainingJob)");
    }
  }
  if (model.layout == ModelLayout::kRepository) {
    for (const char* field : {"name", "version"}) {
      if (reader->Has(field)) {
        return InvalidArgument(reader->PathOf(field) + ": not with layout repository (it serves every model in it)");
      }
    }
  }
  return model;
}

StatusOr<AutoscalingSpec> AutoscalingFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.autoscaling");
  if (!reader.ok()) return reader.status();
  AutoscalingSpec a;
  auto metric = reader->Choice("metric", a.metric, {"concurrency", "rps"});
  if (!metric.ok()) return metric.status();
  a.metric = *metric;
  auto target = Number(*reader, "target", a.metric == "rps" ? 140 : 70, 0, true, 1e6);
  if (!target.ok()) return target.status();
  a.target = *target;
  auto integer = [&](std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max) -> Status {
    auto read = reader->Integer(key, out, min, max);
    if (!read.ok()) return read.status();
    out = *read;
    return Status::Ok();
  };
  MLSCALE_RETURN_IF_ERROR(integer("minReplicas", a.min_replicas, 0, kMaxServerReplicas));
  MLSCALE_RETURN_IF_ERROR(integer("maxReplicas", a.max_replicas, 0, kMaxServerReplicas));
  MLSCALE_RETURN_IF_ERROR(integer("stableWindowSeconds", a.stable_window_seconds, 5, kMaxWindowSeconds));
  MLSCALE_RETURN_IF_ERROR(integer("panicWindowSeconds", a.panic_window_seconds, 1, kMaxWindowSeconds));
  MLSCALE_RETURN_IF_ERROR(integer("panicThresholdPercent", a.panic_threshold_percent, 110, 1000));
  MLSCALE_RETURN_IF_ERROR(integer("scaleDownDelaySeconds", a.scale_down_delay_seconds, 0, kMaxWindowSeconds));
  MLSCALE_RETURN_IF_ERROR(
      integer("scaleToZeroGracePeriodSeconds", a.scale_to_zero_grace_period_seconds, 0, kMaxWindowSeconds));
  auto up = Number(*reader, "maxScaleUpRate", a.max_scale_up_rate, 1, true, 1e6);
  if (!up.ok()) return up.status();
  a.max_scale_up_rate = *up;
  auto down = Number(*reader, "maxScaleDownRate", a.max_scale_down_rate, 1, true, 1e6);
  if (!down.ok()) return down.status();
  a.max_scale_down_rate = *down;
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  if (a.max_replicas != 0 && a.max_replicas < a.min_replicas) {
    return InvalidArgument("spec.autoscaling.maxReplicas: must be 0 (no bound) or at least minReplicas (" +
                           std::to_string(a.min_replicas) + ")");
  }
  if (a.panic_window_seconds > a.stable_window_seconds) {
    return InvalidArgument("spec.autoscaling.panicWindowSeconds: must be at most stableWindowSeconds (" +
                           std::to_string(a.stable_window_seconds) + ")");
  }
  return a;
}

StatusOr<CanarySpec> CanaryFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.canary");
  if (!reader.ok()) return reader.status();
  CanarySpec canary;
  const json* model = reader->Accept("model");
  if (model == nullptr) return InvalidArgument("spec.canary.model: required");
  auto source = ModelFromJson(*model, "spec.canary.model");
  if (!source.ok()) return source.status();
  canary.model = std::move(*source);
  auto percent = reader->Integer("trafficPercent", std::nullopt, 0, 100);
  if (!percent.ok()) return percent.status();
  canary.traffic_percent = *percent;
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return canary;
}

StatusOr<RolloutSpec> RolloutFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.rollout");
  if (!reader.ok()) return reader.status();
  RolloutSpec r;
  for (auto [key, out, min] : {std::tuple{"progressDeadlineSeconds", &r.progress_deadline_seconds, 1},
                               std::tuple{"drainSeconds", &r.drain_seconds, 0},
                               std::tuple{"oldRevisionGraceSeconds", &r.old_revision_grace_seconds, 0}}) {
    auto read = reader->Integer(key, *out, min, key == std::string_view("progressDeadlineSeconds") ? 86'400 : kMaxWindowSeconds);
    if (!read.ok()) return read.status();
    *out = *read;
  }
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return r;
}

StatusOr<RouterSpec> RouterFromJson(const json& value) {
  auto reader = ObjectReader::Make(value, "spec.router");
  if (!reader.ok()) return reader.status();
  RouterSpec r;
  for (auto [key, out, max] : {std::tuple{"replicas", &r.replicas, kMaxRouterReplicas},
                               std::tuple{"queueLimit", &r.queue_limit, kMaxQueueLimit},
                               std::tuple{"queueTimeoutSeconds", &r.queue_timeout_seconds, std::int64_t{600}}}) {
    auto read = reader->Integer(key, *out, 1, max);
    if (!read.ok()) return read.status();
    *out = *read;
  }
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  return r;
}

// The server pods' image, resources and template follow the TrainingJob's rules (same
// field names at the same paths, so the same messages): read through its parser.
Status ReadServerFields(const json& spec, InferenceServiceSpec& out) {
  json job_spec = json::object();
  for (const char* key : {"image", "resources", "template"}) {
    if (spec.contains(key) && !spec[key].is_null()) job_spec[key] = spec[key];
  }
  json job = {{"apiVersion", kApiVersion}, {"kind", kTrainingJobKind}, {"metadata", {{"name", "server"}}},
              {"spec", job_spec}};
  auto parsed = TrainingJobFromJson(job, nullptr);
  if (!parsed.ok()) return parsed.status();
  out.image = parsed->spec.image;
  out.resources = parsed->spec.resources;
  out.pod_template = parsed->spec.pod_template;
  return Status::Ok();
}

Status CheckModelVolume(const ModelSource& model, const PodTemplateOverlay& overlay, const std::string& path) {
  if (model.volume.empty()) return Status::Ok();
  for (const auto& volume : overlay.volumes) {
    if (volume.at("name") == model.volume) return Status::Ok();
  }
  return InvalidArgument(path + ".volume: " + Quote(model.volume) + " is not a volume of spec.template.volumes");
}

StatusOr<InferenceServiceSpec> SpecFromJson(const json& spec_json) {
  auto reader = ObjectReader::Make(spec_json, "spec");
  if (!reader.ok()) return reader.status();
  InferenceServiceSpec spec;
  const json* model = reader->Accept("model");
  if (model == nullptr) return InvalidArgument("spec.model: required");
  auto source = ModelFromJson(*model, "spec.model");
  if (!source.ok()) return source.status();
  spec.model = std::move(*source);
  for (const char* key : {"image", "resources", "template"}) reader->Accept(key);
  MLSCALE_RETURN_IF_ERROR(ReadServerFields(spec_json, spec));
  auto replicas = reader->Integer("replicas", spec.replicas, 0, kMaxServerReplicas);
  if (!replicas.ok()) return replicas.status();
  spec.replicas = *replicas;
  if (const json* a = reader->Accept("autoscaling")) {
    auto parsed = AutoscalingFromJson(*a);
    if (!parsed.ok()) return parsed.status();
    spec.autoscaling = std::move(*parsed);
  }
  if (const json* c = reader->Accept("canary")) {
    auto parsed = CanaryFromJson(*c);
    if (!parsed.ok()) return parsed.status();
    spec.canary = std::move(*parsed);
  }
  if (const json* r = reader->Accept("rollout")) {
    auto parsed = RolloutFromJson(*r);
    if (!parsed.ok()) return parsed.status();
    spec.rollout = *parsed;
  }
  if (const json* r = reader->Accept("router")) {
    auto parsed = RouterFromJson(*r);
    if (!parsed.ok()) return parsed.status();
    spec.router = *parsed;
  }
  MLSCALE_RETURN_IF_ERROR(reader->Finish());
  MLSCALE_RETURN_IF_ERROR(CheckModelVolume(spec.model, spec.pod_template, "spec.model"));
  if (spec.canary) MLSCALE_RETURN_IF_ERROR(CheckModelVolume(spec.canary->model, spec.pod_template, "spec.canary.model"));
  return spec;
}

}  // namespace

std::string_view ModelLayoutName(ModelLayout layout) {
  return layout == ModelLayout::kRepository ? "repository" : "model";
}

StatusOr<InferenceService> InferenceServiceFromJson(const json& manifest) {
  auto top = ObjectReader::Make(manifest, "");
  if (!top.ok()) return InvalidArgument("the manifest must be an object (a YAML mapping)");
  auto api_version = top->String("apiVersion", std::nullopt);
  if (!api_version.ok()) return api_version.status();
  if (*api_version != kApiVersion) {
    return InvalidArgument("apiVersion: must be \"" + std::string(kApiVersion) + "\" (got " + Quote(*api_version) + ")");
  }
  auto kind = top->String("kind", std::nullopt);
  if (!kind.ok()) return kind.status();
  if (*kind != kInferenceServiceKind) {
    return InvalidArgument("kind: must be \"" + std::string(kInferenceServiceKind) + "\" (got " + Quote(*kind) + ")");
  }
  InferenceService service;
  const json* metadata_json = top->Accept("metadata");
  if (metadata_json == nullptr) return InvalidArgument("metadata.name: required");
  auto metadata = ObjectReader::Make(*metadata_json, "metadata");
  if (!metadata.ok()) return metadata.status();
  auto name = metadata->String("name", std::nullopt);
  if (!name.ok()) return name.status();
  MLSCALE_RETURN_IF_ERROR(CheckName(*name, "metadata.name"));
  // The router's Deployment is "<name>-router" and revisions "<name>-<8 hex>": both must fit.
  if (name->size() > 56) {
    return InvalidArgument("metadata.name: at most 56 characters (its children add \"-router\") (got " +
                           std::to_string(name->size()) + ")");
  }
  service.name = std::move(*name);
  auto namespace_name = metadata->String("namespace", "");
  if (!namespace_name.ok()) return namespace_name.status();
  if (!namespace_name->empty()) MLSCALE_RETURN_IF_ERROR(CheckName(*namespace_name, "metadata.namespace"));
  service.namespace_ = std::move(*namespace_name);
  const json* spec_json = top->Accept("spec");
  if (spec_json == nullptr) return InvalidArgument("spec: required");
  auto spec = SpecFromJson(*spec_json);
  if (!spec.ok()) return spec.status();
  service.spec = std::move(*spec);
  top->Accept("status");
  MLSCALE_RETURN_IF_ERROR(top->Finish());
  return service;
}

StatusOr<InferenceService> ParseInferenceService(std::string_view yaml) {
  auto manifest = ParseYamlDocument(yaml);
  if (!manifest.ok()) return manifest.status();
  return InferenceServiceFromJson(*manifest);
}

StatusOr<InferenceService> LoadInferenceServiceFile(const std::string& path) {
  auto text = ReadManifestFile(path);
  if (!text.ok()) return text.status().WithContext(path);
  auto service = ParseInferenceService(*text);
  if (!service.ok()) return service.status().WithContext(path);
  return service;
}

}  // namespace mlscale::api
