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
                                  "  template: {labels: {a: b}}\n"
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
  EXPECT_EQ(job->spec.WorkerImage(), "registry.example/trainer:1");
  EXPECT_EQ(job->spec.resources.limits.at("cpu"), "2");
  EXPECT_EQ(job->spec.pod_template.labels.at("a"), "b");
  EXPECT_EQ(job->spec.ClusterOnlyFields(), (std::vector<std::string>{"image", "resources", "template"}));
}

TEST(ParseTrainingJob, ReadsTheClusterFields) {
  auto job = ParseTrainingJob(kHeader + R"(spec:
  replicas: 2
  container:
    image: pytorch/pytorch:2
    command: [torchrun]
    args: [--nproc-per-node=1, train.py]
    workingDir: /workspace
  resources:
    limits: {cpu: 2, memory: 4Gi, nvidia.com/gpu: 1}
    requests: {cpu: 500m}
  template:
    labels: {team: vision}
    annotations: {note: "any text: at all"}
    nodeSelector: {pool: gpu}
    affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: []}}}
    tolerations:
    - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
    - {operator: Exists}
    volumes:
    - {name: ckpt, persistentVolumeClaim: {claimName: ckpt}}
    - {name: data, hostPath: {path: /data}}
    volumeMounts:
    - {name: data, mountPath: /data, readOnly: true}
    env:
    - {name: NCCL_DEBUG, value: INFO}
    - {name: TOKEN, valueFrom: {secretKeyRef: {name: s, key: k}}}
    serviceAccountName: trainer
    priorityClassName: high
    schedulerName: volcano
  runPolicy: {backoffLimit: 5, activeDeadlineSeconds: 3600, ttlSecondsAfterFinished: 60, suspend: true, cleanPodPolicy: All}
  failurePolicy:
    rules:
    - {exitCodes: [3, 4], action: Retry}
    - {exitCodes: [137], action: Fail}
  gang: {timeoutSeconds: 120, queueName: team-a}
  checkpoint: {volume: ckpt, path: /ckpt, intervalSteps: 50}
  output: {volume: ckpt, path: /model}
)",
                              nullptr);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const TrainingJobSpec& spec = job->spec;
  ASSERT_TRUE(spec.container.has_value());
  EXPECT_EQ(spec.container->image, "pytorch/pytorch:2");
  EXPECT_EQ(spec.WorkerImage(), "pytorch/pytorch:2");
  EXPECT_EQ(spec.container->command, std::vector<std::string>{"torchrun"});
  EXPECT_EQ(spec.container->args, (std::vector<std::string>{"--nproc-per-node=1", "train.py"}));
  EXPECT_EQ(spec.container->working_dir, "/workspace");
  EXPECT_EQ(spec.resources.limits.at("memory"), "4Gi");
  EXPECT_EQ(spec.resources.requests.at("cpu"), "500m");
  EXPECT_EQ(spec.resources.Gpus(), 1);
  EXPECT_EQ(spec.pod_template.node_selector.at("pool"), "gpu");
  EXPECT_EQ(spec.pod_template.annotations.at("note"), "any text: at all");
  EXPECT_TRUE(spec.pod_template.affinity.contains("nodeAffinity"));
  EXPECT_EQ(spec.pod_template.tolerations.size(), 2u);
  EXPECT_EQ(spec.pod_template.volumes[0]["persistentVolumeClaim"]["claimName"], "ckpt");
  EXPECT_EQ(spec.pod_template.volume_mounts[0]["mountPath"], "/data");
  EXPECT_EQ(spec.pod_template.env[1]["valueFrom"]["secretKeyRef"]["key"], "k");
  EXPECT_EQ(spec.pod_template.service_account_name, "trainer");
  EXPECT_EQ(spec.pod_template.priority_class_name, "high");
  EXPECT_EQ(spec.pod_template.scheduler_name, "volcano");
  EXPECT_EQ(spec.run_policy.backoff_limit, 5);
  EXPECT_EQ(spec.run_policy.active_deadline_seconds, 3600);
  EXPECT_EQ(spec.run_policy.ttl_seconds_after_finished, 60);
  EXPECT_TRUE(spec.run_policy.suspend);
  EXPECT_EQ(spec.run_policy.clean_pod_policy, CleanPodPolicy::kAll);
  EXPECT_EQ(spec.failure_policy.Classify(3), FailureAction::kRetry);
  EXPECT_EQ(spec.failure_policy.Classify(137), FailureAction::kFail);  // the user's rule first
  EXPECT_EQ(spec.failure_policy.Classify(143), FailureAction::kRetry);
  EXPECT_EQ(spec.failure_policy.Classify(1), FailureAction::kFail);
  EXPECT_EQ(spec.gang.timeout_seconds, 120);
  EXPECT_EQ(spec.gang.queue_name, "team-a");
  EXPECT_EQ(spec.checkpoint.location.volume, "ckpt");
  EXPECT_EQ(spec.checkpoint.location.path, "/ckpt");
  EXPECT_EQ(spec.checkpoint.interval_steps, 50);
  EXPECT_EQ(spec.output.location.path, "/model");
  EXPECT_EQ(spec.ClusterOnlyFields(),
            (std::vector<std::string>{"container", "resources", "template", "runPolicy", "failurePolicy", "gang",
                                      "checkpoint", "output"}));
}

