// Running mlscale-operator from an end-to-end test as a real process against the test
// control plane: started with the admin kubeconfig, its log in a file, stopped with
// SIGTERM or killed with SIGKILL (an operator crash), and restarted with the same flags.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::testing {

class OperatorProcess {
 public:
  // Starts the operator with `flags` (besides --kubeconfig and free loopback ports for
  // --metrics-bind-address and --health-probe-bind-address, which are given) and returns once its log says the controllers run, or, with leader
  // election, once the process serves. Errors carry the log's tail.
  static StatusOr<std::unique_ptr<OperatorProcess>> Start(std::vector<std::string> flags, std::string log_file,
                                                          bool wait_for_controllers = true);
  ~OperatorProcess();  // SIGTERM, then SIGKILL after 10 s
  OperatorProcess(const OperatorProcess&) = delete;
  OperatorProcess& operator=(const OperatorProcess&) = delete;

  // SIGKILL and reap: the operator dies without any clean-up (lease kept, queues lost).
  void Kill();
  // Starts it again with the same flags (appending to the same log).
  Status Restart(bool wait_for_controllers = true);
  bool Running();
  pid_t pid() const { return pid_; }
  const std::string& log_file() const { return log_file_; }
  // True once the log contains `text` (within `limit`).
  bool WaitForLog(const std::string& text, std::chrono::milliseconds limit) const;
  std::string LogTail(size_t bytes = 4000) const;

 private:
  OperatorProcess(std::vector<std::string> flags, std::string log_file)
      : flags_(std::move(flags)), log_file_(std::move(log_file)) {}
  Status Spawn(bool wait_for_controllers);

  std::vector<std::string> flags_;
  std::string log_file_;
  pid_t pid_ = -1;
};

// The paths of the binaries the e2e tests run (set by CMake).
std::string OperatorBinary();
std::string LauncherBinary();
std::string TrainerBinary();

}  // namespace mlscale::testing
