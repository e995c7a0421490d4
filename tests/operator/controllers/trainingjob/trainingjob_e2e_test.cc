// TrainingJobs end to end: the real control plane, mlscale-operator as a process, and a
// test node agent running every worker pod as real processes (our launcher and trainer,
// or a user's command). Each test has its own namespace, node and operator.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>
#include <thread>

#include "e2e_fixture.h"
#include "mlscale/kube/resource.h"

namespace mlscale::testing {
namespace {

using namespace std::chrono_literals;

kube::Resource TrainingJobs() { return {"mlscale.io", "v1alpha1", "trainingjobs", true, "TrainingJob"}; }

// status of an object as seen (an empty object before the first status write).
json StatusOf(const json& object) {
  if (!object.is_object() || !object.contains("status") || !object["status"].is_object()) return json::object();
  return object["status"];
}

std::optional<json> FindCondition(const json& job, const std::string& type) {
  for (const json& condition : StatusOf(job).value("conditions", json::array())) {
    if (condition.value("type", "") == type) return condition;
  }
  return std::nullopt;
}

// A metric of the result, wherever the result keeps it ({"metrics": {...}} or flat).
double ResultMetric(const json& job, const std::string& name) {
  const json result = StatusOf(job).value("result", json::object());
  if (result.contains("metrics") && result["metrics"].contains(name)) return result["metrics"][name].get<double>();
  if (result.contains(name) && result[name].is_number()) return result[name].get<double>();
  return -1;
}

std::set<std::string> StatesSeen(const EventLog& log, const std::string& job) {
  std::set<std::string> states;
  for (const json& state : log.States()) {
    if (kube::NameOf(state) == job) states.insert(StatusOf(state).value("state", ""));
  }
  return states;
}

// The step of the newest checkpoint the trainer wrote into `folder` (a checkpoint
// volume's host folder: checkpoint-<step>.mlsckpt); -1 when there is none.
std::int64_t NewestCheckpointStep(const std::string& folder) {
  std::int64_t newest = -1;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("checkpoint-") || !name.ends_with(".mlsckpt")) continue;
    const std::string digits = name.substr(11, name.size() - 11 - 8);
    if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos) {
      newest = std::max<std::int64_t>(newest, std::stoll(digits));
    }
  }
  return newest;
}

// The training steps a watch saw in `job`'s live progress, in order (readings of the
// trainer's "loading" phase, before it resumed a checkpoint, say step 0 and are left out).
std::vector<std::int64_t> ProgressSteps(const EventLog& log, const std::string& job) {
  std::vector<std::int64_t> steps;
  for (const json& state : log.States()) {
    if (kube::NameOf(state) != job) continue;
    const json progress = StatusOf(state).value("progress", json());
    if (progress.is_object() && progress.contains("step") && progress["step"].is_number_integer() &&
        progress.value("phase", "") != "loading") {
      steps.push_back(progress["step"].get<std::int64_t>());
    }
  }
  return steps;
}

TEST_F(TrainingJobE2E, DigitsJobSucceedsWithAccuracyAndLiveProgress) {
  StartNode();
  StartOperator();
  EventLog jobs(*client_, TrainingJobs(), namespace_);
  // 600 epochs: several seconds of training at 4 ranks on 2 cores, so the 0.3 s progress polls
  // see many steps (100 epochs ended within about a second once the trainer used oneDNN).
  Apply(DigitsJob("digits", 4, 600));
  json job = WaitForCondition("digits", "Succeeded", 150);
  EXPECT_EQ(job["status"]["state"], "Succeeded");
  EXPECT_GE(ResultMetric(job, "testAccuracy") >= 0 ? ResultMetric(job, "testAccuracy") : ResultMetric(job, "accuracy"), 0.95)
      << job["status"].dump();
  EXPECT_EQ(job["status"]["restarts"], 0);
  EXPECT_EQ(job["status"]["observedGeneration"], job["metadata"]["generation"]);
  EXPECT_TRUE(job["status"].contains("startTime"));
  EXPECT_TRUE(job["status"].contains("completionTime"));
  for (const char* type : {"Created", "Running", "Succeeded"}) {
    std::optional<json> condition = FindCondition(job, type);
    ASSERT_TRUE(condition.has_value()) << type;
    EXPECT_EQ((*condition)["status"], type == std::string("Running") ? "False" : "True") << type;
  }
  // The watch saw the progress move while the job ran.
  std::set<std::int64_t> steps;
  for (const json& state : jobs.States()) {
    const json progress = StatusOf(state).value("progress", json());
    if (progress.is_object() && progress.contains("step")) steps.insert(progress["step"].get<std::int64_t>());
  }
  EXPECT_GE(steps.size(), 3u) << "distinct progress steps seen: " << steps.size();
  // kubectl get tj shows the columns.
  CommandResult table = Kubectl({"-n", namespace_, "get", "tj", "digits"});
  ASSERT_EQ(table.exit_code, 0) << table.output;
  for (const char* column : {"NAME", "STATE", "RESTARTS", "AGE"}) {
    EXPECT_NE(table.output.find(column), std::string::npos) << column << " in\n" << table.output;
  }
  EXPECT_NE(table.output.find("Succeeded"), std::string::npos) << table.output;
  // cleanPodPolicy Running (the default): rank 0's finished pod is kept, with its log
  // (ranks still shutting down when rank 0 ended are stopped).
  EXPECT_EQ(StatusOf(Get("pod", "digits-worker-0")).value("phase", ""), "Succeeded");
}

