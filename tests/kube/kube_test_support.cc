#include "kube_test_support.h"

#include <gtest/gtest.h>

#include <random>

namespace mlscale::kube::testing {

std::unique_ptr<Client> AdminClient(double qps, int burst) {
  StatusOr<mlscale::testing::TestCluster> cluster = mlscale::testing::CurrentCluster();
  if (!cluster.ok()) {
    ADD_FAILURE() << cluster.status().ToString();
    return nullptr;
  }
  StatusOr<ClientConfig> config = LoadKubeconfig(cluster->admin_kubeconfig);
  if (!config.ok()) {
    ADD_FAILURE() << config.status().ToString();
    return nullptr;
  }
  config->qps = qps;
  config->burst = burst;
  StatusOr<std::unique_ptr<Client>> client = Client::Create(*config);
  if (!client.ok()) {
    ADD_FAILURE() << client.status().ToString();
    return nullptr;
  }
  return std::move(*client);
}

ScopedNamespace::ScopedNamespace(Client& client, const std::string& prefix) : client_(client) {
  std::mt19937 random(std::random_device{}());
  name_ = prefix + "-" + std::to_string(random() % 1000000);
  StatusOr<Object> created =
      client_.Create(resources::Namespaces(), "", {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                                   {"metadata", {{"name", name_}}}});
  EXPECT_TRUE(created.ok()) << created.status().ToString();
}

ScopedNamespace::~ScopedNamespace() {
  Status deleted = client_.Delete(resources::Namespaces(), "", name_);
  EXPECT_TRUE(deleted.ok()) << deleted.ToString();
}

Object ConfigMap(const std::string& namespace_name, const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", namespace_name}}},
          {"data", {{"key", value}}}};
}

}  // namespace mlscale::kube::testing
