// The TrainingJob state machine (job_state.h) without an API server: observed pods and
// the last status in, the plan out.
#include "mlscale/controllers/trainingjob/job_state.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "mlscale/api/training_job.h"
#include "mlscale/controllers/trainingjob/children.h"

namespace mlscale::controllers::trainingjob {
namespace {

using namespace std::chrono_literals;
using Phase = WorkerObservation::Phase;

api::TrainingJobSpec Spec(const std::string& extra = "", int replicas = 4) {
  std::string yaml = "apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata: {name: t}\nspec:\n  replicas: " +
                     std::to_string(replicas) + "\n  trainer: {epochs: 2}\n" + extra;
  StatusOr<api::TrainingJob> job = api::ParseTrainingJob(yaml, nullptr);
  EXPECT_TRUE(job.ok()) << job.status().ToString();
  return job.ok() ? job->spec : api::TrainingJobSpec{};
}

const TimePoint kNow = std::chrono::system_clock::from_time_t(1'800'000'000);

WorkerObservation Worker(int rank, Phase phase) {
  WorkerObservation worker;
  worker.rank = rank;
  worker.name = "t-worker-" + std::to_string(rank);
  worker.phase = phase;
  worker.created = kNow - 10s;
  worker.pod_ip = "127.64.0." + std::to_string(rank + 1);
  return worker;
}

std::vector<WorkerObservation> Group(int replicas, Phase phase) {
  std::vector<WorkerObservation> workers;
  for (int rank = 0; rank < replicas; ++rank) workers.push_back(Worker(rank, phase));
  return workers;
}

WorkerObservation Failed(int rank, int exit_code) {
  WorkerObservation worker = Worker(rank, Phase::kPodFailed);
  worker.exit_code = exit_code;
  worker.reason = "Error";
  worker.finished = kNow - 10s;
  return worker;
}

JobStatus Running() {
  JobStatus status;
  status.state = kRunning;
  status.start_time = kNow - 60s;
  status.group_created_time = kNow - 60s;
  return status;
}

const kube::Condition* FindCondition(const Decision& decision, const std::string& type) {
  for (const kube::Condition& condition : decision.conditions) {
    if (condition.type == type) return &condition;
  }
  return nullptr;
}

DecideOptions Options() {
  DecideOptions options;
  options.restart_backoff = 1000ms;
  options.max_restart_backoff = 8000ms;
  options.start_timeout = 60s;
  return options;
}

TEST(DecideTest, FirstLookCreatesEveryRankAndStartsTheClock) {
  Decision decision = Decide(Spec(), JobStatus{}, {}, kNow, Options());
  EXPECT_EQ(decision.create_ranks, (std::vector<std::int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(decision.status.state, kPending);
  EXPECT_EQ(decision.status.start_time, kNow);
  EXPECT_EQ(decision.status.group_created_time, kNow);
  EXPECT_TRUE(decision.delete_pods.empty());
  // Nothing is said before the pods exist: MarkPodsCreated says it once they do.
  EXPECT_TRUE(decision.events.empty());
  EXPECT_EQ(FindCondition(decision, kCreated), nullptr);
}

TEST(MarkPodsCreatedTest, OneStatusAndOneEventRecordTheNewGroupInTheLookThatSeesIt) {
  Decision decision = Decide(Spec(), JobStatus{}, {}, kNow, Options());
  MarkPodsCreated(decision, JobStatus{});
  EXPECT_EQ(decision.status.state, kPending);
  EXPECT_EQ(decision.status.workers.pending, 4);  // what the cache will show
  EXPECT_EQ(decision.status.workers.total, 4);
  const kube::Condition* created = FindCondition(decision, kCreated);
  ASSERT_NE(created, nullptr);
  EXPECT_EQ(created->status, kube::ConditionStatus::kTrue);
  EXPECT_EQ(created->reason, "PodsCreated");
  // The creating look writes nothing: neither the status nor the event.
  EXPECT_TRUE(decision.events.empty());

  // The next look, with the four pods in the cache and still no status written, decides the
  // same status and says it once: one event for the group, not one per pod.
  Decision next = Decide(Spec(), JobStatus{}, Group(4, Phase::kPodPending), kNow + 1s, Options());
  EXPECT_TRUE(next.create_ranks.empty());
  EXPECT_EQ(next.status.workers, decision.status.workers);
  EXPECT_EQ(next.status.state, decision.status.state);
  ASSERT_EQ(next.events.size(), 1u);
  EXPECT_EQ(next.events[0].reason, "PodsCreated");
  EXPECT_EQ(next.events[0].message, "created 4 worker pods");

  // Once that status is written, later looks say nothing more.
  Decision later = Decide(Spec(), next.status, Group(4, Phase::kPodPending), kNow + 2s, Options());
  EXPECT_TRUE(later.events.empty());
}

TEST(DecideTest, ALookThatFindsTheGroupUnrecordedTakesItsTimesFromThePods) {
  // The look that created the pods wrote no status (the controller leaves that to this one).
  std::vector<WorkerObservation> pods = Group(4, Phase::kPodPending);
  pods[2].created = kNow - 40s;
  Decision decision = Decide(Spec(), JobStatus{}, pods, kNow, Options());
  EXPECT_TRUE(decision.create_ranks.empty());
  EXPECT_EQ(decision.status.state, kPending);
  EXPECT_EQ(decision.status.group_created_time, kNow - 40s);
  EXPECT_EQ(decision.status.start_time, kNow - 40s);
  EXPECT_EQ(decision.status.workers.pending, 4);
  const kube::Condition* created = FindCondition(decision, kCreated);
  ASSERT_NE(created, nullptr);
  EXPECT_EQ(created->status, kube::ConditionStatus::kTrue);
  ASSERT_EQ(decision.events.size(), 1u);  // the creating look did not say it: this one does
  EXPECT_EQ(decision.events[0].message, "created 4 worker pods");
}

TEST(MarkPodsCreatedTest, SaysWhatWasMissingAndWhichRestart) {
  JobStatus status;
  status.state = kPending;
  status.restarts = 1;
  status.group_created_time = kNow - 5s;
  status.start_time = kNow - 50s;
  Decision decision = Decide(Spec(), status, {Worker(0, Phase::kPodPending), Worker(2, Phase::kPodRunning)}, kNow, Options());
  ASSERT_EQ(decision.create_ranks, (std::vector<std::int64_t>{1, 3}));
  MarkPodsCreated(decision, status);
  EXPECT_EQ(decision.status.workers.pending, 3);  // rank 0 and the two new ones
  EXPECT_EQ(decision.status.workers.running, 1);
  ASSERT_EQ(decision.events.size(), 1u);
  EXPECT_EQ(decision.events[0].message, "created 2 of 4 worker pods again (restart 1)");

  Decision nothing = Decide(Spec(), status, Group(4, Phase::kPodRunning), kNow, Options());
  const size_t conditions = nothing.conditions.size();
  MarkPodsCreated(nothing, status);  // no creations: nothing changes
  EXPECT_EQ(nothing.conditions.size(), conditions);
  EXPECT_TRUE(nothing.events.empty() || nothing.events.back().reason != "PodsCreated");
}

TEST(DecideTest, InterruptedCreationCreatesOnlyTheMissingRanks) {
  // An operator restarted while creating: ranks 0 and 2 exist, 1 and 3 do not.
  JobStatus status;
  status.state = kPending;
  status.group_created_time = kNow - 5s;
  status.start_time = kNow - 5s;
  std::vector<WorkerObservation> workers = {Worker(0, Phase::kPodPending), Worker(2, Phase::kPodRunning)};
  Decision decision = Decide(Spec(), status, workers, kNow, Options());
  EXPECT_EQ(decision.create_ranks, (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(decision.status.group_created_time, kNow - 5s);  // the gang clock is not reset
  EXPECT_EQ(FindCondition(decision, kCreated), nullptr);     // not all created yet
  EXPECT_EQ(decision.status.restarts, 0);
}

TEST(DecideTest, AllRunningIsRunningWithCondition) {
  JobStatus status;
  status.state = kPending;
  status.group_created_time = kNow - 5s;
  status.start_time = kNow - 5s;
  Decision decision = Decide(Spec(), status, Group(4, Phase::kPodRunning), kNow, Options());
  EXPECT_TRUE(decision.create_ranks.empty());
  EXPECT_EQ(decision.status.state, kRunning);
  const kube::Condition* running = FindCondition(decision, kRunning);
  ASSERT_NE(running, nullptr);
  EXPECT_EQ(running->status, kube::ConditionStatus::kTrue);
  const kube::Condition* created = FindCondition(decision, kCreated);
  ASSERT_NE(created, nullptr);
  EXPECT_EQ(created->status, kube::ConditionStatus::kTrue);
  EXPECT_EQ(decision.status.workers.running, 4);
  EXPECT_EQ(decision.status.workers.total, 4);
}

TEST(DecideTest, RetryableFailureRestartsTheWholeGroupCounted) {
  std::vector<WorkerObservation> workers = Group(4, Phase::kPodRunning);
  workers[2] = Failed(2, 137);
  Decision decision = Decide(Spec(), Running(), workers, kNow, Options());
  EXPECT_EQ(decision.status.state, kRestarting);
  EXPECT_EQ(decision.status.restarts, 1);
  EXPECT_EQ(decision.status.disruptions, 0);
  EXPECT_EQ(decision.status.reason, "WorkerFailed");
  EXPECT_NE(decision.status.message.find("t-worker-2 exited with code 137"), std::string::npos) << decision.status.message;
  EXPECT_EQ(decision.delete_pods.size(), 4u);  // every rank, not only the failed one
  EXPECT_TRUE(decision.create_ranks.empty());
  const kube::Condition* restarting = FindCondition(decision, kRestarting);
  ASSERT_NE(restarting, nullptr);
  EXPECT_EQ(restarting->status, kube::ConditionStatus::kTrue);
}

TEST(DecideTest, RestartingWaitsForThePodsToGoThenForTheBackoff) {
  JobStatus status = Running();
  status.state = kRestarting;
  status.restarts = 2;
  status.restart_time = kNow - 500ms;
  // Pods still terminating: delete what is not yet deleting, create nothing.
  std::vector<WorkerObservation> workers = {Worker(0, Phase::kPodRunning), Worker(1, Phase::kPodFailed)};
  workers[1].deleting = true;
  Decision waiting = Decide(Spec(), status, workers, kNow, Options());
  EXPECT_EQ(waiting.delete_pods, (std::vector<std::string>{"t-worker-0"}));
  EXPECT_TRUE(waiting.create_ranks.empty());
  // Gone, but the backoff (1 s * 2^(2-1) = 2 s) has not elapsed: look again when it has.
  Decision backoff = Decide(Spec(), status, {}, kNow, Options());
  EXPECT_TRUE(backoff.create_ranks.empty());
  ASSERT_TRUE(backoff.requeue_after.has_value());
  EXPECT_NEAR(double(backoff.requeue_after->count()), 1500.0, 5.0);
  // After it: the new group, the same names.
  Decision again = Decide(Spec(), status, {}, kNow + 2s, Options());
  EXPECT_EQ(again.create_ranks, (std::vector<std::int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(again.status.state, kPending);
  EXPECT_EQ(again.status.restarts, 2);
  EXPECT_EQ(again.status.group_created_time, kNow + 2s);
}

TEST(DecideTest, PermanentExitCodeFailsAtOnce) {
  std::vector<WorkerObservation> workers = Group(4, Phase::kPodRunning);
  workers[1] = Failed(1, 1);
  workers[1].message = "rank 1: error: dataset not found";
  Decision decision = Decide(Spec(), Running(), workers, kNow, Options());
  EXPECT_EQ(decision.status.state, kFailed);
  EXPECT_EQ(decision.status.reason, "PermanentFailure");
  EXPECT_NE(decision.status.message.find("dataset not found"), std::string::npos);
  EXPECT_EQ(decision.status.restarts, 0);
  EXPECT_EQ(decision.status.completion_time, kNow);
  const kube::Condition* failed = FindCondition(decision, kFailed);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->status, kube::ConditionStatus::kTrue);
  // cleanPodPolicy Running (the default): the running ranks are stopped, the failed one kept.
  EXPECT_EQ(decision.delete_pods.size(), 3u);
  EXPECT_EQ(std::count(decision.delete_pods.begin(), decision.delete_pods.end(), "t-worker-1"), 0);
}

TEST(DecideTest, PeersThatLostTheFailedRankDoNotMakeItPermanent) {
  // Rank 2 was killed (137); its peers noticed at once and exited with 2 ("a peer failed"),
  // which alone would be permanent. The wave's retryable cause decides: a counted restart.
  std::vector<WorkerObservation> workers = {Failed(0, 2), Failed(1, 2), Failed(2, 137), Failed(3, 2)};
  workers[2].finished = kNow - 11s;
  Decision decision = Decide(Spec(), Running(), workers, kNow, Options());
  EXPECT_EQ(decision.status.state, kRestarting);
  EXPECT_EQ(decision.status.restarts, 1);
  EXPECT_NE(decision.status.message.find("t-worker-2"), std::string::npos) << decision.status.message;
  // A later failure (outside the wave) does not change the verdict of the first.
  workers = {Failed(0, 1), Failed(1, 137)};
  workers[1].finished = kNow - 5s;
  EXPECT_EQ(Decide(Spec("", 2), Running(), workers, kNow, Options()).status.state, kFailed);
}

TEST(DecideTest, APermanentCodeWaitsForTheGroupToSettle) {
  // Only a peer's exit 2 is visible yet, the others still run: the rank that really died may
  // not have reported. Wait (kFailureSettle), then decide.
  std::vector<WorkerObservation> workers = Group(4, Phase::kPodRunning);
  workers[0] = Failed(0, 2);
  workers[0].finished = kNow - 1s;
  Decision waiting = Decide(Spec(), Running(), workers, kNow, Options());
  EXPECT_EQ(waiting.status.state, kRunning);
  EXPECT_TRUE(waiting.delete_pods.empty());
  ASSERT_TRUE(waiting.requeue_after.has_value());
  EXPECT_NEAR(double(waiting.requeue_after->count()), 4000.0, 5.0);
  workers[3] = Failed(3, 143);  // the killed rank reports
  workers[3].finished = kNow - 1s;
  EXPECT_EQ(Decide(Spec(), Running(), workers, kNow, Options()).status.state, kRestarting);
  workers[3] = Worker(3, Phase::kPodRunning);
  EXPECT_EQ(Decide(Spec(), Running(), workers, kNow + 4s, Options()).status.state, kFailed);
}

TEST(DecideTest, FailurePolicyRulesOverrideTheDefaults) {
  api::TrainingJobSpec spec = Spec("  failurePolicy:\n    rules:\n    - {exitCodes: [3], action: Retry}\n    - {exitCodes: [137], action: Fail}\n");
  std::vector<WorkerObservation> workers = Group(4, Phase::kPodRunning);
  workers[0] = Failed(0, 3);
  EXPECT_EQ(Decide(spec, Running(), workers, kNow, Options()).status.state, kRestarting);
  workers[0] = Failed(0, 137);
  EXPECT_EQ(Decide(spec, Running(), workers, kNow, Options()).status.state, kFailed);
}

TEST(DecideTest, BackoffLimitExceededFails) {
  api::TrainingJobSpec spec = Spec("  runPolicy: {backoffLimit: 2}\n");
  JobStatus status = Running();
  status.restarts = 2;
  std::vector<WorkerObservation> workers = Group(4, Phase::kPodRunning);
  workers[3] = Failed(3, 143);
  Decision decision = Decide(spec, status, workers, kNow, Options());
  EXPECT_EQ(decision.status.state, kFailed);
  EXPECT_EQ(decision.status.reason, "BackoffLimitExceeded");
  EXPECT_EQ(decision.status.restarts, 2);
  EXPECT_NE(decision.status.message.find("backoffLimit is 2"), std::string::npos) << decision.status.message;
}

TEST(DecideTest, EvictionAndNodeLossDoNotCount) {
  api::TrainingJobSpec spec = Spec("  runPolicy: {backoffLimit: 0}\n");
  std::vector<WorkerObservation> workers = Group(4, Phase::kPodRunning);
  workers[1] = Failed(1, 143);
  workers[1].disrupted = true;  // DisruptionTarget: evicted
  Decision decision = Decide(spec, Running(), workers, kNow, Options());
  EXPECT_EQ(decision.status.state, kRestarting);
  EXPECT_EQ(decision.status.restarts, 0);
  EXPECT_EQ(decision.status.disruptions, 1);
  EXPECT_EQ(decision.status.reason, "WorkerDisrupted");

  // A worker deleted by someone else while running, and one that vanished, likewise.
  workers = Group(4, Phase::kPodRunning);
  workers[2].deleting = true;
  EXPECT_EQ(Decide(spec, Running(), workers, kNow, Options()).status.disruptions, 1);
  workers = Group(3, Phase::kPodRunning);
  Decision vanished = Decide(spec, Running(), workers, kNow, Options());
  EXPECT_EQ(vanished.status.state, kRestarting);
  EXPECT_EQ(vanished.status.disruptions, 1);
  EXPECT_TRUE(vanished.create_ranks.empty());
}

TEST(DecideTest, RankZeroSuccessSucceedsWithTheResult) {
  std::vector<WorkerObservation> workers = Group(4, Phase::kPodSucceeded);
  workers[0].message = R"({"metrics":{"testAccuracy":0.97,"loss":0.1}})";
  workers[3].phase = Phase::kPodRunning;  // still shutting down
  JobStatus status = Running();
  status.progress = {{"step", 10}};
  Decision decision = Decide(Spec(), status, workers, kNow, Options());
  EXPECT_EQ(decision.status.state, kSucceeded);
  EXPECT_DOUBLE_EQ(decision.status.result["metrics"]["testAccuracy"].get<double>(), 0.97);
  EXPECT_TRUE(decision.status.progress.is_null());
  EXPECT_EQ(decision.delete_pods, (std::vector<std::string>{"t-worker-3"}));  // cleanPodPolicy Running
  const kube::Condition* succeeded = FindCondition(decision, kSucceeded);
  ASSERT_NE(succeeded, nullptr);
  EXPECT_EQ(succeeded->status, kube::ConditionStatus::kTrue);
  // A message that is not JSON is kept as text.
  workers[0].message = "done";
  EXPECT_EQ(Decide(Spec(), status, workers, kNow, Options()).status.result["message"], "done");
}

TEST(DecideTest, AWorkerThatFailedBeforeRankZeroFinishedRestartsHoweverLateTheLook) {
  // A slow look (a backlog, a low-priority queue) first sees the group after rank 0 has
  // also finished: the failure came first, so the group restarts rather than succeeding.
  std::vector<WorkerObservation> workers = Group(4, Phase::kPodSucceeded);
  workers[0].finished = kNow - 5s;
  workers[2] = Failed(2, 137);  // finished kNow - 10s
  Decision decision = Decide(Spec(), Running(), workers, kNow, Options());
  EXPECT_EQ(decision.status.state, kRestarting);
  EXPECT_EQ(decision.status.reason, "WorkerFailed");
  EXPECT_EQ(decision.status.restarts, 1);
  // A failure at the same time as rank 0's end, or after it, leaves the success standing.
  workers[2].finished = kNow - 5s;
  EXPECT_EQ(Decide(Spec(), Running(), workers, kNow, Options()).status.state, kSucceeded);
  workers[2].finished = kNow - 1s;
  EXPECT_EQ(Decide(Spec(), Running(), workers, kNow, Options()).status.state, kSucceeded);
  // So does a rank 0 whose end time is unknown.
  workers[0].finished.reset();
  workers[2].finished = kNow - 10s;
  EXPECT_EQ(Decide(Spec(), Running(), workers, kNow, Options()).status.state, kSucceeded);
}

TEST(DecideTest, CleanPodPolicyAfterTheEnd) {
  JobStatus done = Running();
  done.state = kSucceeded;
  done.completion_time = kNow - 1s;
  std::vector<WorkerObservation> workers = {Worker(0, Phase::kPodSucceeded), Worker(1, Phase::kPodRunning)};
  EXPECT_EQ(Decide(Spec("  runPolicy: {cleanPodPolicy: None}\n"), done, workers, kNow, Options()).delete_pods.size(), 0u);
  EXPECT_EQ(Decide(Spec("  runPolicy: {cleanPodPolicy: Running}\n"), done, workers, kNow, Options()).delete_pods,
            (std::vector<std::string>{"t-worker-1"}));
  EXPECT_EQ(Decide(Spec("  runPolicy: {cleanPodPolicy: All}\n"), done, workers, kNow, Options()).delete_pods.size(), 2u);
  // A finished job never creates pods again.
  EXPECT_TRUE(Decide(Spec(), done, {}, kNow, Options()).create_ranks.empty());
}

TEST(DecideTest, TtlDeletesTheFinishedJob) {
  api::TrainingJobSpec spec = Spec("  runPolicy: {ttlSecondsAfterFinished: 30}\n");
  JobStatus done = Running();
  done.state = kFailed;
  done.completion_time = kNow - 10s;
  Decision early = Decide(spec, done, {}, kNow, Options());
  EXPECT_FALSE(early.delete_job);
  ASSERT_TRUE(early.requeue_after.has_value());
  EXPECT_NEAR(double(early.requeue_after->count()), 20000.0, 5.0);
  EXPECT_TRUE(Decide(spec, done, {}, kNow + 20s, Options()).delete_job);
  EXPECT_FALSE(Decide(Spec(), done, {}, kNow + 1000s, Options()).delete_job);  // no TTL: kept
}

TEST(DecideTest, ActiveDeadlineFailsAndStopsThePods) {
  api::TrainingJobSpec spec = Spec("  runPolicy: {activeDeadlineSeconds: 60, cleanPodPolicy: None}\n");
  JobStatus status = Running();
  status.start_time = kNow - 30s;
  Decision before = Decide(spec, status, Group(4, Phase::kPodRunning), kNow, Options());
  EXPECT_EQ(before.status.state, kRunning);
  ASSERT_TRUE(before.requeue_after.has_value());
  EXPECT_LE(before.requeue_after->count(), 30001);
  status.start_time = kNow - 61s;
  Decision after = Decide(spec, status, Group(4, Phase::kPodRunning), kNow, Options());
  EXPECT_EQ(after.status.state, kFailed);
  EXPECT_EQ(after.status.reason, "DeadlineExceeded");
  EXPECT_EQ(after.delete_pods.size(), 4u);  // running pods stop even with cleanPodPolicy None
}

TEST(DecideTest, SuspendDeletesPodsAndResumeStartsAgain) {
  api::TrainingJobSpec suspended = Spec("  runPolicy: {suspend: true}\n");
  JobStatus status = Running();
  status.restarts = 1;
  Decision decision = Decide(suspended, status, Group(4, Phase::kPodRunning), kNow, Options());
  EXPECT_EQ(decision.status.state, kSuspended);
  EXPECT_EQ(decision.delete_pods.size(), 4u);
  EXPECT_FALSE(decision.status.start_time.has_value());
  EXPECT_EQ(decision.status.restarts, 1);  // the status is kept
  const kube::Condition* condition = FindCondition(decision, kSuspended);
  ASSERT_NE(condition, nullptr);
  EXPECT_EQ(condition->status, kube::ConditionStatus::kTrue);
  // Suspended before it ever started: no pods are created.
  EXPECT_TRUE(Decide(suspended, JobStatus{}, {}, kNow, Options()).create_ranks.empty());

  Decision resumed = Decide(Spec(), decision.status, {}, kNow + 5s, Options());
  EXPECT_EQ(resumed.create_ranks.size(), 4u);
  EXPECT_EQ(resumed.status.state, kPending);
  EXPECT_EQ(resumed.status.start_time, kNow + 5s);
  condition = FindCondition(resumed, kSuspended);
  ASSERT_NE(condition, nullptr);
  EXPECT_EQ(condition->status, kube::ConditionStatus::kFalse);
}

// A group created at `at`, not yet running.
JobStatus PendingSince(TimePoint at) {
  JobStatus status;
  status.state = kPending;
  status.start_time = at;
  status.group_created_time = at;
  return status;
}

TEST(DecideTest, GangTimeoutReleasesEveryPodAndSaysWhy) {
  api::TrainingJobSpec spec = Spec("  gang: {timeoutSeconds: 30}\n");
  JobStatus status = PendingSince(kNow - 31s);
  std::vector<WorkerObservation> workers = Group(4, Phase::kPodRunning);
  for (WorkerObservation& worker : workers) worker.created = kNow - 31s;
  workers[3].phase = Phase::kPodPending;  // not bound to a node
  Decision within = Decide(spec, status, workers, kNow - 2s, Options());
  EXPECT_EQ(within.status.state, kPending);
  ASSERT_TRUE(within.requeue_after.has_value());
  Decision decision = Decide(spec, status, workers, kNow, Options());
  EXPECT_EQ(decision.status.state, kRestarting);
  EXPECT_EQ(decision.status.reason, "GangTimeout");
  EXPECT_NE(decision.status.message.find("only 3 of 4 workers"), std::string::npos) << decision.status.message;
  EXPECT_NE(decision.status.message.find("t-worker-3"), std::string::npos);
  EXPECT_EQ(decision.delete_pods.size(), 4u);
  EXPECT_EQ(decision.status.restarts, 1);
}

// At scale the group's pods are created long after the group began (a backlog in the
// operator, a slow API server): the gang clock starts at the last pod's creation.
TEST(DecideTest, GangClockStartsWhenTheLastPodWasCreated) {
  api::TrainingJobSpec spec = Spec("  gang: {timeoutSeconds: 30}\n");
  JobStatus status = PendingSince(kNow - 100s);
  std::vector<WorkerObservation> workers = Group(4, Phase::kPodPending);
  for (WorkerObservation& worker : workers) worker.created = kNow - 95s;
  workers[3].created = kNow - 20s;  // created 80 s after the group began
  Decision within = Decide(spec, status, workers, kNow, Options());
  EXPECT_EQ(within.status.state, kPending) << within.status.message;
  ASSERT_TRUE(within.requeue_after.has_value());
  EXPECT_EQ(*within.requeue_after, 10'001ms) << "30 s after the last creation";
  Decision later = Decide(spec, status, workers, kNow + 10s, Options());
  EXPECT_EQ(later.status.reason, "GangTimeout");
  EXPECT_NE(later.status.message.find("only 0 of 4 workers were placed"), std::string::npos) << later.status.message;
}

// Bound pods hold their node's resources already: a slow start (kwok or kubelets behind)
// is no gang failure.
TEST(DecideTest, GangIsMetOnceEveryWorkerIsBound) {
  api::TrainingJobSpec spec = Spec("  gang: {timeoutSeconds: 30}\n");
  JobStatus status = PendingSince(kNow - 600s);
  std::vector<WorkerObservation> workers = Group(4, Phase::kPodPending);
  for (WorkerObservation& worker : workers) {
    worker.created = kNow - 600s;
    worker.scheduled = true;
  }
  Decision decision = Decide(spec, status, workers, kNow, Options());
  EXPECT_EQ(decision.status.state, kPending);
  EXPECT_TRUE(decision.delete_pods.empty());
  EXPECT_EQ(decision.status.restarts, 0);
  workers[2].scheduled = false;
  EXPECT_EQ(Decide(spec, status, workers, kNow, Options()).status.reason, "GangTimeout");
}

TEST(DecideTest, PodThatCannotStartFailsAfterTheBoundedWait) {
  JobStatus status;
  status.state = kPending;
  status.start_time = kNow - 5s;
  status.group_created_time = kNow - 5s;
  std::vector<WorkerObservation> workers = Group(2, Phase::kPodRunning);
  workers[1].phase = Phase::kPodPending;
  workers[1].reason = "CreateContainerConfigError";
  workers[1].message = "secret \"data-creds\" not found";
  workers[1].created = kNow - 30s;
  Decision waiting = Decide(Spec("", 2), status, workers, kNow, Options());
  EXPECT_EQ(waiting.status.state, kPending);
  ASSERT_TRUE(waiting.requeue_after.has_value());
  EXPECT_LE(waiting.requeue_after->count(), 30001);
  Decision failed = Decide(Spec("", 2), status, workers, kNow + 31s, Options());
  EXPECT_EQ(failed.status.state, kFailed);
  EXPECT_EQ(failed.status.reason, "WorkerCannotStart");
  EXPECT_NE(failed.status.message.find("secret \"data-creds\" not found"), std::string::npos);
  EXPECT_EQ(failed.delete_pods.size(), 2u);
}

TEST(DecideTest, PodsOfRanksBeyondReplicasAreDeleted) {
  std::vector<WorkerObservation> workers = Group(4, Phase::kPodRunning);
  workers.push_back(Worker(7, Phase::kPodRunning));
  WorkerObservation unlabelled = Worker(0, Phase::kPodRunning);
  unlabelled.rank = -1;
  unlabelled.name = "t-worker-x";
  workers.push_back(unlabelled);
  Decision decision = Decide(Spec(), Running(), workers, kNow, Options());
  EXPECT_EQ(decision.delete_pods, (std::vector<std::string>{"t-worker-7", "t-worker-x"}));
  EXPECT_EQ(decision.status.state, kRunning);
}

TEST(RestartBackoffTest, DoublesUpToTheCap) {
  DecideOptions options = Options();
  EXPECT_EQ(RestartBackoff(1, options), 1000ms);
  EXPECT_EQ(RestartBackoff(2, options), 2000ms);
  EXPECT_EQ(RestartBackoff(4, options), 8000ms);
  EXPECT_EQ(RestartBackoff(60, options), 8000ms);
  EXPECT_EQ(RestartBackoff(0, options), 1000ms);
}

TEST(ObserveWorkerTest, ReadsPhaseExitCodeAndDisruption) {
  Object pod = Object::parse(R"({
    "metadata": {"name": "t-worker-2", "labels": {"mlscale.io/replica-index": "2"},
                 "creationTimestamp": "2026-12-01T10:00:00Z"},
    "spec": {"nodeName": "n1"},
    "status": {"phase": "Failed", "podIP": "127.64.0.9",
               "conditions": [{"type": "DisruptionTarget", "status": "True"}],
               "containerStatuses": [{"name": "sidecar", "state": {"running": {}}},
                                     {"name": "worker", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                                                 "message": "killed"}}}]}})");
  WorkerObservation worker = ObserveWorker(pod, true);
  EXPECT_EQ(worker.rank, 2);
  EXPECT_EQ(worker.phase, Phase::kPodFailed);
  EXPECT_EQ(worker.exit_code, 137);
  EXPECT_EQ(worker.reason, "OOMKilled");
  EXPECT_EQ(worker.message, "killed");
  EXPECT_TRUE(worker.disrupted);
  EXPECT_EQ(worker.pod_ip, "127.64.0.9");
  EXPECT_EQ(worker.created, ParseTime("2026-12-01T10:00:00Z"));
  // Its node gone: disrupted too.
  pod["status"]["conditions"] = Object::array();
  EXPECT_FALSE(ObserveWorker(pod, true).disrupted);
  EXPECT_TRUE(ObserveWorker(pod, false).disrupted);
}

// The pod cache keeps only ProjectWorkerPod's fields: what ObserveWorker reads of a pod
// must be the same before and after.
TEST(ProjectWorkerPodTest, ObserveWorkerReadsTheSameAfterProjection) {
  const char* pods[] = {
      R"({"apiVersion": "v1", "kind": "Pod",
          "metadata": {"name": "t-worker-2", "namespace": "ns", "uid": "u-2", "resourceVersion": "7",
                       "labels": {"mlscale.io/replica-index": "2", "mlscale.io/job-name": "t"},
                       "annotations": {"a": "b"}, "ownerReferences": [{"uid": "job-uid", "controller": true}],
                       "creationTimestamp": "2026-12-01T10:00:00Z", "deletionTimestamp": "2026-12-01T10:05:00Z",
                       "managedFields": [{"manager": "kubelet"}]},
          "spec": {"nodeName": "n1", "containers": [{"name": "worker", "image": "x"}], "volumes": [{}]},
          "status": {"phase": "Failed", "podIP": "127.64.0.9", "reason": "Evicted", "message": "low memory",
                     "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"},
                                    {"type": "DisruptionTarget", "status": "True", "reason": "x"}],
                     "containerStatuses": [{"name": "sidecar", "state": {"running": {}}},
                                           {"name": "worker", "ready": false, "image": "x",
                                            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                                     "message": "killed", "containerID": "c",
                                                                     "finishedAt": "2026-12-01T10:04:00Z"}}}]}})",
      R"({"metadata": {"name": "w", "labels": {"mlscale.io/replica-index": "0"}},
          "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "True"}],
                     "containerStatuses": [{"name": "main", "state": {"waiting": {"reason": "ErrImagePull",
                                                                                   "message": "no such image"}}}]}})",
      R"({"status": {"phase": "Running", "containerStatuses": [{"name": "worker", "state": {"terminated": {"startedAt": "x"}}}]}})",
      R"({"status": {"containerStatuses": [{"state": {"waiting": {}}}]}})",
      R"({})", R"({"metadata": 3, "status": []})", R"([1, 2])",
      R"({"status": {"phase": 5, "containerStatuses": [3, {"state": {"terminated": {"exitCode": "x"}}}]}})",
      R"({"status": {"containerStatuses": {"a": 1}, "conditions": "x"}})"};
  for (const char* text : pods) {
    SCOPED_TRACE(text);
    const Object pod = Object::parse(text);
    Object projected = pod;
    ProjectWorkerPod(projected);
    for (bool node_exists : {true, false}) EXPECT_EQ(ObserveWorker(projected, node_exists), ObserveWorker(pod, node_exists));
    if (pod.is_object() && pod.contains("metadata") && pod["metadata"].is_object()) {
      EXPECT_EQ(projected["metadata"].value("uid", ""), pod["metadata"].value("uid", ""));
      EXPECT_EQ(projected["metadata"].value("ownerReferences", Object()), pod["metadata"].value("ownerReferences", Object()));
      EXPECT_FALSE(projected["metadata"].contains("managedFields"));
      EXPECT_FALSE(projected["metadata"].contains("annotations"));
    }
  }
}

