#include "mlscale/api/training_job.h"

#include "mlscale/api/manifest.h"

namespace mlscale::api {
namespace {

using nlohmann::json;

// A DNS-1123 label: what Kubernetes requires of names that become hostnames.
Status CheckDnsLabel(const std::string& value, const std::string& path) {
  auto fail = [&](const std::string& why) {
    return InvalidArgument(path + ": \"" + value + "\" is not a valid name: " + why);
  };
  if (value.empty()) return fail("must not be empty");
  if (value.size() > 63) return fail("at most 63 characters");
  for (char c : value) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return fail("only lower-case letters, digits and '-' are allowed");
    }
  }
  if (value.front() == '-' || value.back() == '-') return fail("must start and end with a letter or digit");
  return Status::Ok();
}

StatusOr<TrainingJobSpec> SpecFromJson(const json& spec_json, const TrainerValidator& validate_trainer) {
  auto reader = ObjectReader::Make(spec_json, "spec");
  if (!reader.ok()) return reader.status();
  TrainingJobSpec spec;

  auto replicas = reader->Integer("replicas", 1, 1, kMaxReplicas);
  if (!replicas.ok()) return replicas.status();
  spec.replicas = *replicas;

  auto launcher = reader->Choice("launcher", "rendezvous", {"rendezvous", "mpi"});
  if (!launcher.ok()) return launcher.status();
  spec.launcher = *launcher == "mpi" ? LauncherKind::kMpi : LauncherKind::kRendezvous;

  auto backend = reader->Choice("backend", "auto", {"auto", "cpu", "gpu"});
  if (!backend.ok()) return backend.status();
  spec.backend = *backend == "cpu" ? Backend::kCpu : *backend == "gpu" ? Backend::kGpu : Backend::kAuto;

  auto trainer = reader->Object("trainer", json::object());
  if (!trainer.ok()) return trainer.status();
  spec.trainer = std::move(*trainer);
  if (validate_trainer) {
    Status valid = validate_trainer(spec.trainer);
    if (!valid.ok()) {
      const std::string& message = valid.message();
      bool names_field = message.starts_with("trainer.") || message.starts_with("trainer:");
      return Status(valid.code(), names_field ? "spec." + message : "spec.trainer: " + message);
    }
  }

  auto image = reader->String("image", "");
  if (!image.ok()) return image.status();
  spec.image = std::move(*image);
  auto resources = reader->Object("resources", json());
  if (!resources.ok()) return resources.status();
  spec.resources = std::move(*resources);
  auto pod_template = reader->Object("template", json());
  if (!pod_template.ok()) return pod_template.status();
  spec.pod_template = std::move(*pod_template);

  MLSCALE_RETURN_IF_ERROR(reader->Finish());
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

std::vector<std::string> TrainingJobSpec::ClusterOnlyFields() const {
  std::vector<std::string> fields;
  if (!image.empty()) fields.emplace_back("image");
  if (!resources.is_null()) fields.emplace_back("resources");
  if (!pod_template.is_null()) fields.emplace_back("template");
  return fields;
}

StatusOr<TrainingJob> TrainingJobFromJson(const json& manifest, const TrainerValidator& validate_trainer) {
  auto top = ObjectReader::Make(manifest, "");
  if (!top.ok()) return InvalidArgument("the manifest must be an object (a YAML mapping)");

  auto api_version = top->String("apiVersion", std::nullopt);
  if (!api_version.ok()) return api_version.status();
  if (*api_version != kApiVersion) {
    return InvalidArgument("apiVersion: must be \"" + std::string(kApiVersion) + "\" (got \"" + *api_version + "\")");
  }
  auto kind = top->String("kind", std::nullopt);
  if (!kind.ok()) return kind.status();
  if (*kind != kTrainingJobKind) {
    return InvalidArgument("kind: must be \"" + std::string(kTrainingJobKind) + "\" (got \"" + *kind + "\")");
  }

  TrainingJob job;
  const json* metadata_json = top->Accept("metadata");
  if (metadata_json == nullptr) return InvalidArgument("metadata.name: required");
  // The API server adds many fields to metadata (uid, managedFields, ...): read what we need.
  auto metadata = ObjectReader::Make(*metadata_json, "metadata");
  if (!metadata.ok()) return metadata.status();
  auto name = metadata->String("name", std::nullopt);
  if (!name.ok()) return name.status();
  MLSCALE_RETURN_IF_ERROR(CheckDnsLabel(*name, "metadata.name"));
  job.name = std::move(*name);
  auto namespace_name = metadata->String("namespace", "");
  if (!namespace_name.ok()) return namespace_name.status();
  if (!namespace_name->empty()) MLSCALE_RETURN_IF_ERROR(CheckDnsLabel(*namespace_name, "metadata.namespace"));
  job.namespace_ = std::move(*namespace_name);

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

}  // namespace mlscale::api
