#include "mlscale/controllers/trainingjob/children.h"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <array>
#include <cstdio>
#include <memory>

#include "mlscale/kube/informer.h"
#include "mlscale/kube/names.h"
#include "mlscale/kube/objects.h"

namespace mlscale::controllers::trainingjob {
namespace {

// The launcher's progress and result files (an emptyDir: pods on one host must not share them).
constexpr const char* kStateDir = "/var/lib/mlscale/state";

// The owner reference every child carries (controller: true, blockOwnerDeletion).
Object OwnedMetadata(const JobRef& job, const std::string& name) {
  Object owner = {{"apiVersion", std::string(api::kApiVersion)},
                  {"kind", std::string(api::kTrainingJobKind)},
                  {"metadata", {{"name", job.job.name}, {"uid", job.uid}}}};
  Object child = {{"metadata", {{"name", name}, {"namespace", job.job.namespace_}, {"labels", ChildLabels(job)}}}};
  // The owner is complete by construction (apiVersion, kind, name, uid), so this cannot fail.
  (void)kube::SetOwnerReference(child, owner, /*controller=*/true);
  return child["metadata"];
}

Object EnvValue(const std::string& name, const std::string& value) { return {{"name", name}, {"value", value}}; }

// Sets (or replaces in place, by name) one variable of a container's env.
void SetEnv(Object& env, Object variable) {
  for (Object& existing : env) {
    if (existing.is_object() && existing.value("name", "") == variable["name"].get<std::string>()) {
      existing = std::move(variable);
      return;
    }
  }
  env.push_back(std::move(variable));
}

// Adds a volume unless the template already declares one with that name (then the user's
// source wins: e.g. a PersistentVolumeClaim for checkpoints instead of our emptyDir).
void AddVolume(Object& volumes, Object volume) {
  for (const Object& existing : volumes) {
    if (existing.is_object() && existing.value("name", "") == volume["name"].get<std::string>()) return;
  }
  volumes.push_back(std::move(volume));
}

void AddMount(Object& mounts, const std::string& name, const std::string& path, bool read_only) {
  for (const Object& existing : mounts) {
    if (existing.is_object() && existing.value("mountPath", "") == path) return;
  }
  mounts.push_back({{"name", name}, {"mountPath", path}, {"readOnly", read_only}});
}

}  // namespace

std::string ServiceName(const JobRef& job) { return kube::ChildName(job.job.name, "worker"); }
std::string PodName(const JobRef& job, std::int64_t rank) {
  return kube::ChildName(job.job.name, "worker-" + std::to_string(rank));
}
std::string TokenSecretName(const JobRef& job) { return kube::ChildName(job.job.name, "token"); }
std::string TrainerConfigMapName(const JobRef& job) { return kube::ChildName(job.job.name, "trainer"); }
std::string HostfileConfigMapName(const JobRef& job) { return kube::ChildName(job.job.name, "hostfile"); }
std::string SshSecretName(const JobRef& job) { return kube::ChildName(job.job.name, "ssh"); }

Object ChildLabels(const JobRef& job) {
  return {{kJobNameLabel, job.job.name}, {kManagedByLabel, kManagedByValue}};
}

bool NeedsService(const api::TrainingJobSpec& spec) { return spec.replicas > 1; }

Object BuildService(const JobRef& job) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", OwnedMetadata(job, ServiceName(job))},
          {"spec",
           {{"clusterIP", "None"},
            {"publishNotReadyAddresses", true},
            {"selector", {{kJobNameLabel, job.job.name}}},
            {"ports", {{{"name", "rendezvous"}, {"port", kMasterPort}, {"protocol", "TCP"}},
                       {{"name", "progress"}, {"port", kProgressPort}, {"protocol", "TCP"}}}}}}};
}