TEST_F(TrainingJobE2E, KilledWorkerRestartsTheGroupWhichResumesFromTheCheckpoint) {
  StartNode();
  StartOperator();
  EventLog jobs(*client_, TrainingJobs(), namespace_);
  Apply(WithCheckpointVolume(DigitsJob("resume", 3, 150), "resume-ckpt"));
  // Mid-training: once rank 0 has written a checkpoint, kill rank 1's trainer.
  auto newest_checkpoint = [&] { return NewestCheckpointStep(dir_ + "/resume-ckpt"); };
  ASSERT_TRUE(WaitFor([&] { return newest_checkpoint() > 0; }, 120s)) << Diagnostics("resume");
  const std::int64_t checkpoint_at_kill = newest_checkpoint();
  ASSERT_TRUE(KillPodProcess("resume-worker-1", "mlscale-train")) << Diagnostics("resume");

  json job = WaitForCondition("resume", "Succeeded", 180);
  EXPECT_EQ(job["status"]["restarts"], 1) << job["status"].dump();
  EXPECT_TRUE(StatesSeen(jobs, "resume").contains("Restarting"));
  std::optional<json> restarting = FindCondition(job, "Restarting");
  ASSERT_TRUE(restarting.has_value());
  EXPECT_EQ((*restarting)["status"], "False");
  // The new group started from the checkpoint that existed when the worker died (or a later one).
  const double resumed = ResultMetric(job, "resumedFromStep");
  EXPECT_GE(resumed, double(checkpoint_at_kill)) << job["status"].dump();
}

TEST_F(TrainingJobE2E, PermanentExitCodeFailsAtOnce) {
  StartNode();
  StartOperator();
  json job = DigitsJob("bad-data", 2, 1);
  job["spec"]["trainer"]["dataset"] = {{"path", "/nonexistent/data.csv"}, {"labelColumn", -1}};
  Apply(job);
  job = WaitForCondition("bad-data", "Failed", 60);
  EXPECT_EQ(job["status"]["reason"], "PermanentFailure") << job["status"].dump();
  EXPECT_EQ(job["status"]["restarts"], 0);
  EXPECT_NE(StatusOf(job).value("message", "").find("exited with code 1"), std::string::npos) << job["status"].dump();
}

TEST_F(TrainingJobE2E, RetryableFailuresBeyondBackoffLimitFail) {
  StartNode();
  StartOperator();
  // Every rank dies of SIGKILL (137: retryable) after a moment ("$$$$" is the shell's
  // "$$" once Kubernetes has expanded "$$" to "$").
  Apply(ShellJob("flaky", 2, "sleep 1; kill -9 $$$$", {{"runPolicy", {{"backoffLimit", 2}}}}));
  json job = WaitForCondition("flaky", "Failed", 90);
  EXPECT_EQ(job["status"]["reason"], "BackoffLimitExceeded") << job["status"].dump();
  EXPECT_EQ(job["status"]["restarts"], 2);
  EXPECT_NE(StatusOf(job).value("message", "").find("exited with code 137"), std::string::npos) << job["status"].dump();
}

