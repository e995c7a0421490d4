// What the InferenceService end-to-end tests share: a namespace of their own, the CRDs and
// the router's ClusterRole, a test node agent whose pods run the real mlscale-serve and
// mlscale-router (and, for TrainingJobs, mlscale-launch + mlscale-train), an operator process
// with both controllers, and a small keep-alive HTTP load loop that counts every answer.
//
// The router runs as in production: in-cluster configuration, from the token of the
// namespace's mlscale-router ServiceAccount (the one the controller binds to the router's
// ClusterRole) that the node agent requests (TokenRequest) and mounts where a kubelet does,
// with KUBERNETES_SERVICE_HOST/PORT. Least privilege is exercised on that token.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cluster_environment.h"
#include "node_agent_process.h"
#include "operator_process.h"
#include "wait_for.h"

namespace mlscale::testing {

using json = nlohmann::json;

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection refused, reset, timeout)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// One request on a fresh connection to address:port.
HttpAnswer HttpRequest(const std::string& address, int port, const std::string& method, const std::string& path,
                       const std::string& body = "", std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Closed-loop load: `connections` threads, each with a keep-alive connection sending `body`
// to `path` as fast as answers come. Every answer is counted by status; a request that gets
// no answer counts as status 0 (a failure).
class LoadLoop {
 public:
  LoadLoop(std::string address, int port, std::string path, std::string body, int connections);
  ~LoadLoop();  // stops
  void Stop();
  std::int64_t ok() const { return ok_; }
  std::int64_t failed() const { return failed_; }
  std::map<int, std::int64_t> ByStatus() const;
  std::map<std::string, std::int64_t> ByRevision() const;  // x-mlscale-revision of 200s
  std::string FailureSample() const;  // the first failure's status and body

 private:
  void Run(std::stop_token stop);
  std::string address_, path_, body_;
  int port_;
  std::atomic<std::int64_t> ok_ = 0, failed_ = 0;
  mutable std::mutex mutex_;
  std::map<int, std::int64_t> by_status_;
  std::map<std::string, std::int64_t> by_revision_;
  std::string failure_sample_;
  std::vector<std::jthread> threads_;
};

class InferenceE2E : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // An InferenceService manifest placed on this test's node: `spec` with the node's
  // placement and the "models" hostPath volume (this test's model folder) in its template.
  json Service(const std::string& name, json spec) const;
  // Writes a model artifact (64 inputs, 10 classes) under the models volume; returns its
  // folder relative to the volume.
  std::string WriteModel(const std::string& relative, std::uint64_t seed) const;
  std::string ModelsDir() const { return dir_ + "/models"; }

  CommandResult Kubectl(const std::vector<std::string>& args, const std::string& input = "") const;
  void Apply(const json& object) const;
  json Get(const std::string& kind, const std::string& name) const;
  // Waits for the condition (kubectl wait); returns the object as then (null on timeout).
  json WaitForCondition(const std::string& name, const std::string& condition, int seconds,
                        const std::string& status = "True") const;
  // The pod IP of a ready router of `service`, "" when none within `seconds`.
  std::string RouterAddress(const std::string& service, int seconds) const;
  // Pods of `service` matching `selector` (added to the service's label).
  std::vector<json> Pods(const std::string& service, const std::string& component) const;
  // Ready model-server pods of `service` now.
  int ReadyServers(const std::string& service) const;
  std::string Diagnostics(const std::string& service) const;

  // A v2 infer body of `rows` rows of 64 features.
  static std::string InferBody(int rows, int seed = 0);

  std::string kubeconfig_;
  std::string namespace_;
  std::string dir_;
  std::unique_ptr<NodeAgentProcess> node_;
  std::unique_ptr<OperatorProcess> operator_;
};

}  // namespace mlscale::testing
