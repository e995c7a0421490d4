#include "bare_client.h"

#include "mlscale/api/training_job.h"
#include "mlscale/controllers/trainingjob/children.h"

namespace mlscale::bench {

namespace trainingjob = controllers::trainingjob;

StatusOr<std::vector<nlohmann::json>> BareJobObjects(const nlohmann::json& training_job) {
  StatusOr<api::TrainingJob> parsed = api::TrainingJobFromJson(training_job, nullptr);
  if (!parsed.ok()) return parsed.status();
  trainingjob::JobRef job{*parsed, ""};  // no owner: nothing to garbage-collect
  job.job.namespace_ = training_job["metadata"].value("namespace", "");
  StatusOr<std::string> token = trainingjob::NewToken();
  if (!token.ok()) return token.status();
  std::vector<nlohmann::json> objects = {trainingjob::BuildTokenSecret(job, *token)};
  if (trainingjob::NeedsService(job.job.spec)) objects.push_back(trainingjob::BuildService(job));
  for (std::int64_t rank = 0; rank < job.job.spec.replicas; ++rank) {
    objects.push_back(trainingjob::BuildWorkerPod(job, rank, {}));
  }
  for (nlohmann::json& object : objects) object["metadata"].erase("ownerReferences");
  return objects;
}

Status CreateBareObject(kube::Client& client, const std::string& namespace_name, const nlohmann::json& object) {
  const std::string kind = object.value("kind", "");
  const kube::Resource resource = kind == "Pod"       ? kube::resources::Pods()
                                  : kind == "Service" ? kube::resources::Services()
                                                      : kube::resources::Secrets();
  return client.Create(resource, namespace_name, object).status();
}

}  // namespace mlscale::bench
