// The desired children of a TrainingJob (children.h): pure, so checked field by field.
#include "mlscale/controllers/trainingjob/children.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "mlscale/api/training_job.h"
#include "mlscale/worker/config.h"

namespace mlscale::controllers::trainingjob {
namespace {

JobRef Job(const std::string& spec_extra = "", const std::string& name = "digits", bool trainer = true) {
  std::string yaml = "apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata: {name: " + name +
                     ", namespace: team-a}\nspec:\n  replicas: 4\n  backend: cpu\n" +
                     (trainer ? "  trainer: {epochs: 2, batchSize: 64}\n" : "") + spec_extra;
  StatusOr<api::TrainingJob> job = api::ParseTrainingJob(yaml, nullptr);
  EXPECT_TRUE(job.ok()) << job.status().ToString();
  return JobRef{job.ok() ? *job : api::TrainingJob{}, "uid-1234"};
}

std::map<std::string, Object> EnvByName(const Object& container) {
  std::map<std::string, Object> env;
  for (const Object& variable : container["env"]) env[variable["name"].get<std::string>()] = variable;
  return env;
}

void ExpectOwnedBy(const Object& child) {
  ASSERT_EQ(child["metadata"]["ownerReferences"].size(), 1u) << child.dump();
  const Object& owner = child["metadata"]["ownerReferences"][0];
  EXPECT_EQ(owner["kind"], "TrainingJob");
  EXPECT_EQ(owner["apiVersion"], "mlscale.io/v1alpha1");
  EXPECT_EQ(owner["name"], "digits");
  EXPECT_EQ(owner["uid"], "uid-1234");
  EXPECT_EQ(owner["controller"], true);
  EXPECT_EQ(child["metadata"]["namespace"], "team-a");
  EXPECT_EQ(child["metadata"]["labels"][kJobNameLabel], "digits");
  EXPECT_EQ(child["metadata"]["labels"][kManagedByLabel], kManagedByValue);
}

TEST(ChildrenTest, NamesAreDeterministicDnsLabels) {
  JobRef job = Job();
  EXPECT_EQ(ServiceName(job), "digits-worker");
  EXPECT_EQ(PodName(job, 3), "digits-worker-3");
  EXPECT_EQ(TokenSecretName(job), "digits-token");
  EXPECT_EQ(TrainerConfigMapName(job), "digits-trainer");
  EXPECT_EQ(HostfileConfigMapName(job), "digits-hostfile");
  EXPECT_EQ(SshSecretName(job), "digits-ssh");
  // A long job name still gives distinct names of at most 63 characters, rank kept.
  JobRef long_job = Job("", std::string(60, 'a'));
  std::set<std::string> names;
  for (int rank = 0; rank < 20; ++rank) {
    const std::string name = PodName(long_job, rank);
    EXPECT_LE(name.size(), 63u);
    EXPECT_TRUE(name.ends_with("-worker-" + std::to_string(rank))) << name;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), 20u);
  EXPECT_EQ(PodName(long_job, 7), PodName(long_job, 7));
}

TEST(ChildrenTest, HeadlessServiceSelectsTheJobsPods) {
  Object service = BuildService(Job());
  ExpectOwnedBy(service);
  EXPECT_EQ(service["metadata"]["name"], "digits-worker");
  EXPECT_EQ(service["spec"]["clusterIP"], "None");
  EXPECT_EQ(service["spec"]["publishNotReadyAddresses"], true);
  EXPECT_EQ(service["spec"]["selector"], (Object{{kJobNameLabel, "digits"}}));
}

TEST(ChildrenTest, ASingleWorkerHasNoServiceAndItsOwnMasterAddress) {
  JobRef job = Job();
  EXPECT_TRUE(NeedsService(job.job.spec));
  job.job.spec.replicas = 1;
  EXPECT_FALSE(NeedsService(job.job.spec));
  Object pod = BuildWorkerPod(job, 0, ChildOptions{});
  EXPECT_EQ(pod["spec"]["hostname"], "digits-worker-0");
  EXPECT_FALSE(pod["spec"].contains("subdomain")) << "no Service makes the subdomain resolvable";
  std::map<std::string, Object> env = EnvByName(pod["spec"]["containers"][0]);
  EXPECT_EQ(env["MASTER_ADDR"]["value"], "localhost");
  EXPECT_EQ(env["PET_MASTER_ADDR"]["value"], "localhost");
  EXPECT_EQ(env["WORLD_SIZE"]["value"], "1");
}

TEST(ChildrenTest, WorkerPodHasTheTorchrunEnvironmentAndIdentity) {
  JobRef job = Job();
  Object pod = BuildWorkerPod(job, 2, ChildOptions{});
  ExpectOwnedBy(pod);
  EXPECT_EQ(pod["metadata"]["name"], "digits-worker-2");
  EXPECT_EQ(pod["metadata"]["labels"][kReplicaIndexLabel], "2");
  EXPECT_EQ(pod["spec"]["hostname"], "digits-worker-2");
  EXPECT_EQ(pod["spec"]["subdomain"], "digits-worker");
  EXPECT_EQ(pod["spec"]["restartPolicy"], "Never");
  EXPECT_EQ(pod["spec"]["automountServiceAccountToken"], false);
  ASSERT_EQ(pod["spec"]["containers"].size(), 1u);
  const Object& container = pod["spec"]["containers"][0];
  EXPECT_EQ(container["name"], "worker");
  EXPECT_EQ(container["image"], std::string(api::kDefaultWorkerImage));
  EXPECT_FALSE(container.contains("command"));  // the image's entrypoint: mlscale-launch
  EXPECT_EQ(container["args"], (Object{"--bind-address", "$(MLSCALE_ADVERTISE_ADDRESS)", "--", "mlscale-train", "--config", "/etc/mlscale/trainer/trainer.json", "--checkpoint-dir",
                                       "/var/lib/mlscale/checkpoints", "--output-dir", "/var/lib/mlscale/model",
                                       "--backend", "cpu"}));
  std::map<std::string, Object> env = EnvByName(container);
  const std::map<std::string, std::string> expected = {
      {"WORLD_SIZE", "4"}, {"RANK", "2"}, {"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "1"}, {"GROUP_RANK", "2"},
      {"MASTER_ADDR", "digits-worker-0.digits-worker"}, {"MASTER_PORT", "29500"}, {"PET_NNODES", "4"},
      {"PET_NPROC_PER_NODE", "1"}, {"PET_NODE_RANK", "2"}, {"PET_MASTER_ADDR", "digits-worker-0.digits-worker"},
      {"PET_MASTER_PORT", "29500"}, {"MLSCALE_RUN_ID", "uid-1234"}, {"MLSCALE_PROGRESS_PORT", "29501"}};
  for (const auto& [name, value] : expected) EXPECT_EQ(env[name]["value"], value) << name;
  EXPECT_EQ(env["MLSCALE_ADVERTISE_ADDRESS"]["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP");
  EXPECT_EQ(env["MLSCALE_RUN_TOKEN"]["valueFrom"]["secretKeyRef"],
            (Object{{"name", "digits-token"}, {"key", "token"}}));
  // The trainer config is mounted from the ConfigMap; checkpoints and model get volumes.
  std::map<std::string, std::string> mounts;
  for (const Object& mount : container["volumeMounts"]) mounts[mount["mountPath"]] = mount["name"];
  EXPECT_EQ(mounts["/etc/mlscale/trainer"], "trainer-config");
  EXPECT_EQ(mounts["/var/lib/mlscale/checkpoints"], "checkpoints");
  EXPECT_EQ(mounts["/var/lib/mlscale/model"], "model");
  std::map<std::string, Object> volumes;
  for (const Object& volume : pod["spec"]["volumes"]) volumes[volume["name"]] = volume;
  EXPECT_EQ(volumes["trainer-config"]["configMap"]["name"], "digits-trainer");
  EXPECT_TRUE(volumes["checkpoints"].contains("emptyDir"));
  // Only rank 0 declares the rendezvous and progress ports.
  EXPECT_FALSE(container.contains("ports"));
  EXPECT_EQ(BuildWorkerPod(job, 0, ChildOptions{})["spec"]["containers"][0]["ports"].size(), 2u);
}

TEST(ChildrenTest, TemplateOverlayResourcesAndCheckpointVolume) {
  JobRef job = Job(R"(  resources: {limits: {nvidia.com/gpu: 1, cpu: "2"}}
  template:
    labels: {team: vision, mlscale.io/job-name: spoofed}
    annotations: {note: x}
    nodeSelector: {pool: gpu}
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
    volumes: [{name: shared, hostPath: {path: /data/ckpt}}]
    volumeMounts: [{name: shared, mountPath: /data}]
    env: [{name: NCCL_DEBUG, value: INFO}]
    serviceAccountName: trainer
    priorityClassName: high
    schedulerName: volcano
  gang: {queueName: team-a-queue}
  checkpoint: {volume: shared, path: /data/ckpt, intervalSteps: 50}
)");
  Object pod = BuildWorkerPod(job, 1, ChildOptions{});
  const Object& container = pod["spec"]["containers"][0];
  EXPECT_EQ(pod["metadata"]["labels"]["team"], "vision");
  EXPECT_EQ(pod["metadata"]["labels"][kJobNameLabel], "digits");  // ours win
  EXPECT_EQ(pod["metadata"]["labels"][std::string(api::kKueueQueueLabel)], "team-a-queue");
  EXPECT_EQ(pod["metadata"]["annotations"]["note"], "x");
  EXPECT_EQ(pod["spec"]["nodeSelector"]["pool"], "gpu");
  EXPECT_EQ(pod["spec"]["tolerations"].size(), 1u);
  EXPECT_EQ(pod["spec"]["serviceAccountName"], "trainer");
  EXPECT_EQ(pod["spec"]["priorityClassName"], "high");
  EXPECT_EQ(pod["spec"]["schedulerName"], "volcano");
  EXPECT_EQ(container["resources"]["limits"]["nvidia.com/gpu"], "1");
  std::map<std::string, Object> env = EnvByName(container);
  EXPECT_EQ(env["NCCL_DEBUG"]["value"], "INFO");
  EXPECT_EQ(env["RANK"]["value"], "1");
  std::map<std::string, std::string> mounts;
  for (const Object& mount : container["volumeMounts"]) mounts[mount["mountPath"]] = mount["name"];
  EXPECT_EQ(mounts["/data"], "shared");
  EXPECT_EQ(mounts["/data/ckpt"], "shared");
  EXPECT_EQ(container["args"][7], "/data/ckpt");
  for (const Object& volume : pod["spec"]["volumes"]) EXPECT_NE(volume["name"], "checkpoints");  // no emptyDir
  // The interval reaches the trainer through its config.
  Object config = BuildTrainerConfigMap(job);
  ExpectOwnedBy(config);
  Object trainer = Object::parse(config["data"]["trainer.json"].get<std::string>());
  EXPECT_EQ(trainer["checkpoint"]["everySteps"], 50);
  EXPECT_EQ(trainer["epochs"], 2);
}

TEST(ChildrenTest, UserContainerRunsItsOwnCommand) {
  JobRef job = Job(R"(  container: {image: "pytorch/ddp:1", command: [python3, train.py], args: [--epochs, "2"], workingDir: /app}
)", "digits", /*trainer=*/false);
  Object pod = BuildWorkerPod(job, 0, ChildOptions{});
  const Object& container = pod["spec"]["containers"][0];
  EXPECT_EQ(container["image"], "pytorch/ddp:1");
  EXPECT_EQ(container["command"], (Object{"python3", "train.py"}));
  EXPECT_EQ(container["args"], (Object{"--epochs", "2"}));
  EXPECT_EQ(container["workingDir"], "/app");
  EXPECT_EQ(EnvByName(container)["WORLD_SIZE"]["value"], "4");
  for (const Object& volume : pod["spec"]["volumes"]) EXPECT_NE(volume["name"], "trainer-config");  // no trainer
}

TEST(ChildrenTest, MpiModeMountsTheHostfile) {
  JobRef job = Job("  launcher: mpi\n");
  ChildOptions options;
  options.trainer_command = "/opt/mlscale/bin/mlscale-train";
  Object pod = BuildWorkerPod(job, 0, options);
  const Object& args = pod["spec"]["containers"][0]["args"];
  EXPECT_EQ(args[0], "--mode");
  EXPECT_EQ(args[1], "mpi");
  EXPECT_EQ(args[3], "/etc/mlscale/mpi/hostfile");
  EXPECT_EQ(args[4], "--ssh-port");
  EXPECT_EQ(args[5], "2222");
  EXPECT_EQ(args[6], "--np");
  EXPECT_EQ(args[7], "4");
  EXPECT_EQ(args[9], "/opt/mlscale/bin/mlscale-train");
  EXPECT_EQ(std::find(args.begin(), args.end(), "--bind-address"), args.end());
  Object hostfile = BuildHostfileConfigMap(job);
  ExpectOwnedBy(hostfile);
  EXPECT_EQ(hostfile["data"]["hostfile"],
            "localhost slots=1\ndigits-worker-1.digits-worker.team-a.svc slots=1\n"
            "digits-worker-2.digits-worker.team-a.svc slots=1\ndigits-worker-3.digits-worker.team-a.svc slots=1\n");
  // The other ranks run sshd for the launcher, with the job's key mounted.
  Object worker = BuildWorkerPod(job, 2, ChildOptions{});
  EXPECT_EQ(worker["spec"]["containers"][0]["args"], (Object{"--mode", "mpi-worker", "--ssh-port", "2222"}));
  EXPECT_EQ(worker["spec"]["containers"][0]["readinessProbe"]["tcpSocket"]["port"], 2222);
  EXPECT_EQ(EnvByName(pod["spec"]["containers"][0])["OMPI_MCA_orte_keep_fqdn_hostnames"]["value"], "true");
  bool ssh_mounted = false;
  for (const Object& mount : worker["spec"]["containers"][0]["volumeMounts"]) ssh_mounted |= mount["mountPath"] == kSshDir;
  EXPECT_TRUE(ssh_mounted);
  StatusOr<std::string> key = NewSshPrivateKey();
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(key->starts_with("-----BEGIN PRIVATE KEY-----")) << *key;
  Object secret = BuildSshSecret(job, *key);
  ExpectOwnedBy(secret);
  EXPECT_EQ(secret["type"], "kubernetes.io/ssh-auth");
  EXPECT_EQ(secret["stringData"]["ssh-privatekey"], *key);
}

TEST(ChildrenTest, CoschedulingPodGroupAndItsPodLabel) {
  JobRef job = Job("  gang: {timeoutSeconds: 120}\n");
  Object group = BuildPodGroup(job, GangFlavour::kCoscheduling);
  ExpectOwnedBy(group);
  EXPECT_EQ(group["apiVersion"], "scheduling.x-k8s.io/v1alpha1");
  EXPECT_EQ(group["kind"], "PodGroup");
  EXPECT_EQ(group["metadata"]["name"], "digits");
  EXPECT_EQ(group["spec"]["minMember"], 4);
  EXPECT_EQ(group["spec"]["scheduleTimeoutSeconds"], 120);
  ChildOptions options;
  options.gang = {GangFlavour::kCoscheduling, "scheduler-plugins-scheduler"};
  Object pod = BuildWorkerPod(job, 1, options);
  EXPECT_EQ(pod["metadata"]["labels"][kPodGroupLabel], "digits");
  EXPECT_FALSE(pod["metadata"].contains("annotations"));
  EXPECT_EQ(pod["spec"]["schedulerName"], "scheduler-plugins-scheduler");
  // Without gang scheduling: neither.
  Object plain = BuildWorkerPod(job, 1, ChildOptions{});
  EXPECT_FALSE(plain["metadata"]["labels"].contains(kPodGroupLabel));
  EXPECT_FALSE(plain["spec"].contains("schedulerName"));
  // The template's scheduler wins.
  JobRef named = Job("  template: {schedulerName: my-scheduler}\n");
  EXPECT_EQ(BuildWorkerPod(named, 0, options)["spec"]["schedulerName"], "my-scheduler");
}

TEST(ChildrenTest, VolcanoPodGroupAndItsPodAnnotation) {
  JobRef job = Job("  gang: {timeoutSeconds: 120}\n  template: {annotations: {team: vision}}\n");
  Object group = BuildPodGroup(job, GangFlavour::kVolcano);
  ExpectOwnedBy(group);
  EXPECT_EQ(group["apiVersion"], "scheduling.volcano.sh/v1beta1");
  EXPECT_EQ(group["kind"], "PodGroup");
  EXPECT_EQ(group["metadata"]["name"], "digits");
  EXPECT_EQ(group["spec"], Object({{"minMember", 4}})) << "Volcano's PodGroup has no scheduleTimeoutSeconds";
  ChildOptions options;
  options.gang = {GangFlavour::kVolcano, "volcano"};
  Object pod = BuildWorkerPod(job, 3, options);
  EXPECT_EQ(pod["metadata"]["annotations"][kVolcanoGroupAnnotation], "digits");
  EXPECT_EQ(pod["metadata"]["annotations"]["team"], "vision") << "the template's annotations stay";
  EXPECT_FALSE(pod["metadata"]["labels"].contains(kPodGroupLabel));
  EXPECT_EQ(pod["spec"]["schedulerName"], "volcano");
}

TEST(ChildrenTest, TokenSecretAndFreshTokens) {
  StatusOr<std::string> token = NewToken();
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->size(), 64u);
  EXPECT_EQ(token->find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(*token, *NewToken());
  Object secret = BuildTokenSecret(Job(), *token);
  ExpectOwnedBy(secret);
  EXPECT_EQ(secret["metadata"]["name"], "digits-token");
  EXPECT_EQ(secret["stringData"]["token"], *token);
}

// The Secrets cache keeps identity, owners and the token; nothing else of a Secret.
TEST(ChildrenTest, TokenSecretProjectionKeepsOnlyTheToken) {
  Object secret = Object::parse(R"({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
    "metadata": {"name": "digits-token", "namespace": "ns", "uid": "u", "resourceVersion": "4",
                 "ownerReferences": [{"uid": "job", "controller": true}], "annotations": {"x": "y"}},
    "data": {"token": "dG9rZW4=", "ssh-privatekey": "c2VjcmV0"}})");
  ProjectTokenSecret(secret);
  EXPECT_EQ(secret["data"], Object::parse(R"({"token": "dG9rZW4="})"));
  EXPECT_EQ(secret["metadata"]["ownerReferences"][0]["uid"], "job");
  EXPECT_FALSE(secret["metadata"].contains("annotations"));
  EXPECT_FALSE(secret.contains("type"));
  Object ssh = Object::parse(R"({"metadata": {"name": "digits-ssh"}, "data": {"ssh-privatekey": "c2VjcmV0"}})");
  ProjectTokenSecret(ssh);
  EXPECT_FALSE(ssh.contains("data")) << "no key material cached";
  for (const char* text : {R"({"data": 3})", R"([1])", R"({"data": {"token": null}})"}) {
    Object odd = Object::parse(text);
    EXPECT_NO_THROW(ProjectTokenSecret(odd)) << text;
  }
}

}  // namespace
}  // namespace mlscale::controllers::trainingjob

namespace mlscale::controllers::trainingjob {
namespace {

// Every example manifest parses with the trainer's own validator and gives pods.
TEST(ExamplesTest, EveryTrainingJobExampleGivesWorkerPods) {
  int examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(MLSCALE_EXAMPLES_DIR)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("trainingjob-") || !name.ends_with(".yaml")) continue;
    SCOPED_TRACE(name);
    ++examples;
    StatusOr<api::TrainingJob> job = api::LoadTrainingJobFile(entry.path().string(), [](const nlohmann::json& trainer) {
      return trainer.empty() ? Status::Ok() : worker::ParseTrainerConfig(trainer).status();
    });
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    JobRef ref{*job, "uid"};
    for (std::int64_t rank = 0; rank < job->spec.replicas; ++rank) {
      Object pod = BuildWorkerPod(ref, rank, ChildOptions{});
      EXPECT_EQ(pod["spec"]["containers"][0]["image"], job->spec.WorkerImage());
    }
  }
  EXPECT_GE(examples, 3);
}

}  // namespace
}  // namespace mlscale::controllers::trainingjob
