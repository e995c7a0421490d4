// TrainingJob manifests: what is accepted, the defaults, and a table of invalid ones
// whose errors must name the field.
#include "mlscale/api/training_job.h"

#include <gtest/gtest.h>

namespace mlscale::api {
namespace {

const std::string kHeader = "apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: digits\n";

TEST(ParseTrainingJob, ReadsEveryField) {
  auto job = ParseTrainingJob(kHeader +
                                  "  namespace: ml\n  uid: 1234\n  labels: {team: a}\n"
                                  "spec:\n  replicas: 4\n  launcher: mpi\n  backend: cpu\n"
                                  "  image: registry.example/trainer:1\n  resources: {limits: {cpu: 2}}\n"
                                  "  template: {metadata: {labels: {a: b}}}\n"
                                  "  trainer:\n    dataset: {name: digits}\n    epochs: 20\n"
                                  "status: {phase: Running}\n",
                              nullptr);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->name, "digits");
  EXPECT_EQ(job->namespace_, "ml");
  EXPECT_EQ(job->spec.replicas, 4);
  EXPECT_EQ(job->spec.launcher, LauncherKind::kMpi);
  EXPECT_EQ(job->spec.backend, Backend::kCpu);
  EXPECT_EQ(job->spec.trainer, nlohmann::json::parse(R"({"dataset": {"name": "digits"}, "epochs": 20})"));
  EXPECT_EQ(job->spec.image, "registry.example/trainer:1");
  EXPECT_EQ(job->spec.resources["limits"]["cpu"], 2);
  EXPECT_EQ(job->spec.ClusterOnlyFields(), (std::vector<std::string>{"image", "resources", "template"}));
}

TEST(ParseTrainingJob, DefaultsToOneRendezvousWorkerOnAnyBackend) {
  auto job = ParseTrainingJob(kHeader + "spec: {}\n", nullptr);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->spec.replicas, 1);
  EXPECT_EQ(job->spec.launcher, LauncherKind::kRendezvous);
  EXPECT_EQ(job->spec.backend, Backend::kAuto);
  EXPECT_TRUE(job->spec.trainer.is_object() && job->spec.trainer.empty());
  EXPECT_TRUE(job->spec.ClusterOnlyFields().empty());
}

TEST(ParseTrainingJob, RejectsInvalidManifestsNamingTheField) {
  struct Case {
    std::string manifest;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"- a list\n", "the manifest must be an object"},
      {"kind: TrainingJob\nmetadata: {name: a}\nspec: {}\n", "apiVersion: required"},
      {"apiVersion: mlscale.io/v1\nkind: TrainingJob\nmetadata: {name: a}\nspec: {}\n",
       "apiVersion: must be \"mlscale.io/v1alpha1\" (got \"mlscale.io/v1\")"},
      {"apiVersion: mlscale.io/v1alpha1\nkind: Job\nmetadata: {name: a}\nspec: {}\n",
       "kind: must be \"TrainingJob\" (got \"Job\")"},
      {"apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nspec: {}\n", "metadata.name: required"},
      {"apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata: {name: Digits}\nspec: {}\n",
       "metadata.name: \"Digits\" is not a valid name: only lower-case letters"},
      {"apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata: {name: -a}\nspec: {}\n",
       "metadata.name: \"-a\" is not a valid name: must start and end with a letter or digit"},
      {"apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata: {name: " + std::string(64, 'a') + "}\nspec: {}\n",
       "at most 63 characters"},
      {"apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata: {name: 7}\nspec: {}\n",
       "metadata.name: must be a string (got integer)"},
      {"apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata: {name: a}\n", "spec: required"},
      {kHeader + "spec: [1]\n", "spec: must be an object (got array)"},
      {kHeader + "spec:\n  replicas: 0\n", "spec.replicas: must be between 1 and 4096 (got 0)"},
      {kHeader + "spec:\n  replicas: 5000\n", "spec.replicas: must be between 1 and 4096 (got 5000)"},
      {kHeader + "spec:\n  replicas: 2.5\n", "spec.replicas: must be an integer (got number 2.5)"},
      {kHeader + "spec:\n  replicas: \"4\"\n", "spec.replicas: must be an integer (got string \"4\")"},
      {kHeader + "spec:\n  replicas: 99999999999999999999\n", "spec.replicas: must be an integer"},
      {kHeader + "spec:\n  launcher: ssh\n", "spec.launcher: must be one of \"rendezvous\", \"mpi\" (got \"ssh\")"},
      {kHeader + "spec:\n  backend: tpu\n", "spec.backend: must be one of \"auto\", \"cpu\", \"gpu\" (got \"tpu\")"},
      {kHeader + "spec:\n  trainer: [1]\n", "spec.trainer: must be an object (got array)"},
      {kHeader + "spec:\n  replica: 4\n", "spec.replica: unknown field"},
      {kHeader + "spec:\n  image: 5\n", "spec.image: must be a string"},
      {kHeader + "spec:\n  resources: 2\n", "spec.resources: must be an object"},
      {kHeader + "spec: {}\nextra: 1\n", "extra: unknown field"},
      {kHeader + "spec: {\n", "invalid YAML at line"},
  };
  for (const auto& c : cases) {
    auto job = ParseTrainingJob(c.manifest, nullptr);
    ASSERT_FALSE(job.ok()) << c.manifest;
    EXPECT_EQ(job.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(job.status().message().find(c.error), std::string::npos)
        << "expected '" << c.error << "', got: " << job.status().message();
  }
}

TEST(ParseTrainingJob, LetsTheTrainerValidateItsSection) {
  auto reject_epochs = [](const nlohmann::json& trainer) -> Status {
    if (trainer.contains("epochs")) return InvalidArgument("trainer.epochs: must be > 0");
    if (trainer.contains("odd")) return InvalidArgument("odd values");
    return Status::Ok();
  };
  auto named = ParseTrainingJob(kHeader + "spec:\n  trainer: {epochs: 0}\n", reject_epochs);
  ASSERT_FALSE(named.ok());
  EXPECT_EQ(named.status().message(), "spec.trainer.epochs: must be > 0");
  auto unnamed = ParseTrainingJob(kHeader + "spec:\n  trainer: {odd: 1}\n", reject_epochs);
  ASSERT_FALSE(unnamed.ok());
  EXPECT_EQ(unnamed.status().message(), "spec.trainer: odd values");
  EXPECT_TRUE(ParseTrainingJob(kHeader + "spec:\n  trainer: {}\n", reject_epochs).ok());
}

}  // namespace
}  // namespace mlscale::api