TEST(ParseTrainingJob, DefaultsOfTheClusterFields) {
  auto job = ParseTrainingJob(kHeader + "spec: {runPolicy: {}, gang: {}, checkpoint: {}, output: {}}\n", nullptr);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const TrainingJobSpec& spec = job->spec;
  EXPECT_EQ(spec.WorkerImage(), kDefaultWorkerImage);
  EXPECT_FALSE(spec.container.has_value());
  EXPECT_EQ(spec.resources.Gpus(), 0);
  EXPECT_TRUE(spec.pod_template.Empty());
  EXPECT_EQ(spec.run_policy.backoff_limit, 3);
  EXPECT_FALSE(spec.run_policy.active_deadline_seconds.has_value());
  EXPECT_FALSE(spec.run_policy.ttl_seconds_after_finished.has_value());
  EXPECT_FALSE(spec.run_policy.suspend);
  EXPECT_EQ(spec.run_policy.clean_pod_policy, CleanPodPolicy::kRunning);
  EXPECT_EQ(spec.gang.timeout_seconds, 300);
  EXPECT_EQ(spec.gang.queue_name, "");
  EXPECT_EQ(spec.checkpoint.location.volume, "");
  EXPECT_EQ(spec.checkpoint.location.path, kDefaultCheckpointPath);
  EXPECT_FALSE(spec.checkpoint.interval_steps.has_value());
  EXPECT_EQ(spec.output.location.path, kDefaultOutputPath);
}

TEST(FailurePolicy, DefaultsAsAPyTorchUserExpects) {
  FailurePolicy defaults;
  for (int code : {137, 143, 129, 130, 134, 139, 255}) EXPECT_EQ(defaults.Classify(code), FailureAction::kRetry) << code;
  for (int code : {1, 2, 126, 127, 3, 127}) EXPECT_EQ(defaults.Classify(code), FailureAction::kFail) << code;
}

TEST(ParseTrainingJob, TakesNullAsAbsentEverywhere) {
  auto job = ParseTrainingJob(kHeader +
                                  "spec:\n  replicas: null\n  image: ~\n  runPolicy: {backoffLimit: null}\n"
                                  "  trainer:\n    epochs: null\n    optimizer: {name: sgd, momentum: null}\n"
                                  "    dataset: {name: null, path: data.csv}\n",
                              [](const nlohmann::json& trainer) -> Status {
                                // The validator sees the trainer without the nulls.
                                if (trainer.dump().find("null") != std::string::npos) return InvalidArgument("a null");
                                return Status::Ok();
                              });
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->spec.replicas, 1);
  EXPECT_EQ(job->spec.image, kDefaultWorkerImage);
  EXPECT_EQ(job->spec.run_policy.backoff_limit, 3);
  EXPECT_EQ(job->spec.trainer, nlohmann::json::parse(R"({"optimizer": {"name": "sgd"}, "dataset": {"path": "data.csv"}})"));
  EXPECT_EQ(job->spec.ClusterOnlyFields(), (std::vector<std::string>{"runPolicy"}));
  // Nulls inside lists are values, and wrong ones.
  auto in_list = ParseTrainingJob(kHeader + "spec:\n  container: {image: x, args: [a, null]}\n", nullptr);
  ASSERT_FALSE(in_list.ok());
  EXPECT_EQ(in_list.status().message(), "spec.container.args[1]: must be a string (got null)");
}

