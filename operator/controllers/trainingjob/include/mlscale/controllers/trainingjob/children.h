// The children of a TrainingJob, built by pure functions from the job (spec in, object out):
// the headless Service the workers resolve each other through, one Pod per rank, the
// per-job token Secret, the trainer ConfigMap, and in MPI mode the hostfile ConfigMap and the SSH
// key Secret. The reconciler only compares these with what exists and acts.
//
// Every child carries the labels below and a controller ownerReference to the job, so the
// garbage collector deletes them with it and the informer maps their events to the job.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "mlscale/api/training_job.h"
#include "mlscale/common/status.h"
#include "mlscale/controllers/trainingjob/gang.h"

namespace mlscale::controllers::trainingjob {

using Object = nlohmann::json;

// Labels on every child (the job's name) and on worker pods (the rank).
inline constexpr const char* kJobNameLabel = "mlscale.io/job-name";
inline constexpr const char* kReplicaIndexLabel = "mlscale.io/replica-index";
inline constexpr const char* kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr const char* kManagedByValue = "mlscale-operator";

// The worker container's name (the one our env and mounts go into).
inline constexpr const char* kWorkerContainer = "worker";
// Ports of rank 0's launcher: rendezvous (MASTER_PORT) and the progress endpoint.
inline constexpr int kMasterPort = 29500;
inline constexpr int kProgressPort = 29501;
// Where the trainer config is mounted and what the trainer is given.
// Folders of their own (not nested: a mount inside a ConfigMap volume is fragile).
inline constexpr const char* kTrainerConfigDir = "/etc/mlscale/trainer";
inline constexpr const char* kTrainerConfigKey = "trainer.json";
inline constexpr const char* kTokenKey = "token";
inline constexpr const char* kSshDir = "/etc/mlscale/ssh";
inline constexpr const char* kHostfileDir = "/etc/mlscale/mpi";
// MPI mode: the workers' sshd port (unprivileged: the image runs as uid 65532).
inline constexpr int kSshPort = 2222;

// What the cluster admin configures for every job (operator flags).
struct ChildOptions {
  // How mlscale-launch finds the trainer inside our worker image (its entrypoint is
  // mlscale-launch; the trainer is on its PATH).
  std::string trainer_command = "mlscale-train";
  // When a flavour is set, a PodGroup of that flavour is made per job (BuildPodGroup) and
  // the pods name it (label or annotation) and carry this scheduler name (unless the
  // template names one). Filled per reconcile from GangDiscovery.
  GangScheduling gang;
};

// How pods name their PodGroup: scheduler-plugins' coscheduling reads this label,
// Volcano this annotation.
inline constexpr const char* kPodGroupLabel = "scheduling.x-k8s.io/pod-group";
inline constexpr const char* kVolcanoGroupAnnotation = "scheduling.k8s.io/group-name";

// The job as the builders need it: the parsed spec plus the identity of the object.
struct JobRef {
  api::TrainingJob job;   // name, namespace, spec
  std::string uid;        // metadata.uid: owner references, MLSCALE_RUN_ID
};

// Names of the children (DNS-1123, within 63 characters).
std::string ServiceName(const JobRef& job);                 // "<job>-worker"
std::string PodName(const JobRef& job, std::int64_t rank);  // "<job>-worker-<rank>"
std::string TokenSecretName(const JobRef& job);             // "<job>-token"
std::string TrainerConfigMapName(const JobRef& job);        // "<job>-trainer"
std::string HostfileConfigMapName(const JobRef& job);       // "<job>-hostfile"
std::string SshSecretName(const JobRef& job);               // "<job>-ssh"

// The headless Service (clusterIP None, publishNotReadyAddresses: workers must resolve
// each other before they are Ready) selecting the job's pods.
Object BuildService(const JobRef& job);
// Whether a job has that Service: only with more than one worker. A single worker talks to
// no peer; its MASTER_ADDR is localhost and its pod has no subdomain (one object less per
// job; spec.replicas cannot change once the job has started).
bool NeedsService(const api::TrainingJobSpec& spec);

// The pod of `rank`: hostname PodName, subdomain ServiceName (NeedsService), restartPolicy Never (the
// controller restarts the whole group), the torchrun/PET environment, the token from the
// Secret, the trainer config mounted read-only, checkpoint and output volumes, the
// spec's template overlay, resources and (for a gang queue) the Kueue label.
// Our image runs `mlscale-launch [--mode mpi...] -- <trainer_command> --config ...`; a
// user container runs its own command with the same environment.
Object BuildWorkerPod(const JobRef& job, std::int64_t rank, const ChildOptions& options);

// The PodGroup of `flavour` (not kNone) named like the job, minMember = replicas, so the
// scheduler binds all or none: coscheduling's (scheduling.x-k8s.io/v1alpha1) also has
// scheduleTimeoutSeconds = spec.gang.timeoutSeconds; Volcano's
// (scheduling.volcano.sh/v1beta1) has no such field (our own gang timeout still applies).
Object BuildPodGroup(const JobRef& job, GangFlavour flavour);

// The token Secret with `token` (64 hex characters, made by the caller: this is pure).
Object BuildTokenSecret(const JobRef& job, const std::string& token);
// 32 random bytes from the system's CSPRNG as 64 hex characters.
StatusOr<std::string> NewToken();

// The trainer ConfigMap: spec.trainer as JSON under kTrainerConfigKey.
Object BuildTrainerConfigMap(const JobRef& job);

// MPI mode: the hostfile under key "hostfile": "localhost slots=1" (rank 0 runs mpirun
// and MPI rank 0), then "<pod>.<service>.<namespace>.svc slots=1" for every other rank.
Object BuildHostfileConfigMap(const JobRef& job);
// MPI mode: the job's SSH key (type kubernetes.io/ssh-auth, key `ssh-privatekey`),
// mounted at kSshDir in every pod: the launcher's identity and every worker's host key.
Object BuildSshSecret(const JobRef& job, const std::string& private_key_pem);
// A fresh ECDSA P-256 private key as PKCS#8 PEM (what OpenSSH reads).
StatusOr<std::string> NewSshPrivateKey();

// The labels every child of `job` carries.
Object ChildLabels(const JobRef& job);

// The Secrets cache's transform: a Secret's identity and its data.token, all the
// controller reads of its Secrets (the SSH key Secret is only checked for existence).
void ProjectTokenSecret(Object& secret);

}  // namespace mlscale::controllers::trainingjob
