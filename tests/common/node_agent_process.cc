#include "node_agent_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cluster_environment.h"
#include "wait_for.h"

extern char** environ;

namespace mlscale::testing {
namespace {

std::string Tail(const std::string& path, size_t bytes = 3000) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

}  // namespace

std::string UniqueNodeName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

NodeAgentProcess::~NodeAgentProcess() {
  kill(pid_, SIGTERM);
  if (!WaitForExit(pid_, std::chrono::seconds(20))) {
    kill(pid_, SIGKILL);
    WaitForExit(pid_, std::chrono::seconds(5));
  }
}

std::string NodeAgentProcess::PodDir(const std::string& namespace_name, const std::string& pod_name) const {
  std::string prefix = namespace_name + "_" + pod_name + "_";
  std::error_code error;
  std::string found;
  std::filesystem::file_time_type newest{};
  for (const auto& entry : std::filesystem::directory_iterator(state_dir_ + "/pods", error)) {
    // Several incarnations of one pod name differ by uid: the newest folder wins.
    if (entry.path().filename().string().rfind(prefix, 0) != 0) continue;
    std::filesystem::file_time_type written = entry.last_write_time(error);
    if (found.empty() || written > newest) {
      found = entry.path().string();
      newest = written;
    }
  }
  return found;
}

void NodeAgentProcess::PlaceHere(nlohmann::json& pod_spec) const {
  pod_spec["nodeSelector"]["mlscale.io/test-node"] = name_;
  if (exclusive_) {
    if (!pod_spec.contains("tolerations")) pod_spec["tolerations"] = nlohmann::json::array();
    pod_spec["tolerations"].push_back(
        {{"key", "mlscale.io/test-node"}, {"operator", "Equal"}, {"value", name_}, {"effect", "NoSchedule"}});
  }
}

StatusOr<std::unique_ptr<NodeAgentProcess>> StartNodeAgent(const NodeAgentOptions& options) {
  StatusOr<TestCluster> cluster = CurrentCluster();
  if (!cluster.ok()) return cluster.status();
  if (options.name.empty()) return InvalidArgument("StartNodeAgent: the node needs a name");
  std::string state_dir = cluster->dir + "/nodes/" + options.name;
  std::error_code ignored;
  std::filesystem::remove_all(state_dir, ignored);
  std::filesystem::create_directories(state_dir, ignored);
  std::string ready_file = state_dir + "/ready";
  std::vector<std::string> args = {MLSCALE_TEST_NODE_BINARY,
                                   "--kubeconfig", cluster->admin_kubeconfig,
                                   "--node-name", options.name,
                                   "--state-dir", state_dir,
                                   "--ready-file", ready_file,
                                   "--restart-backoff-ms", std::to_string(options.restart_backoff_ms),
                                   "--delete-node-on-exit",
                                   "--label", "mlscale.io/test-node=" + options.name};
  if (!cluster->kubelet_serving_cert.empty()) {  // kubectl logs through the API server
    args.insert(args.end(), {"--tls-cert-file", cluster->kubelet_serving_cert, "--tls-private-key-file",
                             cluster->kubelet_serving_key, "--client-ca-file", cluster->ca_file});
  }
  if (options.exclusive) {
    args.insert(args.end(), {"--taint", "mlscale.io/test-node=" + options.name + ":NoSchedule"});
  }
  for (const auto& [name, quantity] : options.capacity) args.insert(args.end(), {"--capacity", name + "=" + quantity});
  for (const auto& [key, value] : options.labels) args.insert(args.end(), {"--label", key + "=" + value});
  for (const auto& [image, binary] : options.images) args.insert(args.end(), {"--image", image + "=" + binary});
  for (const std::string& taint : options.taints) args.insert(args.end(), {"--taint", taint});
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());

  std::string log_file = state_dir + "/agent.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int error = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) return Internal(std::string("starting ") + argv[0] + ": " + std::strerror(error));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(ready_file)) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return Internal("mlscale-test-node exited during start-up; its log:\n" + Tail(log_file));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      WaitForExit(pid, std::chrono::seconds(5));
      return DeadlineExceeded("mlscale-test-node not ready after 60 s; its log:\n" + Tail(log_file));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::make_unique<NodeAgentProcess>(pid, options.name, state_dir, options.exclusive);
}

}  // namespace mlscale::testing
