// The InferenceService planner (service_state.h): traffic during rollouts and canaries,
// retiring old revisions, conditions and status. Pure: time is an input.
#include <gtest/gtest.h>

#include "mlscale/controllers/inference/service_state.h"

namespace mlscale::controllers::inference {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class PlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    json manifest = {{"apiVersion", "mlscale.io/v1alpha1"}, {"kind", "InferenceService"},
                     {"metadata", {{"name", "svc"}, {"namespace", "ml"}}},
                     {"spec", {{"model", {{"trainingJob", "a"}}}, {"rollout", {{"oldRevisionGraceSeconds", 10},
                                                                               {"progressDeadlineSeconds", 60}}}}}};
    ref_ = {*api::InferenceServiceFromJson(manifest), "uid"};
    input_.service = &ref_;
    input_.now = Clock::time_point(std::chrono::seconds(1'000'000));
    input_.router_ready = 1;
  }
  TargetRevision Target(const std::string& name, std::int64_t percent, const std::string& role = "default",
                        std::int32_t replicas = 1) {
    TargetRevision t;
    t.revision.name = name;
    t.revision.role = role;
    t.revision.model.description = "model " + name;
    t.percent = percent;
    t.replicas = replicas;
    return t;
  }
  static RevisionObservation Observed(const std::string& name, std::int32_t ready, std::int32_t replicas = 1) {
    return {name, "default", replicas, replicas, ready, "", ""};
  }
  static std::string ConditionReason(const Plan& plan, const std::string& type) {
    for (const auto& c : plan.conditions) {
      if (c.type == type) return std::string(kube::ConditionStatusName(c.status)) + "/" + c.reason;
    }
    return "";
  }

  ServiceRef ref_;
  PlanInput input_;
};

TEST_F(PlanTest, AFirstRevisionGetsTheTrafficAtOnceSoTheRouterHoldsTheFirstRequests) {
  input_.targets = {Target("svc-1", 100)};
  Plan plan = PlanService(input_);
  ASSERT_EQ(plan.traffic.size(), 1u);
  EXPECT_EQ(plan.traffic[0], (TrafficEntry{"svc-1", 100}));
  EXPECT_EQ(plan.replicas.at("svc-1"), 1);
  EXPECT_EQ(ConditionReason(plan, kModelLoaded), "False/Loading");
  EXPECT_EQ(ConditionReason(plan, kReady), "False/Loading");
  EXPECT_EQ(ConditionReason(plan, kRolloutInProgress), "True/WaitingForRevision");
  ASSERT_EQ(plan.events.size(), 1u);
  EXPECT_EQ(plan.events[0].reason, "RevisionCreated");
}

TEST_F(PlanTest, ReadyOnceAReplicaIsReady) {
  input_.targets = {Target("svc-1", 100)};
  input_.revisions = {Observed("svc-1", 1)};
  Plan plan = PlanService(input_);
  EXPECT_EQ(ConditionReason(plan, kModelLoaded), "True/Loaded");
  EXPECT_EQ(ConditionReason(plan, kReady), "True/Serving");
  EXPECT_EQ(ConditionReason(plan, kRolloutInProgress), "False/RolloutComplete");
  ASSERT_EQ(plan.records.size(), 1u);
  EXPECT_TRUE(plan.records[0].ever_ready);
  input_.router_ready = 0;
  EXPECT_EQ(ConditionReason(PlanService(input_), kReady), "False/RouterNotReady");
}

TEST_F(PlanTest, ModelVersionIsWhatThePodsServe) {
  input_.targets = {Target("svc-1", 100)};
  input_.revisions = {Observed("svc-1", 0)};
  Plan plan = PlanService(input_);
  ASSERT_EQ(plan.records.size(), 1u);
  EXPECT_EQ(plan.records[0].model_version, "") << "unknown until a pod says (not the pinned value, not 'latest')";
  input_.records = plan.records;
  input_.revisions[0].ready_replicas = 1;
  input_.revisions[0].served_version = "3";
  plan = PlanService(input_);
  EXPECT_EQ(plan.records[0].model_version, "3");
  EXPECT_EQ(StatusJson(input_, plan)["revisions"][0]["modelVersion"], "3");
  input_.records = plan.records;
  input_.revisions[0].served_version = "";  // no pod answered this time: the last known stays
  EXPECT_EQ(PlanService(input_).records[0].model_version, "3");
}

