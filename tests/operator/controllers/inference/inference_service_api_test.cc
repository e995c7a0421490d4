// The InferenceService parser (operator/api/inference_service.h): defaults, every section,
// and a table of malformed specs, each refused naming its field. The CRD is held to the same
// verdicts by the corpus test (tests/operator/api/corpus, files *isvc*).
#include <gtest/gtest.h>

#include "mlscale/api/inference_service.h"
#include "mlscale/api/manifest.h"

namespace mlscale::api {
namespace {

using nlohmann::json;

json Manifest(const json& spec) {
  return {{"apiVersion", "mlscale.io/v1alpha1"}, {"kind", "InferenceService"}, {"metadata", {{"name", "digits"}}},
          {"spec", spec}};
}

TEST(InferenceServiceParser, DefaultsAreKnativesAndKServesForAModelFromATrainingJob) {
  auto parsed = InferenceServiceFromJson(Manifest({{"model", {{"trainingJob", "digits"}}}}));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const auto& spec = parsed->spec;
  EXPECT_EQ(spec.model.training_job, "digits");
  EXPECT_TRUE(spec.model.FromTrainingJob());
  EXPECT_EQ(spec.replicas, 1);
  EXPECT_FALSE(spec.autoscaling);
  EXPECT_FALSE(spec.canary);
  EXPECT_EQ(spec.image, kDefaultWorkerImage);
  EXPECT_EQ(spec.rollout.drain_seconds, 10);
  EXPECT_EQ(spec.rollout.progress_deadline_seconds, 600);
  EXPECT_EQ(spec.router.replicas, 1);
}

TEST(InferenceServiceParser, ReadsEverySection) {
  json spec = {
      {"model", {{"volume", "models"}, {"path", "digits"}, {"name", "mnist"}, {"version", 3}}},
      {"resources", {{"limits", {{"cpu", 2}, {"nvidia.com/gpu", 1}}}}},
      {"template", {{"volumes", json::array({json{{"name", "models"}, {"hostPath", {{"path", "/srv/models"}}}}})},
                    {"nodeSelector", {{"pool", "gpu"}}}}},
      {"replicas", 0},
      {"autoscaling", {{"metric", "rps"}, {"minReplicas", 0}, {"maxReplicas", 5}, {"stableWindowSeconds", 30},
                       {"panicWindowSeconds", 3}, {"panicThresholdPercent", 300}, {"scaleDownDelaySeconds", 5},
                       {"scaleToZeroGracePeriodSeconds", 10}, {"maxScaleUpRate", 4.5}, {"maxScaleDownRate", 3}}},
      {"canary", {{"model", {{"volume", "models"}, {"path", "repo"}, {"layout", "repository"}}}, {"trafficPercent", 20}}},
      {"rollout", {{"progressDeadlineSeconds", 30}, {"drainSeconds", 2}, {"oldRevisionGraceSeconds", 1}}},
      {"router", {{"replicas", 2}, {"queueLimit", 50}, {"queueTimeoutSeconds", 5}}}};
  auto parsed = InferenceServiceFromJson(Manifest(spec));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const auto& s = parsed->spec;
  EXPECT_EQ(s.model.volume, "models");
  EXPECT_EQ(s.model.path, "digits");
  EXPECT_EQ(s.model.name, "mnist");
  EXPECT_EQ(s.model.version, 3);
  EXPECT_EQ(s.resources.Gpus(), 1);
  EXPECT_EQ(s.pod_template.node_selector.at("pool"), "gpu");
  EXPECT_EQ(s.replicas, 0);
  ASSERT_TRUE(s.autoscaling);
  EXPECT_EQ(s.autoscaling->metric, "rps");
  EXPECT_EQ(s.autoscaling->target, 140);  // rps: Knative's 200 x 70 %
  EXPECT_EQ(s.autoscaling->min_replicas, 0);
  EXPECT_EQ(s.autoscaling->max_scale_up_rate, 4.5);
  ASSERT_TRUE(s.canary);
  EXPECT_EQ(s.canary->model.layout, ModelLayout::kRepository);
  EXPECT_EQ(s.canary->traffic_percent, 20);
  EXPECT_EQ(s.rollout.old_revision_grace_seconds, 1);
  EXPECT_EQ(s.router.queue_limit, 50);
}

TEST(InferenceServiceParser, ConcurrencyTargetDefaultsTo70) {
  auto parsed = InferenceServiceFromJson(Manifest({{"model", {{"trainingJob", "a"}}}, {"autoscaling", json::object()}}));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->spec.autoscaling->metric, "concurrency");
  EXPECT_EQ(parsed->spec.autoscaling->target, 70);
  EXPECT_EQ(parsed->spec.autoscaling->min_replicas, 1);
}

struct Malformed {
  const char* what;
  json spec;
  const char* field;  // every message names it
};

TEST(InferenceServiceParser, RefusesMalformedSpecsNamingTheField) {
  const json volumes = {{"volumes", json::array({json{{"name", "models"}, {"emptyDir", json::object()}}})}};
  const std::vector<Malformed> cases = {
      {"no model", json::object(), "spec.model"},
      {"two sources", {{"model", {{"trainingJob", "a"}, {"volume", "models"}}}, {"template", volumes}}, "spec.model"},
      {"no source", {{"model", {{"name", "a"}}}}, "spec.model"},
      {"bad job name", {{"model", {{"trainingJob", "Digits"}}}}, "spec.model.trainingJob"},
      {"path with a job", {{"model", {{"trainingJob", "a"}, {"path", "x"}}}}, "spec.model.path"},
      {"absolute path", {{"model", {{"volume", "models"}, {"path", "/x"}}}, {"template", volumes}}, "spec.model.path"},
      {"dot-dot path", {{"model", {{"volume", "models"}, {"path", "a/../b"}}}, {"template", volumes}}, "spec.model.path"},
      {"unknown volume", {{"model", {{"volume", "other"}}}, {"template", volumes}}, "spec.model.volume"},
      {"unknown layout", {{"model", {{"volume", "models"}, {"layout", "flat"}}}, {"template", volumes}}, "spec.model.layout"},
      {"name with repository",
       {{"model", {{"volume", "models"}, {"layout", "repository"}, {"name", "a"}}}, {"template", volumes}},
       "spec.model.name"},
      {"version zero", {{"model", {{"trainingJob", "a"}, {"version", 0}}}}, "spec.model.version"},
      {"unknown model field", {{"model", {{"trainingJob", "a"}, {"uri", "s3://x"}}}}, "spec.model.uri"},
      {"negative replicas", {{"model", {{"trainingJob", "a"}}}, {"replicas", -1}}, "spec.replicas"},
      {"replicas as text", {{"model", {{"trainingJob", "a"}}}, {"replicas", "2"}}, "spec.replicas"},
      {"unknown metric", {{"model", {{"trainingJob", "a"}}}, {"autoscaling", {{"metric", "cpu"}}}}, "spec.autoscaling.metric"},
      {"zero target", {{"model", {{"trainingJob", "a"}}}, {"autoscaling", {{"target", 0}}}}, "spec.autoscaling.target"},
      {"max below min", {{"model", {{"trainingJob", "a"}}}, {"autoscaling", {{"minReplicas", 3}, {"maxReplicas", 2}}}},
       "spec.autoscaling.maxReplicas"},
      {"panic over stable",
       {{"model", {{"trainingJob", "a"}}}, {"autoscaling", {{"stableWindowSeconds", 10}, {"panicWindowSeconds", 20}}}},
       "spec.autoscaling.panicWindowSeconds"},
      {"threshold 100", {{"model", {{"trainingJob", "a"}}}, {"autoscaling", {{"panicThresholdPercent", 100}}}},
       "spec.autoscaling.panicThresholdPercent"},
      {"scale-up rate 1", {{"model", {{"trainingJob", "a"}}}, {"autoscaling", {{"maxScaleUpRate", 1}}}},
       "spec.autoscaling.maxScaleUpRate"},
      {"canary over 100", {{"model", {{"trainingJob", "a"}}}, {"canary", {{"model", {{"trainingJob", "b"}}}, {"trafficPercent", 101}}}},
       "spec.canary.trafficPercent"},
      {"canary without percent", {{"model", {{"trainingJob", "a"}}}, {"canary", {{"model", {{"trainingJob", "b"}}}}}},
       "spec.canary.trafficPercent"},
      {"canary without model", {{"model", {{"trainingJob", "a"}}}, {"canary", {{"trafficPercent", 5}}}}, "spec.canary.model"},
      {"router replicas 0", {{"model", {{"trainingJob", "a"}}}, {"router", {{"replicas", 0}}}}, "spec.router.replicas"},
      {"unknown rollout field", {{"model", {{"trainingJob", "a"}}}, {"rollout", {{"maxSurge", 1}}}}, "spec.rollout.maxSurge"},
      {"fractional GPU", {{"model", {{"trainingJob", "a"}}}, {"resources", {{"limits", {{"nvidia.com/gpu", "0.5"}}}}}},
       "spec.resources.limits"},
      {"mount of no volume", {{"model", {{"trainingJob", "a"}}}, {"template", {{"volumeMounts", json::array({json{{"name", "x"}, {"mountPath", "/x"}}})}}}},
       "spec.template.volumeMounts[0].name"},
      {"unknown spec field", {{"model", {{"trainingJob", "a"}}}, {"predictor", json::object()}}, "spec.predictor"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto parsed = InferenceServiceFromJson(Manifest(c.spec));
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.field), std::string::npos) << parsed.status().message();
  }
}

TEST(InferenceServiceParser, RefusesNamesItsChildrenCannotCarry) {
  json manifest = Manifest({{"model", {{"trainingJob", "a"}}}});
  manifest["metadata"]["name"] = std::string(57, 'a');
  auto parsed = InferenceServiceFromJson(manifest);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("metadata.name"), std::string::npos);
  manifest["kind"] = "TrainingJob";
  EXPECT_NE(InferenceServiceFromJson(manifest).status().message().find("kind"), std::string::npos);
}

TEST(InferenceServiceParser, TheExampleIsValid) {
  auto parsed = LoadInferenceServiceFile(std::string(MLSCALE_EXAMPLES_DIR) + "/inferenceservice-digits.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->spec.model.training_job, "digits");
}

}  // namespace
}  // namespace mlscale::api
