#include "namespaced_test.h"

#include <unistd.h>

#include <atomic>

#include "cluster_environment.h"

namespace mlscale::testing {

void NamespacedTest::SetUp() {
  static std::atomic<int> counter = 0;
  StatusOr<TestCluster> cluster = CurrentCluster();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  kubeconfig_ = cluster->admin_kubeconfig;
  std::string name = prefix_ + "-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  CommandResult created = Run({"create", "namespace", name});
  ASSERT_EQ(created.exit_code, 0) << created.output;
  namespace_ = name;
  ASSERT_TRUE(WaitFor([&] { return Run({"-n", namespace_, "get", "serviceaccount", "default"}).exit_code == 0; },
                      std::chrono::seconds(30)))
      << "namespace " << namespace_ << " never got its default service account";
}

void NamespacedTest::TearDown() {
  if (!namespace_.empty()) Run({"delete", "namespace", namespace_, "--wait=false"});
}

CommandResult NamespacedTest::Run(const std::vector<std::string>& args, const std::string& input) {
  return Kubectl(kubeconfig_, args, input);
}

void NamespacedTest::Apply(const nlohmann::json& object) {
  CommandResult result = Run({"-n", namespace_, "apply", "-f", "-"}, object.dump());
  ASSERT_EQ(result.exit_code, 0) << result.output;
}

nlohmann::json NamespacedTest::Get(const std::string& kind, const std::string& name) {
  CommandResult result = Run({"-n", namespace_, "get", kind, name, "-o", "json"});
  if (result.exit_code != 0) return nullptr;
  return nlohmann::json::parse(result.output, nullptr, false);
}

}  // namespace mlscale::testing