TEST_F(PlanTest, AModelChangeMovesTrafficOnlyWhenTheNewRevisionIsReadyThenRetiresTheOld) {
  input_.traffic = {{"svc-old", 100}};
  input_.records = {{"svc-old", "default", "model old", "latest", true, input_.now - 1h, std::nullopt}};
  input_.targets = {Target("svc-new", 100)};
  input_.revisions = {Observed("svc-old", 2, 2), Observed("svc-new", 0)};
  Plan waiting = PlanService(input_);
  EXPECT_EQ(waiting.traffic, (std::vector<TrafficEntry>{{"svc-old", 100}}));
  EXPECT_EQ(waiting.replicas.at("svc-old"), 2);  // kept as it is
  EXPECT_TRUE(waiting.delete_revisions.empty());
  EXPECT_EQ(ConditionReason(waiting, kReady), "True/Serving");  // the old one serves
  EXPECT_EQ(ConditionReason(waiting, kRolloutInProgress), "True/WaitingForRevision");

  // Ready: the traffic moves, the old revision is retired (kept for the grace), then deleted.
  input_.records = waiting.records;
  input_.traffic = waiting.traffic;
  input_.revisions = {Observed("svc-old", 2, 2), Observed("svc-new", 1)};
  Plan moved = PlanService(input_);
  EXPECT_EQ(moved.traffic, (std::vector<TrafficEntry>{{"svc-new", 100}}));
  EXPECT_TRUE(moved.delete_revisions.empty());
  EXPECT_EQ(moved.replicas.at("svc-old"), 2);
  ASSERT_TRUE(moved.requeue_after);
  EXPECT_LE(*moved.requeue_after, 10'000ms);
  EXPECT_EQ(ConditionReason(moved, kRolloutInProgress), "True/DrainingOldRevision");

  input_.records = moved.records;
  input_.traffic = moved.traffic;
  input_.now += 10s;
  Plan deleted = PlanService(input_);
  EXPECT_EQ(deleted.delete_revisions, std::vector<std::string>{"svc-old"});

  // Once gone, its record goes too and the rollout is complete.
  input_.records = deleted.records;
  input_.revisions = {Observed("svc-new", 1)};
  Plan done = PlanService(input_);
  EXPECT_EQ(done.records.size(), 1u);
  EXPECT_EQ(ConditionReason(done, kRolloutInProgress), "False/RolloutComplete");
}

TEST_F(PlanTest, ACanaryNotYetReadyLeavesItsShareWithTheOldSplit) {
  input_.traffic = {{"svc-a", 100}};
  input_.records = {{"svc-a", "default", "a", "latest", true, input_.now - 1h, std::nullopt}};
  input_.targets = {Target("svc-a", 80), Target("svc-b", 20, "canary")};
  input_.revisions = {Observed("svc-a", 1), Observed("svc-b", 0)};
  Plan plan = PlanService(input_);
  EXPECT_EQ(plan.traffic, (std::vector<TrafficEntry>{{"svc-a", 100}}));
  input_.revisions = {Observed("svc-a", 1), Observed("svc-b", 1)};
  input_.records = plan.records;
  Plan split = PlanService(input_);
  EXPECT_EQ(split.traffic, (std::vector<TrafficEntry>{{"svc-a", 80}, {"svc-b", 20}}));
  EXPECT_EQ(StatusJson(input_, split)["canaryTrafficPercent"], 20);
}

TEST_F(PlanTest, ARevisionScaledToZeroKeepsItsTraffic) {
  input_.records = {{"svc-1", "default", "m", "latest", true, input_.now - 1h, std::nullopt}};
  input_.traffic = {{"svc-1", 100}};
  input_.targets = {Target("svc-1", 100, "default", 0)};
  input_.revisions = {Observed("svc-1", 0, 0)};
  Plan plan = PlanService(input_);
  EXPECT_EQ(plan.traffic, (std::vector<TrafficEntry>{{"svc-1", 100}}));
  EXPECT_EQ(plan.replicas.at("svc-1"), 0);
  EXPECT_EQ(ConditionReason(plan, kReady), "True/Serving");
  EXPECT_EQ(ConditionReason(plan, kModelLoaded), "True/Loaded");
}

TEST_F(PlanTest, AnUnresolvedModelKeepsWhatServes) {
  input_.traffic = {{"svc-1", 100}};
  input_.revisions = {Observed("svc-1", 1)};
  input_.unresolved = Unresolved{"TrainingJobNotFinished", "waiting for TrainingJob a"};
  Plan plan = PlanService(input_);
  EXPECT_EQ(plan.traffic, input_.traffic);
  EXPECT_TRUE(plan.delete_revisions.empty());
  EXPECT_EQ(ConditionReason(plan, kModelLoaded), "False/TrainingJobNotFinished");
  input_.traffic.clear();
  input_.revisions.clear();
  EXPECT_EQ(ConditionReason(PlanService(input_), kReady), "False/TrainingJobNotFinished");
}

TEST_F(PlanTest, ACrashingServerOrADeadlineIsTheReason) {
  input_.targets = {Target("svc-1", 100)};
  RevisionObservation crashing = Observed("svc-1", 0);
  crashing.failure = "server container CrashLoopBackOff";
  input_.revisions = {crashing};
  EXPECT_EQ(ConditionReason(PlanService(input_), kModelLoaded), "False/ServerFailed");
  input_.revisions = {Observed("svc-1", 0)};
  input_.records = {{"svc-1", "default", "m", "latest", false, input_.now - 61s, std::nullopt}};
  Plan late = PlanService(input_);
  EXPECT_EQ(ConditionReason(late, kModelLoaded), "False/ProgressDeadlineExceeded");
  EXPECT_EQ(ConditionReason(late, kRolloutInProgress), "False/ProgressDeadlineExceeded");
}

TEST_F(PlanTest, StatusCountsEveryPodAndNamesTheSelector) {
  input_.targets = {Target("svc-1", 100, "default", 3)};
  input_.revisions = {Observed("svc-1", 2, 3), Observed("svc-0", 1, 1)};
  input_.traffic = {{"svc-0", 100}};
  input_.records = {{"svc-0", "default", "m0", "latest", true, input_.now - 1h, std::nullopt}};
  input_.metric = ObservedMetric{"concurrency", 4.25};
  Plan plan = PlanService(input_);
  json status = StatusJson(input_, plan);
  EXPECT_EQ(status["replicas"], 4);       // total, not ready
  EXPECT_EQ(status["readyReplicas"], 3);
  EXPECT_EQ(status["desiredReplicas"], 4);  // 3 + the retiring one kept at 1
  EXPECT_EQ(status["selector"], "mlscale.io/inference-service=svc,mlscale.io/component=predictor");
  EXPECT_EQ(status["url"], "http://svc.ml.svc.cluster.local");
  EXPECT_EQ(status["observedMetric"]["text"], "4.2 concurrency");
  EXPECT_EQ(status["traffic"][0]["revision"], "svc-1");
  // Read back, the records survive a round trip.
  auto records = ReadRecords(status);
  ASSERT_EQ(records.size(), plan.records.size());
  EXPECT_EQ(records[0].created, plan.records[0].created);
  EXPECT_EQ(ReadTraffic(status), plan.traffic);
}

TEST(SplitReplicas, GivesEachSideAtLeastOne) {
  EXPECT_EQ(SplitReplicas(4, 0), std::make_pair(4, 0));
  EXPECT_EQ(SplitReplicas(10, 20), std::make_pair(8, 2));
  EXPECT_EQ(SplitReplicas(1, 20), std::make_pair(1, 1));
  EXPECT_EQ(SplitReplicas(3, 50), std::make_pair(1, 2));
  EXPECT_EQ(SplitReplicas(0, 20), std::make_pair(0, 0));
  EXPECT_EQ(SplitReplicas(5, 100), std::make_pair(0, 5));
}

TEST(Redistribute, KeepsIntegerPercentsSummingUp) {
  auto out = Redistribute({{"a", 1}, {"b", 1}, {"c", 1}}, 97);
  std::int64_t sum = 0;
  for (const auto& e : out) sum += e.percent;
  EXPECT_EQ(sum, 100);
  auto weighted = Redistribute({{"a", 30}, {"b", 10}}, 20);
  EXPECT_EQ(weighted[0].percent, 45);
  EXPECT_EQ(weighted[1].percent, 15);
}

TEST(ReadTraffic, SkipsMalformedEntries) {
  json status = {{"traffic", {{{"revision", "a"}, {"percent", 60}}, {{"revision", 3}}, "x", {{"percent", 40}}}}};
  EXPECT_EQ(ReadTraffic(status), (std::vector<TrafficEntry>{{"a", 60}}));
  EXPECT_TRUE(ReadTraffic(json("oops")).empty());
  EXPECT_TRUE(ReadRecords(json{{"revisions", {1, {{"name", 2}}}}}).empty());
}

}  // namespace
}  // namespace mlscale::controllers::inference

