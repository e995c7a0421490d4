// The HyperparameterSweep controller's pure parts without an API server: trials read
// from child TrainingJobs (trials.h), the decisions (sweep_state.h) and the off-worker
// Suggester.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "mlscale/controllers/sweep/own_writes.h"
#include "mlscale/controllers/sweep/suggester.h"
#include "mlscale/controllers/sweep/sweep_state.h"
#include "mlscale/controllers/sweep/trials.h"
#include "mlscale/hpo/json.h"
#include "mlscale/kube/objects.h"

namespace mlscale::controllers::sweep {
namespace {

using namespace std::chrono_literals;

const TimePoint kNow = std::chrono::system_clock::from_time_t(1'800'000'000);

std::string SweepYaml(const std::string& extra) {
  return "apiVersion: mlscale.io/v1alpha1\nkind: HyperparameterSweep\nmetadata: {name: s, namespace: ns}\nspec:\n"
         "  objective: {metric: testAccuracy, direction: maximize}\n"
         "  algorithm: {name: random, seed: 3}\n"
         "  parameters:\n"
         "    - {name: lr, type: float, min: 0.0001, max: 0.1, scale: log}\n"
         "    - {name: width, type: int, min: 16, max: 128, step: 16}\n"
         "    - {name: optimizer, type: categorical, choices: [adam, sgd]}\n"
         "  trialTemplate:\n"
         "    spec:\n"
         "      replicas: 1\n"
         "      trainer:\n"
         "        model: {hiddenLayers: [\"${params.width}\"]}\n"
         "        optimizer: {name: \"${params.optimizer}\", learningRate: \"${params.lr}\"}\n"
         "        epochs: 2\n" +
         extra;
}

api::HyperparameterSweep Sweep(const std::string& extra = "  maxTrials: 6\n  parallelTrials: 2\n") {
  StatusOr<api::HyperparameterSweep> sweep = api::ParseSweep(SweepYaml(extra), nullptr);
  EXPECT_TRUE(sweep.ok()) << sweep.status().ToString();
  return sweep.ok() ? *sweep : api::HyperparameterSweep{};
}

Object SweepObject() {
  return {{"apiVersion", "mlscale.io/v1alpha1"},
          {"kind", "HyperparameterSweep"},
          {"metadata", {{"name", "s"}, {"namespace", "ns"}, {"uid", "sweep-uid"}}}};
}

hpo::Assignment Assignment(double lr, std::int64_t width = 32, const std::string& optimizer = "adam") {
  return {{"lr", lr}, {"width", width}, {"optimizer", optimizer}};
}

// A child TrainingJob as the cache holds it: BuildTrial's object plus a uid and a status.
Object Child(const api::HyperparameterSweep& sweep, std::int64_t index, const hpo::Assignment& assignment,
             Object status = Object::object()) {
  StatusOr<Object> job = BuildTrial(sweep, SweepObject(), index, assignment, nullptr);
  EXPECT_TRUE(job.ok()) << job.status().ToString();
  Object child = job.ok() ? *job : Object::object();
  child["metadata"]["uid"] = "uid-" + std::to_string(index);
  child["status"] = std::move(status);
  return child;
}

Object Succeeded(double accuracy) {
  return {{"state", "Succeeded"}, {"result", {{"metrics", {{"testAccuracy", accuracy}}}}}};
}

// A running trial whose latest evaluation, at `step`, gave `accuracy` (the sweeps' objective
// here: testAccuracy, maximize); its training loss says the opposite, so a rule judging the
// loss would decide otherwise.
Object Running(std::int64_t step, double accuracy, std::int64_t total = 640) {
  return {{"state", "Running"},
          {"progress",
           {{"step", step + 3},
            {"totalSteps", total},
            {"loss", accuracy},
            {"phase", "training"},
            {"evaluation", {{"step", step}, {"metrics", {{"testAccuracy", accuracy}, {"loss", accuracy}}}}}}}};
}

Trial Observed(const api::HyperparameterSweep& sweep, std::int64_t index, const hpo::Assignment& assignment,
               Object status = Object::object()) {
  return ObserveTrial(sweep.spec, Child(sweep, index, assignment, std::move(status)));
}

TEST(BuildTrial, NamesLabelsAnnotatesAndOwnsTheTrial) {
  api::HyperparameterSweep sweep = Sweep();
  Object job = Child(sweep, 7, Assignment(0.01, 48, "sgd"));
  EXPECT_EQ(job["metadata"]["name"], "s-7");
  EXPECT_EQ(job["metadata"]["namespace"], "ns");
  EXPECT_EQ(job["metadata"]["labels"][kSweepNameLabel], "s");
  EXPECT_EQ(job["metadata"]["labels"][kTrialIndexLabel], "7");
  std::optional<Object> owner = kube::ControllerOf(job);
  ASSERT_TRUE(owner);
  EXPECT_EQ((*owner)["uid"], "sweep-uid");
  EXPECT_EQ((*owner)["kind"], "HyperparameterSweep");
  // Typed values where a placeholder was the whole string.
  EXPECT_EQ(job["spec"]["trainer"]["model"]["hiddenLayers"][0], 48);
  EXPECT_EQ(job["spec"]["trainer"]["optimizer"]["name"], "sgd");
  EXPECT_DOUBLE_EQ(job["spec"]["trainer"]["optimizer"]["learningRate"].get<double>(), 0.01);
  // The annotation gives the assignment back exactly.
  Trial trial = ObserveTrial(sweep.spec, job);
  ASSERT_TRUE(trial.assignment);
  EXPECT_EQ(hpo::AssignmentKey(*trial.assignment), hpo::AssignmentKey(Assignment(0.01, 48, "sgd")));
  EXPECT_EQ(trial.index, 7);
  EXPECT_EQ(trial.phase, TrialPhase::kActive);
}

TEST(BuildTrial, LongSweepNamesGiveDistinctDnsLabels) {
  const std::string long_name(63, 'a');
  std::set<std::string> names;
  for (std::int64_t index : {0, 1, 99999}) {
    std::string name = TrialJobName(long_name, index);
    EXPECT_LE(name.size(), 63u) << name;
    EXPECT_TRUE(name.ends_with("-" + std::to_string(index))) << name;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), 3u);
  EXPECT_EQ(TrialJobName("digits", 3), "digits-3");
}

// The local CLI (api::TrialName) names a sweep's trials as the controller does, for every
// sweep name that begins with a letter, short or long.
TEST(BuildTrial, TrialNamesAgreeWithTheLocalCli) {
  for (const std::string& sweep : {std::string("digits"), std::string(61, 'a'), std::string(62, 'a'),
                                   std::string(58, 'a') + "-bbbb", std::string(50, 'b') + "-" + std::string(12, 'c')}) {
    for (std::int64_t index : {0, 7, 12, 99999}) {
      EXPECT_EQ(api::TrialName(sweep, index), TrialJobName(sweep, index)) << sweep << " " << index;
    }
  }
}

TEST(BuildTrial, RefusesAnAssignmentTheTemplateCannotTake) {
  api::HyperparameterSweep sweep = Sweep();
  hpo::Assignment missing = {{"lr", 0.01}, {"width", std::int64_t{32}}};  // no optimizer
  StatusOr<Object> job = BuildTrial(sweep, SweepObject(), 0, missing, nullptr);
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("optimizer"), std::string::npos) << job.status().message();
}

TEST(ObserveTrial, ReadsTheObjectiveFromTheResult) {
  api::HyperparameterSweep sweep = Sweep();
  Trial trial = Observed(sweep, 0, Assignment(0.01), Succeeded(0.93));
  EXPECT_EQ(trial.phase, TrialPhase::kSucceeded);
  EXPECT_DOUBLE_EQ(*trial.value, 0.93);
}

TEST(ObserveTrial, ASuccessWithoutTheObjectiveIsAFailureNamingIt) {
  api::HyperparameterSweep sweep = Sweep();
  Trial trial = Observed(sweep, 0, Assignment(0.01), {{"state", "Succeeded"}, {"result", {{"metrics", {{"loss", 1}}}}}});
  EXPECT_EQ(trial.phase, TrialPhase::kFailed);
  EXPECT_NE(trial.message.find("status.result.metrics.testAccuracy"), std::string::npos) << trial.message;
}

TEST(ObserveTrial, AFailedJobKeepsItsReason) {
  api::HyperparameterSweep sweep = Sweep();
  Trial trial = Observed(sweep, 0, Assignment(0.01),
                         {{"state", "Failed"}, {"reason", "PermanentFailure"}, {"message", "rank 0 exited 3"}});
  EXPECT_EQ(trial.phase, TrialPhase::kFailed);
  EXPECT_EQ(trial.message, "PermanentFailure: rank 0 exited 3");
}

TEST(ObserveTrial, AStoppedTrialIsStoppingUntilItsJobIsSuspended) {
  api::HyperparameterSweep sweep = Sweep();
  Object job = Child(sweep, 2, Assignment(0.01), Running(100, 0.5));
  job["metadata"]["annotations"][kEarlyStoppedAnnotation] = "asha rule at step 100";
  EXPECT_EQ(ObserveTrial(sweep.spec, job).phase, TrialPhase::kStopping);
  job["status"] = {{"state", "Suspended"}};
  Trial trial = ObserveTrial(sweep.spec, job);
  EXPECT_EQ(trial.phase, TrialPhase::kEarlyStopped);
  EXPECT_EQ(trial.message, "asha rule at step 100");
  // One that finished before the stop took effect counts as finished.
  job["status"] = Succeeded(0.9);
  EXPECT_EQ(ObserveTrial(sweep.spec, job).phase, TrialPhase::kSucceeded);
}

TEST(ObserveTrial, DamagedChildrenAreFailedTrialsNamingTheField) {
  api::HyperparameterSweep sweep = Sweep();
  Object job = Child(sweep, 1, Assignment(0.01));
  Object bad_index = job;
  bad_index["metadata"]["labels"][kTrialIndexLabel] = "one";
  Trial trial = ObserveTrial(sweep.spec, bad_index);
  EXPECT_EQ(trial.phase, TrialPhase::kFailed);
  EXPECT_NE(trial.message.find(kTrialIndexLabel), std::string::npos);
  for (const std::string& text : {std::string("not json"), std::string("{\"lr\": 0.01}"),
                                  std::string("{\"lr\": 5, \"width\": 32, \"optimizer\": \"adam\"}")}) {
    Object bad = job;
    bad["metadata"]["annotations"][kAssignmentAnnotation] = text;
    trial = ObserveTrial(sweep.spec, bad);
    EXPECT_EQ(trial.phase, TrialPhase::kFailed) << text;
    EXPECT_FALSE(trial.assignment) << text;
    EXPECT_NE(trial.message.find(kAssignmentAnnotation), std::string::npos) << trial.message;
  }
  EXPECT_TRUE(SamplerHistory({trial}, false).empty());
}

TEST(ObserveTrial, RecordedReadingsThenTheLiveOne) {
  api::HyperparameterSweep sweep = Sweep();
  Object job = Child(sweep, 0, Assignment(0.01), Running(300, 0.4));
  job["metadata"]["annotations"][kIntermediateAnnotation] = "[[100,0.9],[200,0.6]]";
  Trial trial = ObserveTrial(sweep.spec, job);
  ASSERT_EQ(trial.intermediate.size(), 3u);
  EXPECT_EQ(trial.recorded, 2u);
  EXPECT_EQ(trial.intermediate[2].step, 300);
  EXPECT_DOUBLE_EQ(trial.intermediate[2].value, 0.4);
  // A reading not after the last recorded one is not new; malformed records are dropped.
  job["status"] = Running(200, 0.1);
  EXPECT_EQ(ObserveTrial(sweep.spec, job).intermediate.size(), 2u);
  for (const char* bad : {"nope", "[[1]]", "[[\"a\",1]]", "[[5,1],[3,1]]"}) {
    job["metadata"]["annotations"][kIntermediateAnnotation] = bad;
    Trial read = ObserveTrial(sweep.spec, job);
    for (std::size_t i = 1; i < read.intermediate.size(); ++i) {
      EXPECT_GT(read.intermediate[i].step, read.intermediate[i - 1].step) << bad;
    }
  }
  // Only an evaluation holding the objective is a reading: not the training loss alone.
  job["metadata"]["annotations"].erase(kIntermediateAnnotation);
  job["status"] = Running(300, 0.4);
  job["status"]["progress"]["evaluation"]["metrics"].erase("testAccuracy");
  EXPECT_TRUE(ObserveTrial(sweep.spec, job).intermediate.empty());
  job["status"]["progress"].erase("evaluation");
  EXPECT_TRUE(ObserveTrial(sweep.spec, job).intermediate.empty());
}

TEST(ValuesToRecord, KeepsAtMostTheCapAndSkipsReadingsTooClose) {
  Trial trial;
  trial.total_steps = 6400;  // gap 100 steps
  trial.intermediate = {{100, 1.0}, {150, 0.9}};
  trial.recorded = 1;
  EXPECT_FALSE(ValuesToRecord(trial));
  trial.intermediate[1].step = 200;
  ASSERT_TRUE(ValuesToRecord(trial));
  EXPECT_EQ(ValuesToRecord(trial)->size(), 2u);
  trial.intermediate.clear();
  for (int i = 1; i <= 70; ++i) trial.intermediate.push_back({i * 100, 1.0 / i});
  trial.recorded = 69;
  std::optional<std::vector<hpo::IntermediateValue>> values = ValuesToRecord(trial);
  ASSERT_TRUE(values);
  EXPECT_LE(values->size(), kMaxRecordedValues);
  EXPECT_EQ(values->back().step, 7000);
  EXPECT_EQ(values->front().step, 100);
  Object patch = RecordPatch(*values);
  EXPECT_TRUE(patch["metadata"]["annotations"][kIntermediateAnnotation].get<std::string>().starts_with("[[100,"));
}

TEST(Decide, FillsParallelSlotsWithNewIndices) {
  api::HyperparameterSweep sweep = Sweep();
  Plan plan = Decide(sweep.spec, {}, {}, false, kNow);
  EXPECT_EQ(plan.status.state, kStateRunning);
  EXPECT_EQ(plan.create, 2);
  EXPECT_EQ(plan.next_index, 0);
  std::vector<Trial> trials = {Observed(sweep, 0, Assignment(0.01), Succeeded(0.8)), Observed(sweep, 1, Assignment(0.02))};
  plan = Decide(sweep.spec, plan.status, trials, false, kNow);
  EXPECT_EQ(plan.create, 1);
  EXPECT_EQ(plan.next_index, 2);
  EXPECT_EQ(plan.status.trials.running, 1);
  EXPECT_EQ(plan.status.trials.succeeded, 1);
  ASSERT_TRUE(plan.status.best);
  EXPECT_EQ(plan.status.best->name, "s-0");
}

TEST(Decide, NeverMoreThanMaxTrialsEvenWithGaps) {
  api::HyperparameterSweep sweep = Sweep();  // maxTrials 6
  // Index 2 was deleted by someone: it is not made again, and 6 is the limit of indices.
  std::vector<Trial> trials = {Observed(sweep, 0, Assignment(0.01), Succeeded(0.8)),
                               Observed(sweep, 1, Assignment(0.02), Succeeded(0.7)),
                               Observed(sweep, 5, Assignment(0.03))};
  Plan plan = Decide(sweep.spec, {}, trials, false, kNow);
  EXPECT_EQ(plan.next_index, 6);
  EXPECT_EQ(plan.create, 0);
  EXPECT_EQ(plan.status.state, kStateRunning);
  trials[2] = Observed(sweep, 5, Assignment(0.03), Succeeded(0.6));
  plan = Decide(sweep.spec, plan.status, trials, false, kNow);
  EXPECT_EQ(plan.status.state, kStateSucceeded);
  EXPECT_EQ(plan.status.reason, kMaxTrialsReached);
  EXPECT_EQ(plan.create, 0);
  ASSERT_EQ(plan.conditions.size(), 2u);
  EXPECT_EQ(plan.conditions[1].type, kStateSucceeded);
  EXPECT_EQ(plan.conditions[1].reason, kMaxTrialsReached);
  EXPECT_EQ(plan.conditions[0].type, kStateRunning);
  EXPECT_EQ(plan.conditions[0].status, kube::ConditionStatus::kFalse);
  EXPECT_DOUBLE_EQ(plan.status.best->value, 0.8);
  ASSERT_EQ(plan.events.size(), 1u);
  // A finished sweep stays finished and makes nothing.
  Plan again = Decide(sweep.spec, plan.status, trials, false, kNow + 1h);
  EXPECT_EQ(again.status.state, kStateSucceeded);
  EXPECT_EQ(again.create, 0);
  EXPECT_TRUE(again.events.empty());
  EXPECT_EQ(again.status.completion_time, plan.status.completion_time);
}

TEST(Decide, GoalReachedStopsTheTrialsStillRunning) {
  api::HyperparameterSweep sweep = Sweep("  maxTrials: 6\n  parallelTrials: 2\n");
  sweep.spec.objective.goal = 0.9;
  std::vector<Trial> trials = {Observed(sweep, 0, Assignment(0.01), Succeeded(0.95)),
                               Observed(sweep, 1, Assignment(0.02), Running(10, 1.0))};
  Plan plan = Decide(sweep.spec, {}, trials, false, kNow);
  EXPECT_EQ(plan.status.state, kStateSucceeded);
  EXPECT_EQ(plan.status.reason, kGoalReached);
  EXPECT_NE(plan.status.message.find("s-0"), std::string::npos);
  EXPECT_EQ(plan.create, 0);
  ASSERT_EQ(plan.stop.size(), 1u);
  EXPECT_EQ(plan.stop[0].trial, "s-1");
}

TEST(Decide, MoreFailuresThanAllowedFailTheSweep) {
  api::HyperparameterSweep sweep = Sweep("  maxTrials: 6\n  parallelTrials: 2\n  maxFailedTrials: 1\n");
  Object failed = {{"state", "Failed"}, {"reason", "PermanentFailure"}};
  std::vector<Trial> trials = {Observed(sweep, 0, Assignment(0.01), failed)};
  Plan plan = Decide(sweep.spec, {}, trials, false, kNow);
  EXPECT_EQ(plan.status.state, kStateRunning);  // one is allowed
  EXPECT_EQ(plan.create, 2);
  trials.push_back(Observed(sweep, 1, Assignment(0.02), failed));
  trials.push_back(Observed(sweep, 2, Assignment(0.03), Running(5, 1)));
  plan = Decide(sweep.spec, plan.status, trials, false, kNow);
  EXPECT_EQ(plan.status.state, kStateFailed);
  EXPECT_EQ(plan.status.reason, kTooManyFailedTrials);
  EXPECT_NE(plan.status.message.find("maxFailedTrials"), std::string::npos);
  EXPECT_EQ(plan.create, 0);
  ASSERT_EQ(plan.stop.size(), 1u);
  EXPECT_EQ(plan.events.at(0).type, "Warning");
}

TEST(Decide, AnExhaustedSpaceEndsOnceTheLastTrialEnds) {
  api::HyperparameterSweep sweep = Sweep();
  std::vector<Trial> trials = {Observed(sweep, 0, Assignment(0.01), Running(5, 1))};
  Plan plan = Decide(sweep.spec, {}, trials, true, kNow);
  EXPECT_EQ(plan.status.state, kStateRunning);
  EXPECT_EQ(plan.create, 0);
  trials[0] = Observed(sweep, 0, Assignment(0.01), Succeeded(0.5));
  plan = Decide(sweep.spec, plan.status, trials, true, kNow);
  EXPECT_EQ(plan.status.reason, kSearchSpaceExhausted);
}

TEST(Decide, AshaStopsTheClearlyWorseTrialAndRecordsReadings) {
  api::HyperparameterSweep sweep =
      Sweep("  maxTrials: 6\n  parallelTrials: 2\n  earlyStopping: {rule: asha, settings: {minResource: 100, "
            "reductionFactor: 3}}\n");
  Object done = Child(sweep, 0, Assignment(0.01), Succeeded(0.9));
  done["metadata"]["annotations"][kIntermediateAnnotation] = "[[100,0.5],[300,0.8]]";
  // testAccuracy, maximized: s-1 (0.1) is clearly worse, though its training loss is lower.
  std::vector<Trial> trials = {ObserveTrial(sweep.spec, done), Observed(sweep, 1, Assignment(0.0001), Running(120, 0.1)),
                               Observed(sweep, 2, Assignment(0.05), Running(110, 0.6))};
  Plan plan = Decide(sweep.spec, {}, trials, false, kNow);
  ASSERT_EQ(plan.stop.size(), 1u);
  EXPECT_EQ(plan.stop[0].trial, "s-1");
  EXPECT_NE(plan.stop[0].message.find("asha rule at step 120 (testAccuracy 0.1)"), std::string::npos)
      << plan.stop[0].message;
  // The same readings for an objective minimized: the other trial is the worse one.
  api::SweepSpec minimized = sweep.spec;
  minimized.objective.direction = hpo::Direction::kMinimize;
  Plan flipped = Decide(minimized, {}, trials, false, kNow);
  ASSERT_EQ(flipped.stop.size(), 1u);
  EXPECT_EQ(flipped.stop[0].trial, "s-2");
  EXPECT_EQ(plan.record.size(), 2u);
  Object patch = StopPatch(plan.stop[0].message);
  EXPECT_EQ(patch["spec"]["runPolicy"]["suspend"], true);
  // Without early stopping nothing is judged or recorded.
  sweep.spec.early_stopping.rule = hpo::EarlyStoppingRule::kNone;
  plan = Decide(sweep.spec, {}, trials, false, kNow);
  EXPECT_TRUE(plan.stop.empty());
  EXPECT_TRUE(plan.record.empty());
}

TEST(Decide, AnInvalidSpecFailsOnceAndAFixedSpecStartsOver) {
  Plan failed = InvalidSpec({}, "spec.trialTemplate.spec.replicas: expected an integer", kNow);
  EXPECT_EQ(failed.status.state, kStateFailed);
  EXPECT_EQ(failed.status.reason, kInvalidSpec);
  EXPECT_EQ(failed.events.size(), 1u);
  EXPECT_EQ(failed.conditions.back().type, kStateFailed);
  EXPECT_TRUE(InvalidSpec(failed.status, failed.status.message, kNow).events.empty());
  Plan fixed = Decide(Sweep().spec, failed.status, {}, false, kNow);
  EXPECT_EQ(fixed.status.state, kStateRunning);
  EXPECT_EQ(fixed.create, 2);
}

TEST(Status, RoundTripsAndStaysSmallWithTenThousandTrials) {
  api::HyperparameterSweep sweep = Sweep("  maxTrials: 10000\n  parallelTrials: 8\n");
  std::vector<Trial> trials;
  for (int i = 0; i < 10000; ++i) {
    Object status = i < 9992 ? (i % 10 == 3 ? Object{{"state", "Failed"}} : Succeeded(0.5 + i * 1e-5)) : Running(5, 1);
    trials.push_back(Observed(sweep, i, Assignment(0.0001 + (i % 1000) * 1e-5, 16 + 16 * (i % 8), i % 2 ? "sgd" : "adam"), status));
  }
  sweep.spec.max_failed_trials = 10000;
  Plan plan = Decide(sweep.spec, {}, trials, false, kNow);
  Object status;
  WriteStatus(plan.status, sweep.spec.max_trials, status);
  EXPECT_EQ(status["trialsDone"], "9992/10000");
  EXPECT_EQ(status["trials"]["running"], 8);
  EXPECT_EQ(status["bestTrial"]["name"], "s-9991");
  EXPECT_LT(status.dump().size(), 1024u) << status.dump();
  SweepStatus read = ReadStatus(status);
  EXPECT_EQ(read.trials, plan.status.trials);
  EXPECT_EQ(read.best, plan.status.best);
  EXPECT_EQ(read.state, kStateRunning);
  EXPECT_EQ(read.start_time, plan.status.start_time);
}

// The sweep's own status write seen through a lagging cache: the copy it replaced is
// behind (no write bound to fail is sent), any newer version is not.
TEST(OwnStatusWrites, TheCopyTheLastWriteReplacedIsBehind) {
  OwnStatusWrites writes;
  EXPECT_FALSE(writes.CacheBehind("ns/s", "10")) << "nothing written yet";
  writes.Wrote("ns/s", "10");
  EXPECT_TRUE(writes.CacheBehind("ns/s", "10"));
  EXPECT_TRUE(writes.CacheBehind("ns/s", "10")) << "still behind until the watch delivers";
  EXPECT_FALSE(writes.CacheBehind("ns/other", "10")) << "per sweep";
  EXPECT_FALSE(writes.CacheBehind("ns/s", "11")) << "the write (or a newer change) arrived";
  EXPECT_FALSE(writes.CacheBehind("ns/s", "10")) << "the record went with the first newer look";
  writes.Wrote("ns/s", "11");
  writes.Forget("ns/s");
  EXPECT_FALSE(writes.CacheBehind("ns/s", "11")) << "a deleted sweep waits for nothing";
}

TEST(OwnStatusWrites, ALostWatchEventHoldsASweepBackOnlyUntilTheTtl) {
  OwnStatusWrites writes(0ms);
  writes.Wrote("ns/s", "10");
  std::this_thread::sleep_for(2ms);
  EXPECT_FALSE(writes.CacheBehind("ns/s", "10"));
}

TEST(Suggester, AnswersOffTheCallerWithExactlySuggestsAnswer) {
  api::HyperparameterSweep sweep = Sweep();
  std::mutex mutex;
  std::condition_variable ready;
  std::vector<std::string> keys;
  Suggester suggester(
      [&](const std::string& key) {
        std::lock_guard lock(mutex);
        keys.push_back(key);
        ready.notify_all();
      },
      nullptr);
  std::vector<Trial> trials = {Observed(sweep, 0, Assignment(0.01), Succeeded(0.8))};
  std::vector<hpo::Trial> history = SamplerHistory(trials, false);
  EXPECT_FALSE(suggester.Get("ns/s", sweep.spec.sampler, sweep.spec.space, history, 2));
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(ready.wait_for(lock, 30s, [&] { return !keys.empty(); }));
  }
  EXPECT_EQ(keys.front(), "ns/s");
  std::optional<Suggester::Result> result = suggester.Get("ns/s", sweep.spec.sampler, sweep.spec.space, history, 2);
  ASSERT_TRUE(result);
  ASSERT_TRUE(result->ok());
  StatusOr<std::vector<hpo::Assignment>> direct = hpo::Suggest(sweep.spec.sampler, sweep.spec.space, history, 2);
  ASSERT_TRUE(direct.ok());
  ASSERT_EQ((*result)->size(), 2u);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(hpo::AssignmentKey((**result)[i]), hpo::AssignmentKey((*direct)[i]));
  // Another history is another question.
  history.push_back({"s-1", Assignment(0.02), hpo::TrialState::kPending, std::nullopt, {}});
  EXPECT_FALSE(suggester.Get("ns/s", sweep.spec.sampler, sweep.spec.space, history, 1));
  suggester.Forget("ns/s");
}

TEST(Suggester, TheFingerprintSeesEveryInput) {
  api::HyperparameterSweep sweep = Sweep();
  std::vector<hpo::Trial> history = {{"s-0", Assignment(0.01), hpo::TrialState::kCompleted, 0.5, {}}};
  const std::string base = Suggester::Fingerprint(sweep.spec.sampler, sweep.spec.space, history, 1);
  EXPECT_NE(base, Suggester::Fingerprint(sweep.spec.sampler, sweep.spec.space, history, 2));
  std::vector<hpo::Trial> changed = history;
  changed[0].value = 0.5000000001;
  EXPECT_NE(base, Suggester::Fingerprint(sweep.spec.sampler, sweep.spec.space, changed, 1));
  hpo::SamplerConfig seeded = sweep.spec.sampler;
  seeded.seed += 1;
  EXPECT_NE(base, Suggester::Fingerprint(seeded, sweep.spec.space, history, 1));
}

}  // namespace
}  // namespace mlscale::controllers::sweep
