#include "pod_status.h"

#include <gtest/gtest.h>

#include "mlscale/kube/time_format.h"

namespace mlscale::nodeagent {
namespace {

using kube::FormatTime;
using nlohmann::json;
using Kind = ContainerState::Kind;

ContainerObserved Container(Kind kind, int exit_code = 0, bool restarting = false) {
  ContainerObserved c;
  c.name = "c";
  c.state.kind = kind;
  c.state.exit_code = exit_code;
  if (restarting) {
    c.last_state = ContainerState{Kind::kTerminated, "Error", "", exit_code, 0, {}, {}, ""};
    c.state = ContainerState{};
    c.state.reason = "CrashLoopBackOff";
  }
  return c;
}

PodObserved Pod(std::vector<ContainerObserved> containers, bool initialized = true) {
  PodObserved pod;
  pod.containers = std::move(containers);
  pod.initialized = initialized;
  pod.pod_ip = "127.64.0.1";
  return pod;
}

TEST(PodPhase, FollowsTheKubeletsRules) {
  struct Case {
    const char* what;
    PodObserved pod;
    RestartPolicy policy;
    const char* phase;
  };
  std::vector<Case> cases = {
      {"creating", Pod({Container(Kind::kWaiting)}), RestartPolicy::kNever, "Pending"},
      {"not initialized", Pod({Container(Kind::kWaiting)}, false), RestartPolicy::kAlways, "Pending"},
      {"one running one creating", Pod({Container(Kind::kRunning), Container(Kind::kWaiting)}),
       RestartPolicy::kNever, "Pending"},
      {"running", Pod({Container(Kind::kRunning)}), RestartPolicy::kNever, "Running"},
      {"done ok, never", Pod({Container(Kind::kTerminated, 0)}), RestartPolicy::kNever, "Succeeded"},
      {"done ok, on-failure", Pod({Container(Kind::kTerminated, 0)}), RestartPolicy::kOnFailure, "Succeeded"},
      {"failed, never", Pod({Container(Kind::kTerminated, 0), Container(Kind::kTerminated, 2)}),
       RestartPolicy::kNever, "Failed"},
      {"back-off, on-failure", Pod({Container(Kind::kWaiting, 1, true)}), RestartPolicy::kOnFailure, "Running"},
      {"back-off, always", Pod({Container(Kind::kWaiting, 0, true)}), RestartPolicy::kAlways, "Running"},
      {"one running one done", Pod({Container(Kind::kRunning), Container(Kind::kTerminated, 1)}),
       RestartPolicy::kNever, "Running"},
  };
  PodObserved deleted = Pod({Container(Kind::kTerminated, 143)});
  deleted.terminating = true;
  cases.push_back({"deleted, always", deleted, RestartPolicy::kAlways, "Failed"});
  PodObserved init_failed = Pod({Container(Kind::kWaiting)}, false);
  init_failed.init_containers = {Container(Kind::kTerminated, 1)};
  cases.push_back({"init failed, never", init_failed, RestartPolicy::kNever, "Failed"});
  cases.push_back({"init failed, on-failure", init_failed, RestartPolicy::kOnFailure, "Pending"});
  for (const Case& c : cases) EXPECT_EQ(PodPhase(c.pod, c.policy), c.phase) << c.what;
}

TEST(PodStatusObject, ReportsContainersConditionsAndKeepsOtherConditions) {
  WallTime earlier = std::chrono::system_clock::from_time_t(1'700'000'000);
  WallTime now = earlier + std::chrono::seconds(60);
  ContainerObserved done = Container(Kind::kTerminated, 3);
  done.state.reason = "Error";
  done.state.message = "loss diverged";
  done.restart_count = 2;
  PodObserved pod = Pod({done});
  json previous = {{"conditions",
                    {{{"type", "PodScheduled"}, {"status", "True"}, {"lastTransitionTime", "t0"}},
                     {{"type", "Initialized"}, {"status", "True"}, {"lastTransitionTime", "t1"}}}}};
  json status = PodStatusObject(pod, RestartPolicy::kNever, previous, now);
  EXPECT_EQ(status["phase"], "Failed");
  EXPECT_EQ(status["podIP"], "127.64.0.1");
  const json& container = status["containerStatuses"][0];
  EXPECT_EQ(container["restartCount"], 2);
  EXPECT_EQ(container["state"]["terminated"]["exitCode"], 3);
  EXPECT_EQ(container["state"]["terminated"]["message"], "loss diverged");
  std::map<std::string, json> conditions;
  for (const json& condition : status["conditions"]) conditions[condition["type"]] = condition;
  EXPECT_EQ(conditions["PodScheduled"]["lastTransitionTime"], "t0");
  EXPECT_EQ(conditions["Initialized"]["lastTransitionTime"], "t1");  // unchanged status keeps its time
  EXPECT_EQ(conditions["Ready"]["status"], "False");
  EXPECT_EQ(conditions["Ready"]["reason"], "PodCompleted");
  EXPECT_EQ(conditions["Ready"]["lastTransitionTime"], FormatTime(now));
}

TEST(PodStatusObject, ReadyWhenEveryContainerIsReady) {
  ContainerObserved a = Container(Kind::kRunning);
  ContainerObserved b = Container(Kind::kRunning);
  a.ready = true;
  json status = PodStatusObject(Pod({a, b}), RestartPolicy::kAlways, json(), WallTime{});
  for (const json& condition : status["conditions"]) {
    if (condition["type"] == "Ready") {
      EXPECT_EQ(condition["status"], "False");
    }
  }
  b.ready = true;
  status = PodStatusObject(Pod({a, b}), RestartPolicy::kAlways, json(), WallTime{});
  for (const json& condition : status["conditions"]) {
    if (condition["type"] == "Ready") {
      EXPECT_EQ(condition["status"], "True");
    }
  }
}

// kube::FormatTime is what every timestamp the agent writes goes through.
TEST(FormatTime, IsRfc3339UtcInWholeSecondsAndParsesBack) {
  EXPECT_EQ(FormatTime(std::chrono::system_clock::from_time_t(0)), "1970-01-01T00:00:00Z");
  const auto instant = std::chrono::system_clock::from_time_t(1'798'761'599);  // 2026-12-31T23:59:59Z
  EXPECT_EQ(FormatTime(instant + std::chrono::milliseconds(999)), "2026-12-31T23:59:59Z");
  EXPECT_EQ(kube::ParseTime(FormatTime(instant)), instant);
}

}  // namespace
}  // namespace mlscale::nodeagent