TEST_F(TrainingJobE2E, EvictionRestartsWithoutCountingAgainstBackoffLimit) {
  StartNode();
  StartOperator();
  EventLog jobs(*client_, TrainingJobs(), namespace_);
  // backoffLimit 0: any counted restart would fail the job. Rank 0 ends it after 12 s.
  Apply(ShellJob("evicted", 2, "if [ \"$RANK\" = 0 ]; then sleep 12; else sleep 600; fi",
                 {{"runPolicy", {{"backoffLimit", 0}}}}));
  ASSERT_TRUE(WaitFor([&] { return StatusOf(Get("trainingjob", "evicted")).value("state", "") == "Running"; }, 60s))
      << Diagnostics("evicted");
  json eviction = {{"apiVersion", "policy/v1"},
                   {"kind", "Eviction"},
                   {"metadata", {{"name", "evicted-worker-1"}, {"namespace", namespace_}}}};
  CommandResult evicted = Kubectl({"create", "--raw", "/api/v1/namespaces/" + namespace_ + "/pods/evicted-worker-1/eviction",
                                   "-f", "-"},
                                  eviction.dump());
  ASSERT_EQ(evicted.exit_code, 0) << evicted.output;
  json job = WaitForCondition("evicted", "Succeeded", 120);
  EXPECT_EQ(job["status"]["restarts"], 0) << job["status"].dump();
  EXPECT_EQ(job["status"]["disruptions"], 1) << job["status"].dump();
  EXPECT_TRUE(StatesSeen(jobs, "evicted").contains("Restarting"));
}

TEST_F(TrainingJobE2E, OperatorKilledDuringCreationNeverCreatesAPodTwice) {
  StartNode();
  // A slow client (4 requests/s) so the kill lands while the 16 pods are being created;
  // only the TrainingJob controller, so no other kind's start-up shares those 4 requests/s.
  // The workers run long enough that the restarted operator sees the job Running.
  StartOperator({"--kube-api-qps", "4", "--kube-api-burst", "1", "--controllers", "TrainingJob"});
  EventLog pods(*client_, kube::resources::Pods(), namespace_);
  Apply(ShellJob("wide", 16, "sleep 30"));
  auto created = [&] {
    size_t count = 0;
    for (const auto& [name, uids] : pods.UidsByName()) count += name.starts_with("wide-worker-") ? 1 : 0;
    return count;
  };
  ASSERT_TRUE(WaitFor([&] { return created() >= 1; }, 60s)) << Diagnostics("wide");
  operator_->Kill();
  const size_t at_kill = created();
  EXPECT_LT(at_kill, 16u) << "the kill was meant to land mid-creation";
  ASSERT_TRUE(operator_->Restart().ok()) << operator_->LogTail();
  ASSERT_TRUE(WaitFor([&] { return StatusOf(Get("trainingjob", "wide")).value("state", "") == "Running"; }, 90s))
      << Diagnostics("wide");
  // And again while it runs.
  operator_->Kill();
  ASSERT_TRUE(operator_->Restart().ok()) << operator_->LogTail();
  json job = WaitForCondition("wide", "Succeeded", 90);
  EXPECT_EQ(job["status"]["restarts"], 0);
  std::map<std::string, std::set<std::string>> uids = pods.UidsByName();
  size_t workers = 0;
  for (const auto& [name, incarnations] : uids) {
    if (!name.starts_with("wide-worker-")) continue;
    ++workers;
    EXPECT_EQ(incarnations.size(), 1u) << name << " was created " << incarnations.size() << " times";
  }
  EXPECT_EQ(workers, 16u);
}

TEST_F(TrainingJobE2E, ActiveDeadlineFailsTheJob) {
  StartNode();
  StartOperator();
  Apply(ShellJob("slow", 2, "sleep 600", {{"runPolicy", {{"activeDeadlineSeconds", 4}}}}));
  json job = WaitForCondition("slow", "Failed", 60);
  EXPECT_EQ(job["status"]["reason"], "DeadlineExceeded") << job["status"].dump();
  EXPECT_TRUE(WaitFor([&] { return Pods("slow").empty(); }, 30s)) << Diagnostics("slow");
}