TEST(ParseTrainingJob, ChecksTheBatchSizeAgainstTheWorkersAtOnce) {
  auto too_small = ParseTrainingJob(kHeader + "spec:\n  replicas: 8\n  trainer: {batchSize: 4}\n", nullptr);
  ASSERT_FALSE(too_small.ok());
  EXPECT_EQ(too_small.status().message(),
            "spec.trainer.batchSize: the global batch size (4) must be at least spec.replicas (8): every worker "
            "needs at least one sample per step");
  auto defaulted = ParseTrainingJob(kHeader + "spec:\n  replicas: 65\n", nullptr);
  ASSERT_FALSE(defaulted.ok());
  EXPECT_NE(defaulted.status().message().find("(64) must be at least spec.replicas (65)"), std::string::npos);
  EXPECT_TRUE(ParseTrainingJob(kHeader + "spec:\n  replicas: 8\n  trainer: {batchSize: 8}\n", nullptr).ok());
  // A user container has its own batch size.
  EXPECT_TRUE(ParseTrainingJob(kHeader + "spec:\n  replicas: 100\n  container: {image: x}\n", nullptr).ok());
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
      {kHeader + "spec:\n  image: \"\"\n", "spec.image: must not be empty"},
      {kHeader + "spec:\n  image: " + std::string(2000, 'i') + "\n", "spec.image: at most 1024 bytes"},
      {kHeader + "spec:\n  container: {}\n", "spec.container.image: required"},
      {kHeader + "spec:\n  container: {image: x, command: torchrun}\n", "spec.container.command: must be a list"},
      {kHeader + "spec:\n  container: {image: x, workingDir: rel}\n", "spec.container.workingDir: must be an absolute path"},
      {kHeader + "spec:\n  container: {image: x, ports: []}\n", "spec.container.ports: unknown field"},
      {kHeader + "spec:\n  image: x\n  container: {image: other}\n", "spec.container: give image or container, not both"},
      {kHeader + "spec:\n  trainer: {}\n  container: {image: other}\n", "spec.trainer: only for our worker image"},
      {kHeader + "spec:\n  resources: {limits: {cpu: 2x}}\n", "spec.resources.limits[\"cpu\"]: \"2x\" is not a quantity"},
      {kHeader + "spec:\n  resources: {limits: {cpu: 0.5}}\n", "spec.resources.limits[\"cpu\"]: must be a quantity"},
      {kHeader + "spec:\n  resources: {limits: {nvidia.com/gpu: \"1.5\"}}\n",
       "spec.resources.limits[\"nvidia.com/gpu\"]: must be a whole number of GPUs"},
      {kHeader + "spec:\n  resources: {limit: {}}\n", "spec.resources.limit: unknown field"},
      {kHeader + "spec:\n  template: {spec: {}}\n", "spec.template.spec: unknown field"},
      {kHeader + "spec:\n  template: {labels: {a: 1}}\n", "spec.template.labels.a: must be a string"},
      {kHeader + "spec:\n  template: {labels: {a: \"-x\"}}\n", "spec.template.labels[\"a\"]: \"-x\" is not a valid label value"},
      {kHeader + "spec:\n  template: {nodeSelector: {a: \"x y\"}}\n", "spec.template.nodeSelector[\"a\"]"},
      {kHeader + "spec:\n  template: {affinity: []}\n", "spec.template.affinity: must be an object"},
      {kHeader + "spec:\n  template: {tolerations: [{operator: Maybe}]}\n", "spec.template.tolerations[0].operator: must be one of"},
      {kHeader + "spec:\n  template: {tolerations: [{key: a, effect: Never}]}\n", "spec.template.tolerations[0].effect: must be one of"},
      {kHeader + "spec:\n  template: {tolerations: [{value: a}]}\n", "spec.template.tolerations[0].operator: must be Exists when key is empty"},
      {kHeader + "spec:\n  template: {tolerations: [{key: a, operator: Exists, value: b}]}\n",
       "spec.template.tolerations[0].value: must be empty when operator is Exists"},
      {kHeader + "spec:\n  template: {volumes: [{hostPath: {path: /x}}]}\n", "spec.template.volumes[0].name: required"},
      {kHeader + "spec:\n  template: {volumes: [{name: a}, {name: a}]}\n", "spec.template.volumes[1].name: duplicate name \"a\""},
      {kHeader + "spec:\n  template: {volumes: [{name: A_b}]}\n", "spec.template.volumes[0].name: \"A_b\" is not a valid name"},
      {kHeader + "spec:\n  template: {volumeMounts: [{name: a, mountPath: x}]}\n", "spec.template.volumeMounts[0].mountPath: must be an absolute path"},
      {kHeader + "spec:\n  template: {volumeMounts: [{name: a, mountPath: /x}]}\n",
       "spec.template.volumeMounts[0].name: \"a\" is not a volume of spec.template.volumes"},
      {kHeader + "spec:\n  template: {env: [{name: RANK, value: \"3\"}]}\n", "spec.template.env[0].name: \"RANK\" is set by the controller"},
      {kHeader + "spec:\n  template: {env: [{name: \"1A\"}]}\n", "spec.template.env[0].name: \"1A\" is not a valid variable name"},
      {kHeader + "spec:\n  template: {env: [{name: A, value: x, valueFrom: {}}]}\n", "spec.template.env[0].valueFrom: give value or valueFrom"},
      {kHeader + "spec:\n  template: {env: [{name: A, value: 1}]}\n", "spec.template.env[0].value: must be a string"},
      {kHeader + "spec:\n  template: {serviceAccountName: Bad_Name}\n", "spec.template.serviceAccountName: \"Bad_Name\" is not a valid name"},
      {kHeader + "spec:\n  runPolicy: {backoffLimit: -1}\n", "spec.runPolicy.backoffLimit: must be between 0 and 1000"},
      {kHeader + "spec:\n  runPolicy: {activeDeadlineSeconds: 0}\n", "spec.runPolicy.activeDeadlineSeconds: must be between 1"},
      {kHeader + "spec:\n  runPolicy: {ttlSecondsAfterFinished: -5}\n", "spec.runPolicy.ttlSecondsAfterFinished: must be between 0"},
      {kHeader + "spec:\n  runPolicy: {suspend: \"yes\"}\n", "spec.runPolicy.suspend: must be true or false (got string \"yes\")"},
      {kHeader + "spec:\n  runPolicy: {cleanPodPolicy: running}\n",
       "spec.runPolicy.cleanPodPolicy: must be one of \"None\", \"Running\", \"All\" (got \"running\")"},
      {kHeader + "spec:\n  failurePolicy: {rules: [{exitCodes: [3]}]}\n", "spec.failurePolicy.rules[0].action: required"},
      {kHeader + "spec:\n  failurePolicy: {rules: [{action: Retry}]}\n", "spec.failurePolicy.rules[0].exitCodes: required"},
      {kHeader + "spec:\n  failurePolicy: {rules: [{action: Retry, exitCodes: [0]}]}\n",
       "spec.failurePolicy.rules[0].exitCodes[0]: must be an exit code between 1 and 255 (got 0)"},
      {kHeader + "spec:\n  failurePolicy: {rules: [{action: Retry, exitCodes: [3, 3]}]}\n",
       "spec.failurePolicy.rules[0].exitCodes[1]: duplicate exit code 3"},
      {kHeader + "spec:\n  failurePolicy: {rules: [{action: Ignore, exitCodes: [3]}]}\n", "spec.failurePolicy.rules[0].action: must be one of"},
      {kHeader + "spec:\n  gang: {timeoutSeconds: 0}\n", "spec.gang.timeoutSeconds: must be between 1 and 86400"},
      {kHeader + "spec:\n  gang: {queueName: \"a b\"}\n", "spec.gang.queueName: \"a b\" is not a valid label value"},
      {kHeader + "spec:\n  checkpoint: {path: relative}\n", "spec.checkpoint.path: must be an absolute path"},
      {kHeader + "spec:\n  checkpoint: {volume: ckpt}\n", "spec.checkpoint.volume: \"ckpt\" is not a volume of spec.template.volumes"},
      {kHeader + "spec:\n  checkpoint: {intervalSteps: -1}\n", "spec.checkpoint.intervalSteps: must be between 0"},
      {kHeader + "spec:\n  output: {volume: out}\n", "spec.output.volume: \"out\" is not a volume of spec.template.volumes"},
      {kHeader + "spec:\n  output: {intervalSteps: 3}\n", "spec.output.intervalSteps: unknown field"},
  };
  for (const auto& c : cases) {
    auto job = ParseTrainingJob(c.manifest, nullptr);
    ASSERT_FALSE(job.ok()) << c.manifest;
    EXPECT_EQ(job.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(job.status().message().find(c.error), std::string::npos)
        << "expected '" << c.error << "', got: " << job.status().message();
    EXPECT_LT(job.status().message().size(), 400u) << job.status().message();
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
