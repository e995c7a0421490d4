// Runs one pod's containers as local processes, as the kubelet's pod worker does:
// init containers one after another, then every container at once, each restarted
// according to the restart policy (with exponential back-off), readiness probes setting
// Ready and liveness probes restarting, the termination message read from the file the
// container's terminationMessagePath is mapped to, and on Terminate() SIGTERM to every
// container then SIGKILL once the grace period is over.
//
// Files live in the pod's folder: hosts (bound over /etc/hosts), <container>.log
// (stdout+stderr, appended across restarts) and <container>.termination-log (bound over
// the terminationMessagePath and named by $MLSCALE_TERMINATION_LOG).
//
// A PodRuntime owns one thread, which spawns, probes and reaps; destroying the runtime
// kills whatever still runs and joins it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pod_plan.h"
#include "pod_status.h"
#include "process.h"

namespace mlscale::nodeagent {

struct RuntimeOptions {
  std::string pod_dir;   // created if missing; holds the hosts file, logs, termination logs
  std::string pod_ip;
  std::string host_ip;
  std::string hosts_text;  // the first contents of the pod's hosts file
  // Restart back-off: initial delay, doubled per restart up to the maximum (the kubelet
  // uses 10 s and 5 min; tests want it shorter).
  std::chrono::milliseconds restart_backoff{1000};
  std::chrono::milliseconds max_restart_backoff{30'000};
  // The error that prevents the pod's plan, if any: every container then waits with
  // the matching reason (ErrImagePull, CreateContainerConfigError) and nothing runs.
  std::optional<Status> plan_error;
  // Called on the runtime's thread whenever the observed state changed (no lock held).
  std::function<void()> on_change;
};

class PodRuntime {
 public:
  PodRuntime(PodPlan plan, RuntimeOptions options);
  ~PodRuntime();  // SIGKILLs what still runs and joins the thread
  PodRuntime(const PodRuntime&) = delete;
  PodRuntime& operator=(const PodRuntime&) = delete;

  void Start();
  // Stops the pod: SIGTERM to every running container now, SIGKILL to those still
  // running after `grace`; nothing is (re)started afterwards. Idempotent (a shorter
  // grace given later takes effect).
  void Terminate(std::chrono::milliseconds grace);
  // Terminate() was called and every container process is gone.
  bool Finished() const { return finished_.load(); }
  // True once no container runs nor will run again (pod terminal or finished).
  bool Done() const;

  PodObserved Observe() const;
  const PodPlan& plan() const { return plan_; }
  const std::string& pod_dir() const { return options_.pod_dir; }
  // Rewrites the pod's hosts file in place, so running containers see new names.
  void UpdateHosts(const std::string& hosts_text);

 private:
  struct Slot;

  void Run(std::stop_token stop);
  // One pass: signals, reaping, starts, probes. Returns whether anything changed.
  bool Tick();
  bool Reap(Slot& slot);
  // Records the end of a run and decides, by the restart policy, whether and when the
  // container starts again.
  void FinishRun(Slot& slot, ContainerState terminated);
  bool StartIfDue(Slot& slot);
  bool Probe(Slot& slot);
  LaunchSpec LaunchFor(const Slot& slot) const;
  std::string TerminationMessage(const Slot& slot, int exit_code) const;
  bool NoneRunning() const;
  bool WillRestart(const Slot& slot, int exit_code) const;

  const PodPlan plan_;
  const RuntimeOptions options_;
  std::string hosts_file_;

  mutable std::mutex mutex_;  // guards observed_ and the termination request
  std::condition_variable_any wake_;
  PodObserved observed_;
  std::optional<std::chrono::steady_clock::time_point> kill_deadline_;
  bool terminate_signalled_ = false;
  std::atomic<bool> finished_{false};

  std::vector<std::unique_ptr<Slot>> init_slots_;  // touched only by the thread
  std::vector<std::unique_ptr<Slot>> slots_;
  size_t next_init_ = 0;
  std::jthread thread_;
};

}  // namespace mlscale::nodeagent