// Suspend with real trainer pods: the pods are deleted (the trainers stop cleanly on
// SIGTERM, rank 0 checkpointing where they stopped), the status is kept, and the resumed
// group continues from that checkpoint: it loses at most the checkpoint interval.
TEST_F(TrainingJobE2E, SuspendDeletesThePodsAndResumeContinuesFromTheCheckpoint) {
  constexpr std::int64_t kCheckpointEvery = 20;  // DigitsJob's checkpoint.everySteps
  StartNode();
  StartOperator();
  EventLog jobs(*client_, TrainingJobs(), namespace_);
  const std::string checkpoints = dir_ + "/paused-ckpt";
  Apply(WithCheckpointVolume(DigitsJob("paused", 2, 150), "paused-ckpt"));
  // Mid-training: progress seen and a checkpoint written.
  ASSERT_TRUE(WaitFor([&] { return NewestCheckpointStep(checkpoints) > 0 && !ProgressSteps(jobs, "paused").empty(); },
                      120s))
      << Diagnostics("paused");
  CommandResult patched = Kubectl({"-n", namespace_, "patch", "trainingjob", "paused", "--type=merge", "-p",
                                   R"({"spec":{"runPolicy":{"suspend":true}}})"});
  ASSERT_EQ(patched.exit_code, 0) << patched.output;
  json job = WaitForCondition("paused", "Suspended", 60);
  EXPECT_EQ(job["status"]["state"], "Suspended");
  ASSERT_TRUE(WaitFor([&] { return Pods("paused").empty(); }, 60s)) << Diagnostics("paused");
  const std::vector<std::int64_t> before = ProgressSteps(jobs, "paused");
  ASSERT_FALSE(before.empty());
  const std::int64_t last_seen = before.back();            // the last step the status showed
  const std::int64_t checkpoint = NewestCheckpointStep(checkpoints);
  EXPECT_GE(checkpoint + kCheckpointEvery, last_seen) << "the trainers stopped without a recent checkpoint";
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(Pods("paused").empty()) << "a suspended job got pods again";
  EXPECT_EQ(NewestCheckpointStep(checkpoints), checkpoint) << "something trained while suspended";

  // The status keeps the last reading while suspended (and until the resumed group's
  // first one): readings after the resume that differ from it are the new group's.
  const std::vector<std::int64_t> at_resume = ProgressSteps(jobs, "paused");
  patched = Kubectl({"-n", namespace_, "patch", "trainingjob", "paused", "--type=merge", "-p",
                     R"({"spec":{"runPolicy":{"suspend":false}}})"});
  ASSERT_EQ(patched.exit_code, 0) << patched.output;
  job = WaitForCondition("paused", "Succeeded", 180);
  std::optional<json> suspended = FindCondition(job, "Suspended");
  ASSERT_TRUE(suspended.has_value());
  EXPECT_EQ((*suspended)["status"], "False");
  EXPECT_EQ((*suspended)["reason"], "Resumed");
  EXPECT_EQ(job["status"]["restarts"], 0) << "a suspension is not a failure";
  // The resumed group started from the checkpoint written at the suspension...
  const double resumed = ResultMetric(job, "resumedFromStep");
  EXPECT_GE(resumed, double(checkpoint)) << job["status"].dump();
  // ... so it lost at most one checkpoint interval of what was trained before it.
  EXPECT_GE(resumed + kCheckpointEvery, double(last_seen)) << job["status"].dump();
  // And its progress never went back to the start.
  const std::vector<std::int64_t> all = ProgressSteps(jobs, "paused");
  for (size_t i = at_resume.size(); i < all.size(); ++i) {
    if (!at_resume.empty() && all[i] == at_resume.back()) continue;  // the kept reading
    EXPECT_GE(all[i], checkpoint) << "reading " << i << " after the resume";
  }
}

// A checkpoint of another model in the job's checkpoint volume (here: a job with other
// layer sizes trained into the same folder first) is a permanent error: the trainer
// exits 1 naming the checkpoint, the job fails at once with that message, no restart,
// no pod churn, and the operator does not crash.
TEST_F(TrainingJobE2E, AnIncompatibleCheckpointFailsTheJobWithAClearMessage) {
  StartNode();
  StartOperator();
  EventLog pods(*client_, kube::resources::Pods(), namespace_);
  const std::string checkpoints = dir_ + "/shared-ckpt";
  json small = WithCheckpointVolume(DigitsJob("small", 1, 1), "shared-ckpt");
  small["spec"]["trainer"]["model"]["hiddenLayers"] = {16};
  Apply(small);
  WaitForCondition("small", "Succeeded", 120);
  ASSERT_GT(NewestCheckpointStep(checkpoints), 0) << "the first job left no checkpoint";

  Apply(WithCheckpointVolume(DigitsJob("large", 2, 5), "shared-ckpt"));  // hiddenLayers [128, 64]
  json job = WaitForCondition("large", "Failed", 90);
  EXPECT_EQ(job["status"]["reason"], "PermanentFailure") << job["status"].dump();
  EXPECT_EQ(job["status"]["restarts"], 0) << job["status"].dump();
  const std::string message = StatusOf(job).value("message", "");
  EXPECT_NE(message.find("large-worker-0 exited with code 1"), std::string::npos) << message;
  EXPECT_NE(message.find("is of another model"), std::string::npos) << message;
  EXPECT_NE(message.find("checkpoint-"), std::string::npos) << "the message names the checkpoint: " << message;
  std::optional<json> failed = FindCondition(job, "Failed");
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ((*failed)["reason"], "PermanentFailure");
  // One pod per rank, each created once: no retry loop.
  std::this_thread::sleep_for(3s);
  size_t large_pods = 0;
  for (const auto& [name, uids] : pods.UidsByName()) {
    if (!name.starts_with("large-")) continue;
    ++large_pods;
    EXPECT_EQ(uids.size(), 1u) << name << " was created again";
  }
  EXPECT_EQ(large_pods, 2u);
  EXPECT_TRUE(operator_->Running());
  EXPECT_FALSE(operator_->WaitForLog("terminate called", std::chrono::milliseconds(0))) << operator_->LogTail();
}

