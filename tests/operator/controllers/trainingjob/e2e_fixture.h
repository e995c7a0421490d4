// What the TrainingJob end-to-end tests share: a namespace of their own, the CRD, a test
// node agent whose worker image runs our real launcher and trainer, an operator process
// watching only that namespace, and watches that record what happened (progress
// readings, states, every pod creation).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cluster_environment.h"
#include "mlscale/kube/client.h"
#include "mlscale/kube/watch.h"
#include "node_agent_process.h"
#include "operator_process.h"

namespace mlscale::testing {

using json = nlohmann::json;

// Records every event of one resource in a namespace, from a real watch.
class EventLog {
 public:
  EventLog(kube::Client& client, const kube::Resource& resource, const std::string& namespace_name);
  ~EventLog();
  // Every object state seen so far, in order.
  std::vector<json> States() const;
  // The UIDs seen per object name (a pod created twice has two).
  std::map<std::string, std::set<std::string>> UidsByName() const;

 private:
  void Record(const json& object);
  mutable std::mutex mutex_;
  std::vector<json> states_;
  std::map<std::string, std::set<std::string>> uids_;
  std::unique_ptr<kube::Watcher> watcher_;
};

class TrainingJobE2E : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts the node agent (GPUs as asked) and the operator (extra flags appended).
  void StartNode(int gpus = 0);
  void StartOperator(std::vector<std::string> extra_flags = {});

  // A TrainingJob manifest placed on this test's node: `spec` merged over the defaults
  // (our worker image, OMP_NUM_THREADS=1).
  json Job(const std::string& name, const json& spec) const;
  // A small digits job: >= 0.95 test accuracy; 100 epochs of 4 ranks take about 1 s of 2 busy cores.
  json DigitsJob(const std::string& name, int replicas, int epochs) const;
  // A job of a user container running `script` in sh on every rank.
  json ShellJob(const std::string& name, int replicas, const std::string& script, const json& extra = json::object()) const;
  // A hostPath volume (a folder of this test) for checkpoints that outlive the pods.
  json WithCheckpointVolume(json job, const std::string& folder) const;

  // examples/<file> as JSON (null when it cannot be read).
  static json ReadExample(const std::string& file);

  CommandResult Kubectl(const std::vector<std::string>& args, const std::string& input = "") const;
  void Apply(const json& object);
  json Get(const std::string& kind, const std::string& name) const;
  std::vector<json> Pods(const std::string& job) const;
  // kubectl wait --for=condition=<condition> on the job; returns the job as then.
  json WaitForCondition(const std::string& job, const std::string& condition, int seconds);
  bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds limit) const;
  // SIGKILLs the process named `comm` of pod `pod` (found by its HOSTNAME); true when found.
  bool KillPodProcess(const std::string& pod, const std::string& comm) const;
  std::string Diagnostics(const std::string& job) const;

  std::string kubeconfig_;
  std::string namespace_;
  std::string dir_;  // this test's folder (wrapper image, checkpoint volumes, logs)
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<NodeAgentProcess> node_;
  std::unique_ptr<OperatorProcess> operator_;
};

}  // namespace mlscale::testing