TEST(ObserveWorkerTest, MalformedPodsReadAsUnknownNotACrash) {
  for (const char* text : {R"({})", R"({"metadata": 3, "status": []})",
                           R"({"metadata": {"labels": {"mlscale.io/replica-index": "abc"}}})",
                           R"({"metadata": {"labels": {"mlscale.io/replica-index": "99999999999999999999"}}})",
                           R"({"metadata": {"labels": {"mlscale.io/replica-index": 3}}})",
                           R"({"status": {"phase": 5, "containerStatuses": [3, {"state": {"terminated": {"exitCode": "x"}}}]}})",
                           R"({"status": {"containerStatuses": {"a": 1}, "conditions": "x"}})"}) {
    SCOPED_TRACE(text);
    WorkerObservation worker = ObserveWorker(Object::parse(text), true);
    EXPECT_EQ(worker.rank, -1);
    EXPECT_EQ(worker.phase, Phase::kPodPending);
    EXPECT_FALSE(worker.exit_code.has_value());
  }
}

TEST(StatusTest, WriteThenReadKeepsEverything) {
  JobStatus status = Running();
  status.reason = "WorkerFailed";
  status.restarts = 2;
  status.disruptions = 1;
  status.restart_time = kNow;
  status.completion_time = kNow + 5s;
  status.workers = {4, 1, 2, 2, 1, 0};
  status.progress = {{"step", 3}};
  status.result = {{"metrics", {{"testAccuracy", 0.9}}}};
  Object written = {{"conditions", Object::array({{{"type", "Running"}}})}};
  WriteStatus(status, written);
  EXPECT_TRUE(written.contains("conditions"));  // untouched
  EXPECT_EQ(written["workersReady"], "2/4");     // the printer column
  JobStatus read = ReadStatus(written);
  EXPECT_EQ(read.state, status.state);
  EXPECT_EQ(read.reason, status.reason);
  EXPECT_EQ(read.restarts, 2);
  EXPECT_EQ(read.disruptions, 1);
  EXPECT_EQ(read.start_time, status.start_time);
  EXPECT_EQ(read.restart_time, status.restart_time);
  EXPECT_EQ(read.completion_time, status.completion_time);
  EXPECT_EQ(read.workers, status.workers);
  EXPECT_EQ(read.progress, status.progress);
  EXPECT_EQ(read.result, status.result);
  // Malformed fields read as absent.
  JobStatus bad = ReadStatus(Object::parse(R"({"state": 3, "restarts": "x", "startTime": "yesterday", "workers": []})"));
  EXPECT_EQ(bad.state, "");
  EXPECT_EQ(bad.restarts, 0);
  EXPECT_FALSE(bad.start_time.has_value());
}

TEST(TimeTest, ParsesRfc3339AndRejectsTheRest) {
  EXPECT_EQ(ParseTime("2027-01-15T08:00:00Z"), kNow);
  EXPECT_EQ(FormatTime(kNow), "2027-01-15T08:00:00Z");
  EXPECT_EQ(ParseTime(FormatTime(kNow)), kNow);
  EXPECT_EQ(ParseTime("2027-01-15T08:00:00.250Z"), kNow + 250ms);
  for (const char* bad : {"", "2027-01-15", "2027-01-15T08:00:00", "2027-01-15T08:00:00+01:00", "x2027-01-15T08:00:00Z",
                          "2027-01-15T08:00:00Zjunk"}) {
    EXPECT_FALSE(ParseTime(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace mlscale::controllers::trainingjob