TEST_F(TrainingJobE2E, TtlDeletesTheFinishedJob) {
  StartNode();
  StartOperator();
  Apply(ShellJob("short", 1, "true", {{"runPolicy", {{"ttlSecondsAfterFinished", 2}}}}));
  WaitForCondition("short", "Succeeded", 60);
  EXPECT_TRUE(WaitFor([&] { return Kubectl({"-n", namespace_, "get", "trainingjob", "short"}).exit_code != 0; }, 30s));
}

TEST_F(TrainingJobE2E, CleanPodPolicyDecidesWhichPodsStay) {
  StartNode();
  StartOperator();
  // Rank 0 finishes at once; the others would run for 10 minutes.
  const std::string script = "if [ \"$RANK\" = 0 ]; then sleep 2; else sleep 600; fi";
  for (const char* policy : {"None", "Running", "All"}) {
    std::string name = std::string("clean-") + (policy[0] == 'N' ? "none" : policy[0] == 'R' ? "running" : "all");
    Apply(ShellJob(name, 2, script, {{"runPolicy", {{"cleanPodPolicy", policy}}}}));
  }
  for (const char* name : {"clean-none", "clean-running", "clean-all"}) WaitForCondition(name, "Succeeded", 60);
  auto phases = [&](const std::string& job) {
    std::multiset<std::string> result;
    for (const json& pod : Pods(job)) {
      if (!pod["metadata"].contains("deletionTimestamp")) result.insert(pod["status"].value("phase", ""));
    }
    return result;
  };
  EXPECT_TRUE(WaitFor([&] { return phases("clean-running") == std::multiset<std::string>{"Succeeded"}; }, 30s))
      << Diagnostics("clean-running");
  EXPECT_TRUE(WaitFor([&] { return phases("clean-all").empty(); }, 30s)) << Diagnostics("clean-all");
  EXPECT_EQ(phases("clean-none"), (std::multiset<std::string>{"Running", "Succeeded"})) << Diagnostics("clean-none");
}

TEST_F(TrainingJobE2E, GangTimeoutReleasesEveryPodAndSaysWhy) {
  StartNode(/*gpus=*/2);
  StartOperator();
  EventLog jobs(*client_, TrainingJobs(), namespace_);
  // 3 GPUs per worker on a node with 2: never schedulable.
  Apply(ShellJob("greedy", 2, "sleep 60",
                 {{"resources", {{"limits", {{"nvidia.com/gpu", 3}}}}},
                  {"gang", {{"timeoutSeconds", 3}}},
                  {"runPolicy", {{"backoffLimit", 1}}}}));
  json job = WaitForCondition("greedy", "Failed", 90);
  EXPECT_EQ(job["status"]["reason"], "BackoffLimitExceeded") << job["status"].dump();
  EXPECT_NE(StatusOf(job).value("message", "").find("only 0 of 2 workers were placed on a node"), std::string::npos)
      << job["status"].dump();
  bool said_why = false;
  for (const json& state : jobs.States()) {
    for (const json& condition : StatusOf(state).value("conditions", json::array())) {
      said_why |= condition.value("type", "") == "Restarting" && condition.value("reason", "") == "GangTimeout";
    }
  }
  EXPECT_TRUE(said_why);
  EXPECT_TRUE(WaitFor([&] { return Pods("greedy").empty(); }, 30s)) << Diagnostics("greedy");
}

