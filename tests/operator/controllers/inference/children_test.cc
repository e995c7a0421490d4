// The InferenceService's children and model resolution (children.h): pure functions.
#include <gtest/gtest.h>

#include "mlscale/controllers/inference/children.h"

namespace mlscale::controllers::inference {
namespace {

using nlohmann::json;

ServiceRef Service(json spec = json::object()) {
  if (!spec.contains("model")) spec["model"] = {{"volume", "models"}, {"path", "digits"}};
  if (!spec.contains("template")) spec["template"] = {{"volumes", json::array({json{{"name", "models"}, {"hostPath", {{"path", "/srv/m"}}}}})}};
  json manifest = {{"apiVersion", "mlscale.io/v1alpha1"}, {"kind", "InferenceService"},
                   {"metadata", {{"name", "digits"}, {"namespace", "ml"}}}, {"spec", spec}};
  auto parsed = api::InferenceServiceFromJson(manifest);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return {*parsed, "uid-1"};
}

json Job(const std::string& state, bool output_volume) {
  json job = {{"apiVersion", "mlscale.io/v1alpha1"}, {"kind", "TrainingJob"},
              {"metadata", {{"name", "digits"}, {"uid", "job-uid"}}}, {"spec", {{"replicas", 1}}},
              {"status", {{"state", state}, {"result", {{"modelPath", "/var/lib/mlscale/model"}}}}}};
  if (output_volume) {
    job["spec"]["output"] = {{"volume", "out"}};
    job["spec"]["template"] = {{"volumes", json::array({json{{"name", "out"}, {"persistentVolumeClaim", {{"claimName", "models"}}}}})}};
  }
  return job;
}

TEST(ResolveModel, AVolumeSourceMountsThatVolume) {
  ServiceRef ref = Service();
  Resolution r = ResolveModel(ref.service, ref.service.spec.model, nullptr);
  ASSERT_TRUE(r.model);
  EXPECT_EQ(r.model->name, "digits");
  EXPECT_EQ(r.model->path, "digits");
  EXPECT_EQ(r.model->volume["name"], kModelVolume);
  EXPECT_EQ(r.model->volume["hostPath"]["path"], "/srv/m");
}

TEST(ResolveModel, ATrainingJobMustHaveSucceededOntoAVolume) {
  ServiceRef ref = Service({{"model", {{"trainingJob", "digits"}}}});
  const auto& source = ref.service.spec.model;
  EXPECT_EQ(ResolveModel(ref.service, source, nullptr).why.reason, "TrainingJobNotFound");
  json running = Job("Running", true);
  Resolution waiting = ResolveModel(ref.service, source, &running);
  EXPECT_EQ(waiting.why.reason, "TrainingJobNotFinished");
  EXPECT_NE(waiting.why.message.find("Running"), std::string::npos);
  json failed = Job("Failed", true);
  EXPECT_EQ(ResolveModel(ref.service, source, &failed).why.reason, "TrainingJobFailed");
  json lost = Job("Succeeded", false);
  EXPECT_EQ(ResolveModel(ref.service, source, &lost).why.reason, "ModelNotOnVolume");
  json done = Job("Succeeded", true);
  Resolution served = ResolveModel(ref.service, source, &done);
  ASSERT_TRUE(served.model) << served.why.message;
  EXPECT_EQ(served.model->volume["persistentVolumeClaim"]["claimName"], "models");
  EXPECT_EQ(served.model->volume["name"], kModelVolume);
  EXPECT_NE(served.model->description.find("job-uid"), std::string::npos);
}

TEST(RevisionHash, FollowsTheModelAndTheServerTemplateOnly) {
  ServiceRef a = Service();
  ChildOptions options;
  auto model = *ResolveModel(a.service, a.service.spec.model, nullptr).model;
  const std::string hash = RevisionHash(a.service, model, options);
  EXPECT_EQ(hash.size(), 8u);
  EXPECT_EQ(RevisionHash(a.service, model, options), hash);  // deterministic
  // Replicas, autoscaling, router and canary settings are not part of a revision.
  ServiceRef scaled = Service({{"replicas", 5}, {"autoscaling", {{"target", 3}}}, {"router", {{"replicas", 3}}}});
  EXPECT_EQ(RevisionHash(scaled.service, model, options), hash);
  // The model, the image, resources and the template are.
  ResolvedModel other = model;
  other.path = "digits-v2";
  EXPECT_NE(RevisionHash(a.service, other, options), hash);
  ServiceRef image = Service({{"image", "mlscale/worker:2"}});
  EXPECT_NE(RevisionHash(image.service, model, options), hash);
  ServiceRef resources = Service({{"resources", {{"limits", {{"cpu", 2}}}}}});
  EXPECT_NE(RevisionHash(resources.service, model, options), hash);
  Revision revision = MakeRevision(a.service, model, "default", options);
  EXPECT_EQ(revision.name, "digits-" + hash);
}

TEST(Children, RevisionDeploymentRunsTheServerOnItsAddressWithProbesAndDrain) {
  ServiceRef ref = Service({{"rollout", {{"drainSeconds", 7}}}, {"resources", {{"limits", {{"nvidia.com/gpu", 1}}}}},
                            {"template", {{"volumes", json::array({json{{"name", "models"}, {"emptyDir", json::object()}}})},
                                          {"env", json::array({json{{"name", "OMP_NUM_THREADS"}, {"value", "1"}}})},
                                          {"labels", {{"team", "a"}}}}}});
  ChildOptions options;
  Revision revision = MakeRevision(ref.service, *ResolveModel(ref.service, ref.service.spec.model, nullptr).model,
                                   "default", options);
  json d = BuildRevisionDeployment(ref, revision, 3, options);
  EXPECT_EQ(d["metadata"]["name"], revision.name);
  EXPECT_EQ(d["metadata"]["ownerReferences"][0]["uid"], "uid-1");
  EXPECT_EQ(d["metadata"]["labels"][kRevisionLabel], revision.name);
  EXPECT_EQ(d["metadata"]["labels"][kComponentLabel], kPredictor);
  EXPECT_EQ(d["spec"]["replicas"], 3);
  const json& pod = d["spec"]["template"];
  EXPECT_EQ(pod["metadata"]["labels"][kServiceLabel], "digits");
  EXPECT_EQ(pod["metadata"]["labels"]["team"], "a");
  const json& c = pod["spec"]["containers"][0];
  EXPECT_EQ(c["command"][0], "mlscale-serve");
  const std::string args = c["args"].dump();
  EXPECT_NE(args.find("\"--address\",\"$(POD_IP)\""), std::string::npos) << args;
  EXPECT_NE(args.find("\"--model\",\"digits=/mnt/models/digits\""), std::string::npos) << args;
  EXPECT_NE(args.find("\"--drain-seconds\",\"7\""), std::string::npos) << args;
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/v2/health/ready");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"], "/v2/health/live");
  EXPECT_EQ(c["resources"]["limits"]["nvidia.com/gpu"], "1");
  EXPECT_EQ(c["env"][0]["name"], "POD_IP");
  EXPECT_EQ(c["env"][1]["name"], "OMP_NUM_THREADS");
  EXPECT_GT(pod["spec"]["terminationGracePeriodSeconds"].get<int>(), 7 + 30);
  EXPECT_EQ(pod["spec"]["volumes"].back()["name"], kModelVolume);
  EXPECT_EQ(c["volumeMounts"].back()["readOnly"], true);
  // The spec hash ignores replicas: a scale is a replicas write, never a template change.
  EXPECT_EQ(BuildRevisionDeployment(ref, revision, 1, options)["metadata"]["annotations"][kSpecHashAnnotation],
            d["metadata"]["annotations"][kSpecHashAnnotation]);
  json s = BuildRevisionService(ref, revision);
  EXPECT_EQ(s["metadata"]["labels"][kRevisionLabel], revision.name);
  EXPECT_EQ(s["spec"]["selector"][kRevisionLabel], revision.name);
}