namespace mlscale::controllers::inference {
namespace {

TEST(ServerPodFailure, NamesTheCrashWithItsLastWords) {
  nlohmann::json pod = {{"status", {{"containerStatuses", {{{"name", "server"}, {"restartCount", 2},
      {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}, {"message", "back-off 10s"}}}}},
      {"lastState", {{"terminated", {{"exitCode", 1}, {"message", "mlscale-serve: --model m: '/mnt/models/x' is not a folder\n"}}}}}}}}}}};
  EXPECT_EQ(ServerPodFailure(pod),
            "server container CrashLoopBackOff (exit 1): mlscale-serve: --model m: '/mnt/models/x' is not a folder");
  nlohmann::json healthy = {{"status", {{"containerStatuses", {{{"name", "server"}, {"restartCount", 0},
                                                                  {"state", {{"running", nlohmann::json::object()}}}}}}}}};
  EXPECT_EQ(ServerPodFailure(healthy), "");
  EXPECT_EQ(ServerPodFailure(nlohmann::json::object()), "");
  EXPECT_EQ(ServerPodFailure(nlohmann::json{{"status", {{"containerStatuses", {1, "x"}}}}}), "");
  pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["message"] = std::string(5000, 'x');
  EXPECT_LT(ServerPodFailure(pod).size(), 600u);
}

}  // namespace
}  // namespace mlscale::controllers::inference
