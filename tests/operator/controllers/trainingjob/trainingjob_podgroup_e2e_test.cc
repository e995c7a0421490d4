// Gang scheduling through a PodGroup, both flavours, against the real control plane:
// when scheduler-plugins' coscheduling or Volcano has its PodGroup CRD installed, the
// operator makes a PodGroup per job (minMember = workers) and its pods name it and the
// gang scheduler. The CRDs are installed while the operator runs, so this also proves it
// finds them without a restart (--gang-discovery-interval). Runs alone (RUN_SERIAL): the
// CRDs are cluster-wide and would make the operators of other tests send their pods to
// a scheduler that is not there.
#include <gtest/gtest.h>

#include <thread>

#include "e2e_fixture.h"

namespace mlscale::testing {
namespace {

using namespace std::chrono_literals;

// A PodGroup CRD as the scheduler serves it (the schema reduced to what we write).
std::string PodGroupCrd(const std::string& group, const std::string& version) {
  return json{{"apiVersion", "apiextensions.k8s.io/v1"},
              {"kind", "CustomResourceDefinition"},
              {"metadata", {{"name", "podgroups." + group}}},
              {"spec",
               {{"group", group},
                {"scope", "Namespaced"},
                {"names", {{"plural", "podgroups"}, {"singular", "podgroup"}, {"kind", "PodGroup"}}},
                {"versions",
                 {{{"name", version},
                   {"served", true},
                   {"storage", true},
                   {"subresources", {{"status", json::object()}}},
                   {"schema",
                    {{"openAPIV3Schema", {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}}}}}}}}}}}
      .dump();
}

const char* kCoscheduling = "podgroups.scheduling.x-k8s.io";
const char* kVolcano = "podgroups.scheduling.volcano.sh";

class PodGroupE2E : public TrainingJobE2E {
 protected:
  void TearDown() override {
    TrainingJobE2E::TearDown();
    for (const char* crd : {kCoscheduling, kVolcano}) {
      Kubectl({"delete", "crd", crd, "--ignore-not-found", "--timeout=60s"});
    }
  }
  void Install(const std::string& group, const std::string& version) {
    CommandResult installed = Kubectl({"apply", "-f", "-"}, PodGroupCrd(group, version));
    ASSERT_EQ(installed.exit_code, 0) << installed.output;
    ASSERT_EQ(Kubectl({"wait", "--for=condition=Established", "--timeout=30s", "crd/podgroups." + group}).exit_code, 0);
  }
};

TEST_F(PodGroupE2E, JobsGetThePodGroupOfTheSchedulerInstalledWithoutARestart) {
  StartNode();
  StartOperator({"--gang-discovery-interval", "1"});

  // No PodGroup CRD: plain pods.
  Apply(ShellJob("plain", 2, "sleep 60"));
  ASSERT_TRUE(WaitFor([&] { return Pods("plain").size() == 2; }, 30s)) << Diagnostics("plain");
  for (const json& pod : Pods("plain")) {
    EXPECT_EQ(pod["spec"].value("schedulerName", "default-scheduler"), "default-scheduler");
    EXPECT_FALSE(pod["metadata"]["labels"].contains("scheduling.x-k8s.io/pod-group"));
  }

  // Volcano installed while the operator runs.
  Install("scheduling.volcano.sh", "v1beta1");
  std::this_thread::sleep_for(1100ms);  // the operator's answer (no CRD) is older than --gang-discovery-interval
  Apply(ShellJob("volcano", 3, "sleep 60", {{"gang", {{"timeoutSeconds", 90}}}}));
  json group;
  ASSERT_TRUE(WaitFor([&] { return (group = Get("podgroups.scheduling.volcano.sh", "volcano")).is_object(); }, 30s))
      << Diagnostics("volcano") << operator_->LogTail();
  EXPECT_TRUE(operator_->WaitForLog("PodGroup CRD found: podgroups.scheduling.volcano.sh", 10s)) << operator_->LogTail();
  EXPECT_EQ(group["apiVersion"], "scheduling.volcano.sh/v1beta1");
  EXPECT_EQ(group["spec"]["minMember"], 3);
  EXPECT_EQ(group["metadata"]["ownerReferences"][0]["kind"], "TrainingJob");
  ASSERT_TRUE(WaitFor([&] { return Pods("volcano").size() == 3; }, 30s)) << Diagnostics("volcano");
  for (const json& pod : Pods("volcano")) {
    EXPECT_EQ(pod["metadata"]["annotations"]["scheduling.k8s.io/group-name"], "volcano");
    EXPECT_EQ(pod["spec"]["schedulerName"], "volcano");
  }

  // Volcano removed, coscheduling installed: the next job gets a coscheduling PodGroup.
  ASSERT_EQ(Kubectl({"delete", "crd", kVolcano, "--timeout=60s"}).exit_code, 0);
  Install("scheduling.x-k8s.io", "v1alpha1");
  std::this_thread::sleep_for(1100ms);
  Apply(ShellJob("gang", 3, "sleep 60", {{"gang", {{"timeoutSeconds", 90}}}}));
  ASSERT_TRUE(WaitFor([&] { return (group = Get("podgroups.scheduling.x-k8s.io", "gang")).is_object(); }, 30s))
      << Diagnostics("gang") << operator_->LogTail();
  EXPECT_TRUE(operator_->WaitForLog("PodGroup CRD found: podgroups.scheduling.x-k8s.io", 10s)) << operator_->LogTail();
  EXPECT_EQ(group["spec"]["minMember"], 3);
  EXPECT_EQ(group["spec"]["scheduleTimeoutSeconds"], 90);
  EXPECT_EQ(group["metadata"]["ownerReferences"][0]["kind"], "TrainingJob");
  ASSERT_TRUE(WaitFor([&] { return Pods("gang").size() == 3; }, 30s)) << Diagnostics("gang");
  for (const json& pod : Pods("gang")) {
    EXPECT_EQ(pod["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"], "gang");
    EXPECT_EQ(pod["spec"]["schedulerName"], "scheduler-plugins-scheduler");
  }
}

}  // namespace
}  // namespace mlscale::testing
