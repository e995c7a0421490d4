// One container's process: started in a sandbox of its own (a private mount namespace
// with the pod's hosts file bound over /etc/hosts, further files bound over their
// targets, and a UTS namespace with the pod's hostname) as the leader of a new process
// group, so signals reach everything it started. Owned by a Process object: destroying
// it SIGKILLs the group and reaps the leader. Linux only; sandboxing needs root.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::nodeagent {

struct Sandbox {
  std::string hosts_file;  // bound over /etc/hosts; "" = the host's
  std::string hostname;    // set in a new UTS namespace; "" = the host's
  // (source, target) files or folders bound over existing targets, in order: volumes
  // over their mount paths, the container's termination-log file over
  // /dev/termination-log.
  std::vector<std::pair<std::string, std::string>> binds;
  bool empty() const { return hosts_file.empty() && hostname.empty() && binds.empty(); }
};

struct LaunchSpec {
  std::vector<std::string> argv;  // argv[0]: a path, or a name looked up in env's PATH
  std::vector<std::string> env;   // "NAME=value": the whole environment
  std::string working_dir;        // "" = the agent's
  std::string log_file;           // stdout and stderr are appended here; "" = discarded
  Sandbox sandbox;
};

struct ExitStatus {
  int exit_code = 0;  // 128+N when killed by signal N, as a shell reports it
  int signal = 0;     // the signal that killed it, or 0
};

class Process {
 public:
  // Starts the process. Errors say which step failed (program not found, namespace,
  // bind mount, chdir, exec) with the system's reason.
  static StatusOr<std::unique_ptr<Process>> Spawn(const LaunchSpec& spec);
  ~Process();  // SIGKILLs the process group and reaps the leader
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // The exit status once the leader has exited (the rest of the group is then killed),
  // without blocking.
  std::optional<ExitStatus> Poll();
  // Sends `signal` to the whole process group (no-op once reaped).
  void Signal(int signal);

 private:
  struct SpawnedTag {};  // only Spawn() makes Process objects

 public:
  Process(SpawnedTag, pid_t pid) : pid_(pid) {}

 private:
  pid_t pid_;
  std::optional<ExitStatus> exit_;
};

// Finds `name` the way execvp would, but in the PATH of `env` (the container's
// environment, not the agent's). A name with a '/' is returned as is. NotFound when no
// executable file matches.
StatusOr<std::string> ResolveProgram(const std::string& name, const std::vector<std::string>& env);

}  // namespace mlscale::nodeagent
