// The fixture of an end-to-end test that works in a namespace of its own on the test
// control plane (mlscale_add_test(... CLUSTER)), as the cluster's admin through kubectl.
//
//   class PluginE2E : public NamespacedTest {
//    protected:
//     PluginE2E() : NamespacedTest("plugin") {}
//   };
//   TEST_F(PluginE2E, ...) { Apply(object); json pod = Get("pod", "p"); ... }
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "wait_for.h"

namespace mlscale::testing {

class NamespacedTest : public ::testing::Test {
 protected:
  // Namespaces are "<prefix>-<pid>-<n>": unique across parallel test processes.
  explicit NamespacedTest(std::string prefix) : prefix_(std::move(prefix)) {}

  // Reads the current cluster, creates the namespace and waits for its default service
  // account (pods are admitted only once it exists). Fails the test on any error.
  void SetUp() override;
  // Deletes the namespace without waiting.
  void TearDown() override;

  // kubectl with the admin kubeconfig.
  CommandResult Run(const std::vector<std::string>& args, const std::string& input = "");
  // `kubectl apply` of one object into the namespace; fails the test if refused.
  void Apply(const nlohmann::json& object);
  // The object as JSON, or null when it cannot be read.
  nlohmann::json Get(const std::string& kind, const std::string& name);

  std::string kubeconfig_;
  std::string namespace_;

 private:
  std::string prefix_;
};

}  // namespace mlscale::testing