Object BuildWorkerPod(const JobRef& job, std::int64_t rank, const ChildOptions& options) {
  const api::TrainingJobSpec& spec = job.job.spec;
  const api::PodTemplateOverlay& overlay = spec.pod_template;

  Object container = {{"name", kWorkerContainer}, {"image", spec.WorkerImage()}};
  if (spec.container) {
    if (!spec.container->command.empty()) container["command"] = spec.container->command;
    if (!spec.container->args.empty()) container["args"] = spec.container->args;
    if (!spec.container->working_dir.empty()) container["workingDir"] = spec.container->working_dir;
  } else {
    // Our image's entrypoint is mlscale-launch: it runs the rendezvous (or mpirun), then
    // the trainer, which resumes from the newest checkpoint in --checkpoint-dir.
    // Rendezvous and data plane on the pod's own address (expanded by the kubelet from the
    // downward-API variable below), not 0.0.0.0: the same in a pod network namespace, and
    // pods that share a host's network (test node agents, hostNetwork) do not collide.
    Object args = Object{"--bind-address", "$(MLSCALE_ADVERTISE_ADDRESS)"};
    if (spec.launcher == api::LauncherKind::kMpi) {
      // Rank 0 is the launcher (and MPI rank 0, on localhost); the others run sshd for it.
      const std::string port = std::to_string(kSshPort);
      args = rank == 0 ? Object{"--mode", "mpi", "--hostfile", std::string(kHostfileDir) + "/hostfile", "--ssh-port", port,
                                "--np", std::to_string(spec.replicas)}
                       : Object{"--mode", "mpi-worker", "--ssh-port", port};
    }
    for (const std::string& arg :
         {std::string("--"), options.trainer_command, std::string("--config"),
          std::string(kTrainerConfigDir) + "/" + kTrainerConfigKey, std::string("--checkpoint-dir"),
          spec.checkpoint.location.path, std::string("--output-dir"), spec.output.location.path,
          std::string("--backend"), std::string(api::BackendName(spec.backend))}) {
      if (spec.launcher == api::LauncherKind::kMpi && rank != 0) break;  // mpi-worker runs no command
      args.push_back(arg);
    }
    container["args"] = std::move(args);
  }
  Object resources = Object::object();
  if (!spec.resources.limits.empty()) resources["limits"] = spec.resources.limits;
  if (!spec.resources.requests.empty()) resources["requests"] = spec.resources.requests;
  if (!resources.empty()) container["resources"] = std::move(resources);

  const std::string world_size = std::to_string(spec.replicas);
  const std::string rank_text = std::to_string(rank);
  const std::string master = NeedsService(spec) ? PodName(job, 0) + "." + ServiceName(job) : "localhost";
  const std::string master_port = std::to_string(kMasterPort);
  // The user's env first; ours replaces a variable of the same name (the contract wins).
  Object env = overlay.env.is_array() ? overlay.env : Object::array();
  for (Object variable : {EnvValue("WORLD_SIZE", world_size), EnvValue("RANK", rank_text),
                          EnvValue("LOCAL_RANK", "0"), EnvValue("LOCAL_WORLD_SIZE", "1"),
                          EnvValue("GROUP_RANK", rank_text), EnvValue("MASTER_ADDR", master),
                          EnvValue("MASTER_PORT", master_port), EnvValue("PET_NNODES", world_size),
                          EnvValue("PET_NPROC_PER_NODE", "1"), EnvValue("PET_NODE_RANK", rank_text),
                          EnvValue("PET_MASTER_ADDR", master), EnvValue("PET_MASTER_PORT", master_port),
                          EnvValue("MLSCALE_RUN_ID", job.uid),
                          EnvValue("MLSCALE_PROGRESS_PORT", std::to_string(kProgressPort)),
                          EnvValue("MLSCALE_STATE_DIR", kStateDir)}) {
    SetEnv(env, std::move(variable));
  }
  if (spec.launcher == api::LauncherKind::kMpi) {
    // Open MPI cuts host names at the first dot unless told not to; the hostfile's names
    // resolve only in full (as the MPI Operator sets it).
    SetEnv(env, EnvValue("OMPI_MCA_orte_keep_fqdn_hostnames", "true"));
  }
  SetEnv(env, {{"name", "MLSCALE_ADVERTISE_ADDRESS"},
               {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}});
  SetEnv(env, {{"name", "MLSCALE_RUN_TOKEN"},
               {"valueFrom", {{"secretKeyRef", {{"name", TokenSecretName(job)}, {"key", kTokenKey}}}}}});
  container["env"] = std::move(env);

  // Volumes: the template's, then ours; a checkpoint or output location naming a
  // template volume mounts that one (e.g. a PersistentVolumeClaim that outlives the pods),
  // otherwise the pod gets an emptyDir of its own.
  Object volumes = overlay.volumes.is_array() ? overlay.volumes : Object::array();
  Object mounts = overlay.volume_mounts.is_array() ? overlay.volume_mounts : Object::array();
  if (!spec.container) {  // a user container reads its own configuration
    AddMount(mounts, "trainer-config", kTrainerConfigDir, true);
    AddVolume(volumes, {{"name", "trainer-config"}, {"configMap", {{"name", TrainerConfigMapName(job)}}}});
  }
  AddMount(mounts, "state", kStateDir, false);
  AddVolume(volumes, {{"name", "state"}, {"emptyDir", Object::object()}});
  for (const auto& [name, location] : {std::pair<std::string, const api::VolumeLocation*>{"checkpoints", &spec.checkpoint.location},
                                       {"model", &spec.output.location}}) {
    const std::string volume = location->volume.empty() ? name : location->volume;
    AddMount(mounts, volume, location->path, false);
    if (location->volume.empty()) AddVolume(volumes, {{"name", name}, {"emptyDir", Object::object()}});
  }
  if (spec.launcher == api::LauncherKind::kMpi && !spec.container) {
    AddMount(mounts, "hostfile", kHostfileDir, true);
    AddVolume(volumes, {{"name", "hostfile"}, {"configMap", {{"name", HostfileConfigMapName(job)}}}});
    AddMount(mounts, "ssh", kSshDir, true);
    AddVolume(volumes, {{"name", "ssh"}, {"secret", {{"secretName", SshSecretName(job)}, {"defaultMode", 0400}}}});
  }
  container["volumeMounts"] = std::move(mounts);
  if (rank == 0) {
    container["ports"] = {{{"name", "rendezvous"}, {"containerPort", kMasterPort}},
                          {{"name", "progress"}, {"containerPort", kProgressPort}}};
  } else if (spec.launcher == api::LauncherKind::kMpi && !spec.container) {
    container["ports"] = {{{"name", "ssh"}, {"containerPort", kSshPort}}};
    container["readinessProbe"] = {{"tcpSocket", {{"port", kSshPort}}}, {"periodSeconds", 2}};
  }

  Object pod_spec = {{"containers", Object::array({std::move(container)})},
                     {"volumes", std::move(volumes)},
                     {"hostname", PodName(job, rank)},
                     {"restartPolicy", "Never"},
                     // Workers get no API access (progress is read from rank 0 by the operator).
                     {"automountServiceAccountToken", false}};
  if (NeedsService(spec)) pod_spec["subdomain"] = ServiceName(job);
  if (!overlay.node_selector.empty()) pod_spec["nodeSelector"] = overlay.node_selector;
  if (!overlay.affinity.is_null()) pod_spec["affinity"] = overlay.affinity;
  if (overlay.tolerations.is_array() && !overlay.tolerations.empty()) pod_spec["tolerations"] = overlay.tolerations;
  if (!overlay.service_account_name.empty()) pod_spec["serviceAccountName"] = overlay.service_account_name;
  if (!overlay.priority_class_name.empty()) pod_spec["priorityClassName"] = overlay.priority_class_name;
  if (!overlay.scheduler_name.empty()) {
    pod_spec["schedulerName"] = overlay.scheduler_name;
  } else if (options.gang.flavour != GangFlavour::kNone && !options.gang.scheduler_name.empty()) {
    pod_spec["schedulerName"] = options.gang.scheduler_name;
  }

  Object metadata = OwnedMetadata(job, PodName(job, rank));
  Object labels = overlay.labels;
  labels.update(metadata["labels"]);
  labels[kReplicaIndexLabel] = rank_text;
  if (!spec.gang.queue_name.empty()) labels[std::string(api::kKueueQueueLabel)] = spec.gang.queue_name;
  if (options.gang.flavour == GangFlavour::kCoscheduling) labels[kPodGroupLabel] = job.job.name;
  metadata["labels"] = std::move(labels);
  Object annotations = Object::object();
  for (const auto& [key, value] : overlay.annotations) annotations[key] = value;
  if (options.gang.flavour == GangFlavour::kVolcano) annotations[kVolcanoGroupAnnotation] = job.job.name;
  if (!annotations.empty()) metadata["annotations"] = std::move(annotations);
  return Object{{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", std::move(metadata)}, {"spec", std::move(pod_spec)}};
}

Object BuildPodGroup(const JobRef& job, GangFlavour flavour) {
  Object spec = {{"minMember", job.job.spec.replicas}};
  if (flavour == GangFlavour::kCoscheduling) spec["scheduleTimeoutSeconds"] = job.job.spec.gang.timeout_seconds;
  return {{"apiVersion", PodGroupResource(flavour).ApiVersion()},
          {"kind", "PodGroup"},
          {"metadata", OwnedMetadata(job, job.job.name)},
          {"spec", std::move(spec)}};
}

Object BuildTokenSecret(const JobRef& job, const std::string& token) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", OwnedMetadata(job, TokenSecretName(job))},
          {"type", "Opaque"},
          {"stringData", {{kTokenKey, token}}}};
}

