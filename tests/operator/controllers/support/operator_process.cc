#include "operator_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "cluster_environment.h"
#include "wait_for.h"

extern char** environ;

namespace mlscale::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string OperatorBinary() { return MLSCALE_OPERATOR_BINARY; }
std::string LauncherBinary() { return MLSCALE_LAUNCHER_BINARY; }
std::string TrainerBinary() { return MLSCALE_TRAINER_BINARY; }

StatusOr<std::unique_ptr<OperatorProcess>> OperatorProcess::Start(std::vector<std::string> flags, std::string log_file,
                                                                  bool wait_for_controllers) {
  std::unique_ptr<OperatorProcess> process(new OperatorProcess(std::move(flags), std::move(log_file)));
  std::ofstream(process->log_file_, std::ios::trunc).flush();
  if (Status s = process->Spawn(wait_for_controllers); !s.ok()) return s;
  return process;
}

Status OperatorProcess::Spawn(bool wait_for_controllers) {
  StatusOr<TestCluster> cluster = CurrentCluster();
  if (!cluster.ok()) return cluster.status();
  std::vector<std::string> args = {OperatorBinary(), "--kubeconfig", cluster->admin_kubeconfig, "--metrics-bind-address",
                                   "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"};
  args.insert(args.end(), flags_.begin(), flags_.end());
  const size_t log_size_before = ReadFile(log_file_).size();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  int error = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) return Internal(std::string("starting ") + argv[0] + ": " + std::strerror(error));
  const std::string ready = wait_for_controllers ? "controller(s) running" : "/metrics on port";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ReadFile(log_file_).find(ready, log_size_before) != std::string::npos) return Status::Ok();
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Internal("mlscale-operator exited during start-up; its log:\n" + LogTail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return DeadlineExceeded("mlscale-operator not ready after 60 s; its log:\n" + LogTail());
}

OperatorProcess::~OperatorProcess() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  if (!WaitForExit(pid_, std::chrono::seconds(10))) {
    kill(pid_, SIGKILL);
    WaitForExit(pid_, std::chrono::seconds(5));
  }
}

void OperatorProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  WaitForExit(pid_, std::chrono::seconds(10));
  pid_ = -1;
}

Status OperatorProcess::Restart(bool wait_for_controllers) {
  Kill();
  return Spawn(wait_for_controllers);
}

bool OperatorProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

bool OperatorProcess::WaitForLog(const std::string& text, std::chrono::milliseconds limit) const {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ReadFile(log_file_).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string OperatorProcess::LogTail(size_t bytes) const {
  std::string all = ReadFile(log_file_);
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

}  // namespace mlscale::testing