// The annotation of existing Deployments: a new value would roll every revision
// (computed by SpecHash before its hash moved to mlscale/common/hash.h).
TEST(SpecHash, KeepsTheValueOfExistingDeployments) {
  json deployment = {{"metadata", {{"labels", {{"app", "digits"}}}}}, {"spec", {{"replicas", 2}, {"template", {{"x", 1}}}}}};
  EXPECT_EQ(SpecHash(deployment), "f43e6fc1065fefed");
}

TEST(Children, RepositoryAndPinnedVersion) {
  ServiceRef ref = Service({{"model", {{"volume", "models"}, {"layout", "repository"}}}});
  ChildOptions options;
  Revision repo = MakeRevision(ref.service, *ResolveModel(ref.service, ref.service.spec.model, nullptr).model, "default", options);
  EXPECT_NE(BuildRevisionDeployment(ref, repo, 1, options).dump().find("\"--model-repository\",\"/mnt/models\""),
            std::string::npos);
  ServiceRef pinned = Service({{"model", {{"volume", "models"}, {"version", 2}}}});
  Revision v2 = MakeRevision(pinned.service, *ResolveModel(pinned.service, pinned.service.spec.model, nullptr).model,
                             "default", options);
  EXPECT_NE(BuildRevisionDeployment(pinned, v2, 1, options).dump().find("\"--pin\",\"digits=2\""), std::string::npos);
}

TEST(Children, RouterFollowsTheContract) {
  ServiceRef ref = Service({{"router", {{"replicas", 2}, {"queueLimit", 9}, {"queueTimeoutSeconds", 4}}}});
  ChildOptions options;
  json d = BuildRouterDeployment(ref, options);
  EXPECT_EQ(d["metadata"]["name"], "digits-router");
  EXPECT_EQ(d["spec"]["replicas"], 2);
  const json& pod = d["spec"]["template"]["spec"];
  EXPECT_EQ(pod["serviceAccountName"], kRouterAccount);
  const std::string args = pod["containers"][0]["args"].dump();
  for (const char* expected : {"\"--inference-service\",\"digits\"", "\"--namespace\",\"ml\"", "\"--listen\",\"$(POD_IP):8080\"",
                               "\"--metrics-listen\",\"$(POD_IP):9090\"", "\"--queue-limit\",\"9\"",
                               "\"--queue-timeout-ms\",\"4000\""}) {
    EXPECT_NE(args.find(expected), std::string::npos) << expected << " in " << args;
  }
  json s = BuildRouterService(ref);
  EXPECT_EQ(s["metadata"]["name"], "digits");
  EXPECT_EQ(s["spec"]["ports"][0]["port"], 80);
  EXPECT_EQ(s["spec"]["ports"][0]["targetPort"], 8080);
  EXPECT_EQ(Url(ref), "http://digits.ml.svc.cluster.local");
  EXPECT_EQ(PredictorSelector(ref), "mlscale.io/inference-service=digits,mlscale.io/component=predictor");
  json binding = BuildRouterRoleBinding("ml");
  EXPECT_EQ(binding["roleRef"]["name"], "mlscale-router");
  EXPECT_EQ(binding["subjects"][0]["name"], "mlscale-router");
  EXPECT_EQ(binding["subjects"][0]["namespace"], "ml");
}

}  // namespace
}  // namespace mlscale::controllers::inference