StatusOr<std::string> NewToken() {
  std::array<unsigned char, 32> bytes{};
  const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Internal("cannot open /dev/urandom for the job token");
  size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + filled, bytes.size() - filled);
    if (n <= 0) {
      ::close(fd);
      return Internal("cannot read /dev/urandom for the job token");
    }
    filled += size_t(n);
  }
  ::close(fd);
  std::string hex;
  hex.reserve(64);
  constexpr char kDigits[] = "0123456789abcdef";
  for (unsigned char byte : bytes) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 15]);
  }
  return hex;
}

Object BuildTrainerConfigMap(const JobRef& job) {
  Object trainer = job.job.spec.trainer;
  if (job.job.spec.checkpoint.interval_steps) {
    trainer["checkpoint"]["everySteps"] = *job.job.spec.checkpoint.interval_steps;
  }
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", OwnedMetadata(job, TrainerConfigMapName(job))},
          {"data", {{kTrainerConfigKey, trainer.dump()}}}};
}

Object BuildSshSecret(const JobRef& job, const std::string& private_key_pem) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", OwnedMetadata(job, SshSecretName(job))},
          {"type", "kubernetes.io/ssh-auth"},
          {"stringData", {{"ssh-privatekey", private_key_pem}}}};
}

StatusOr<std::string> NewSshPrivateKey() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) return Internal("cannot generate the job's SSH key (ECDSA P-256)");
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Internal("cannot write the job's SSH key as PEM");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size_t(size));
}

Object BuildHostfileConfigMap(const JobRef& job) {
  // Rank 0's pod runs mpirun, so its own slot is local; the others are reached over ssh.
  std::string hostfile = "localhost slots=1\n";
  for (std::int64_t rank = 1; rank < job.job.spec.replicas; ++rank) {
    hostfile += PodName(job, rank) + "." + ServiceName(job) + "." + job.job.namespace_ + ".svc slots=1\n";
  }
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", OwnedMetadata(job, HostfileConfigMapName(job))},
          {"data", {{"hostfile", hostfile}}}};
}

void ProjectTokenSecret(Object& secret) {
  Object token;
  if (secret.is_object() && secret.contains("data") && secret["data"].is_object() && secret["data"].contains(kTokenKey)) {
    token = std::move(secret["data"][kTokenKey]);
  }
  kube::KeepMetadataOnly(secret);
  if (!token.is_null()) secret["data"][kTokenKey] = std::move(token);
}

}  // namespace mlscale::controllers::trainingjob
