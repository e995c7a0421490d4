// Gang scheduling through scheduler-plugins' coscheduling: when its PodGroup CRD is
// installed, the operator makes a PodGroup per job (minMember = workers) and its pods
// name it and the gang scheduler. Runs alone (RUN_SERIAL): the CRD is cluster-wide and
// would make the operators of other tests send their pods to a scheduler that is not there.
#include <gtest/gtest.h>

#include "e2e_fixture.h"

namespace mlscale::testing {
namespace {

using namespace std::chrono_literals;

// The PodGroup CRD as scheduler-plugins serves it (the schema reduced to what we write).
const char* kPodGroupCrd = R"({
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "podgroups.scheduling.x-k8s.io"},
  "spec": {"group": "scheduling.x-k8s.io", "scope": "Namespaced",
           "names": {"plural": "podgroups", "singular": "podgroup", "kind": "PodGroup", "shortNames": ["pg"]},
           "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                         "subresources": {"status": {}},
                         "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})";

class PodGroupE2E : public TrainingJobE2E {
 protected:
  void TearDown() override {
    TrainingJobE2E::TearDown();
    Kubectl({"delete", "crd", "podgroups.scheduling.x-k8s.io", "--ignore-not-found", "--timeout=60s"});
  }
};

TEST_F(PodGroupE2E, JobGetsAPodGroupAndItsPodsTheGangScheduler) {
  CommandResult installed = Kubectl({"apply", "-f", "-"}, kPodGroupCrd);
  ASSERT_EQ(installed.exit_code, 0) << installed.output;
  ASSERT_EQ(Kubectl({"wait", "--for=condition=Established", "--timeout=30s", "crd/podgroups.scheduling.x-k8s.io"}).exit_code, 0);
  StartNode();
  StartOperator();
  EXPECT_TRUE(operator_->WaitForLog("PodGroup CRD found", 5s)) << operator_->LogTail();
  Apply(ShellJob("gang", 3, "sleep 60", {{"gang", {{"timeoutSeconds", 90}}}}));
  json group;
  ASSERT_TRUE(WaitFor([&] { return (group = Get("podgroup", "gang")).is_object(); }, 30s)) << Diagnostics("gang");
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
