// Child processes: starting a program with a given environment, output file and
// process group, and running one while forwarding the signals a launcher receives.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::launcher {

struct CommandSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  // Variables set (or replaced) on top of this process's environment.
  std::map<std::string, std::string> environment;
  std::string output_file;  // stdout and stderr appended here; empty: inherited
  // -1: stay in this process group; 0: lead a new group; > 0: join that group.
  pid_t process_group = -1;
  // When set, the child gets this signal if this process (its parent) dies first.
  std::optional<int> parent_death_signal;
};

// The exit code a shell would report for a waitpid() status: the exit code, or
// 128 + N when killed by signal N.
int ExitCodeOf(int wait_status);
// "exit code 3", "exit code 137 = signal 9 (Killed)". (A trainer that stops cleanly on
// SIGTERM exits with 143 by itself; either way the code reads as signal 15.)
std::string DescribeExitCode(int exit_code);

// A started child process. The destructor kills (SIGKILL) and reaps a child that is
// still running, so no child outlives its owner by accident. Move-only.
class ChildProcess {
 public:
  // Starts the program with every signal unblocked and at its default action. The
  // child inherits only the descriptors without FD_CLOEXEC.
  static StatusOr<ChildProcess> Start(const CommandSpec& spec);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running() const { return !exit_code_.has_value(); }
  void Signal(int signal) const;
  // The exit code (ExitCodeOf) once the child has ended; does not block.
  std::optional<int> Poll();
  // Blocks until the child ends and returns its exit code.
  int Wait();

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  void KillIfRunning();
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Runs the command as a child and returns its exit code, forwarding SIGTERM, SIGINT,
// SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to it meanwhile: a launcher that is told to
// stop passes that on and reports how the child ended. The signals are blocked in
// this process for the duration (call it from the main thread, before any other).
StatusOr<int> RunForwardingSignals(const CommandSpec& spec);

// The start of a local supervisor (`mlscale run`, `mlscale sweep`): runs `prepare`; on
// an error prints "mlscale: <message>" to stderr and returns nullopt (the caller exits
// 1). Otherwise blocks SIGINT, SIGTERM and SIGCHLD in this process and returns that set,
// for the supervisor loop that waits for them (sigtimedwait) while its children run:
// Ctrl-C, a stop request and a child's end all arrive there instead of at a handler.
// Children started with ChildProcess::Start get every signal unblocked again. Call it
// from the main thread before other threads start.
std::optional<sigset_t> StartSupervision(const std::function<Status()>& prepare);

// The absolute path of the running executable's folder (from /proc/self/exe).
std::string ExecutableDirectory();

}  // namespace mlscale::launcher
