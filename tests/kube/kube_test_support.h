// Shared helpers for the operator/kube tests against the test control plane: an admin
// client and a namespace per test that is deleted afterwards.
#pragma once

#include <memory>
#include <string>

#include "cluster_environment.h"
#include "mlscale/kube/client.h"

namespace mlscale::kube::testing {

// A client with the cluster-admin credentials of the test cluster; fails the test when
// there is no cluster. `qps` high so tests are not slowed by the client's limiter.
std::unique_ptr<Client> AdminClient(double qps = 1000, int burst = 1000);

// A fresh namespace "<prefix>-<random>" created on construction and deleted (in the
// background) on destruction.
class ScopedNamespace {
 public:
  ScopedNamespace(Client& client, const std::string& prefix);
  ~ScopedNamespace();
  ScopedNamespace(const ScopedNamespace&) = delete;
  ScopedNamespace& operator=(const ScopedNamespace&) = delete;
  const std::string& name() const { return name_; }

 private:
  Client& client_;
  std::string name_;
};

// A ConfigMap named `name` with data {key: value}.
Object ConfigMap(const std::string& namespace_name, const std::string& name, const std::string& value = "v");

}  // namespace mlscale::kube::testing