TEST_F(TrainingJobE2E, WhatOnlyTheControllerSeesFailsWithAReason) {
  StartNode();
  StartOperator({"--start-timeout", "4"});
  // A Secret the template names that does not exist, and an image that never starts.
  json missing = ShellJob("no-secret", 1, "true");
  missing["spec"]["template"]["env"].push_back(
      {{"name", "API_KEY"}, {"valueFrom", {{"secretKeyRef", {{"name", "does-not-exist"}, {"key", "k"}}}}}});
  Apply(missing);
  Apply(Job("no-image", {{"replicas", 1}, {"container", {{"image", "registry.invalid/none:1"}}}}));
  for (const char* name : {"no-secret", "no-image"}) {
    json job = WaitForCondition(name, "Failed", 60);
    EXPECT_EQ(job["status"]["reason"], "WorkerCannotStart") << job["status"].dump();
  }
  EXPECT_NE(StatusOf(Get("trainingjob", "no-secret")).value("message", "").find("does-not-exist"), std::string::npos)
      << Get("trainingjob", "no-secret")["status"].dump();
  EXPECT_TRUE(operator_->Running());  // never a crash
}

TEST_F(TrainingJobE2E, TwoReplicasWithLeaderElectionHandOver) {
  StartNode();
  const std::vector<std::string> election = {"--leader-elect", "--leader-election-namespace", namespace_,
                                             "--leader-election-id", "mlscale-operator"};
  StartOperator(election);
  std::vector<std::string> flags = {"--namespace", namespace_, "--restart-backoff", "1"};
  flags.insert(flags.end(), election.begin(), election.end());
  StatusOr<std::unique_ptr<OperatorProcess>> standby =
      OperatorProcess::Start(flags, dir_ + "/standby.log", /*wait_for_controllers=*/false);
  ASSERT_TRUE(standby.ok()) << standby.status().ToString();
  Apply(ShellJob("handover", 2, "sleep 25"));
  ASSERT_TRUE(WaitFor([&] { return StatusOf(Get("trainingjob", "handover")).value("state", "") == "Running"; }, 60s))
      << Diagnostics("handover");
  EXPECT_FALSE((*standby)->WaitForLog("controller(s) running", 100ms)) << "the standby acted while not leading";
  operator_->Kill();  // the leader dies without releasing the lease
  EXPECT_TRUE((*standby)->WaitForLog("controller(s) running", 40s)) << (*standby)->LogTail();
  json job = WaitForCondition("handover", "Succeeded", 90);
  EXPECT_EQ(job["status"]["restarts"], 0);
}

TEST_F(TrainingJobE2E, MpiJobSucceedsThroughMpirun) {
  StartNode();
  StartOperator();
  // examples/trainingjob-mpi.yaml, placed on this test's node.
  json example = ReadExample("trainingjob-mpi.yaml");
  ASSERT_TRUE(example.is_object());
  json job = Job("digits-mpi", example["spec"]);
  job["spec"]["trainer"]["epochs"] = 30;  // long enough to be polled
  Apply(job);
  job = WaitForCondition("digits-mpi", "Succeeded", 180);
  EXPECT_GE(ResultMetric(job, "testAccuracy"), 0.9) << job["status"].dump();
  const std::string communicator = StatusOf(job).value("result", json::object()).value("communicator", "");
  EXPECT_NE(communicator.find("mpi"), std::string::npos) << job["status"].dump();
  // The operator made the job's SSH key and hostfile.
  json secret = Get("secret", "digits-mpi-ssh");
  EXPECT_EQ(secret.value("type", ""), "kubernetes.io/ssh-auth");
  json hostfile = Get("configmap", "digits-mpi-hostfile");
  EXPECT_NE(hostfile["data"].value("hostfile", "").find("localhost slots=1"), std::string::npos);
}

TEST_F(TrainingJobE2E, EveryExampleIsAcceptedByTheApiServer) {
  int examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(MLSCALE_EXAMPLES_DIR)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("trainingjob-") || !name.ends_with(".yaml")) continue;
    ++examples;
    CommandResult result = Kubectl({"-n", namespace_, "apply", "--dry-run=server", "-f", entry.path().string()});
    EXPECT_EQ(result.exit_code, 0) << name << ": " << result.output;
  }
  EXPECT_GE(examples, 4);
}

}  // namespace
}  // namespace mlscale::testing
