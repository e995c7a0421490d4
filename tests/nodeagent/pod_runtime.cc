#include "pod_runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "probe.h"

namespace mlscale::nodeagent {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxTerminationMessage = 4096;  // the kubelet's limits
constexpr size_t kFallbackLogBytes = 2048;
constexpr int kFallbackLogLines = 80;

std::string ReadFileFrom(const std::string& path, off_t offset, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(offset);
  std::string text(max_bytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(max_bytes));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

off_t FileSize(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0 ? info.st_size : 0;
}

// The last `lines` lines of `text`, at most `bytes` bytes.
std::string Tail(const std::string& text, int lines, size_t bytes) {
  std::string out = text.size() > bytes ? text.substr(text.size() - bytes) : text;
  size_t pos = out.size();
  if (pos > 0 && out[pos - 1] == '\n') --pos;  // a final newline ends the last line
  int newlines = 0;
  while (pos > 0 && !(out[pos - 1] == '\n' && ++newlines == lines)) --pos;
  return out.substr(pos);
}

void WriteInPlace(const std::string& path, const std::string& text) {
  // Same inode, so the bind mounts in running containers see the new text.
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t written = pwrite(fd, text.data(), text.size(), 0);
  if (written == static_cast<ssize_t>(text.size())) {
    int ignored = ftruncate(fd, static_cast<off_t>(text.size()));
    (void)ignored;
  }
  close(fd);
}

// Appends one line to the container's run record (<container>.log.runs, read by the log
// endpoint: log_endpoint.h): "start <offset>" when a run starts writing its log at that
// offset, "end <offset>" when it has exited with the log at that size.
void RecordRun(const std::string& log_file, const char* event, off_t offset) {
  std::ofstream(log_file + ".runs", std::ios::app) << event << ' ' << offset << '\n';
}

// Makes sure a bind-mount target exists on the host, like the one of `source` (a folder
// or a file): folders are created with their parents, a file target is created empty
// when its folder exists. A container that mounts /data thus leaves an empty /data on
// the host; what it writes there stays in its own volume.
bool EnsureMountTarget(const std::string& source, const std::string& target) {
  std::error_code error;
  if (std::filesystem::is_directory(source, error)) {
    std::filesystem::create_directories(target, error);
    return std::filesystem::is_directory(target, error);
  }
  struct stat info {};
  if (stat(target.c_str(), &info) == 0) return S_ISREG(info.st_mode) || S_ISCHR(info.st_mode);
  int fd = open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// Creates the pod's volumes: folders of its own for emptyDir, configMap and secret
// volumes (the latter filled with their files), the host folder for hostPath.
void PrepareVolumes(const PodPlan& plan, const std::string& pod_dir) {
  std::error_code error;
  for (const VolumePlan& volume : plan.volumes) {
    if (volume.kind == VolumePlan::Kind::kHostPath) {
      if (volume.create_host_path) std::filesystem::create_directories(volume.host_path, error);
      continue;
    }
    std::filesystem::path dir = std::filesystem::path(pod_dir) / "volumes" / volume.name;
    std::filesystem::create_directories(dir, error);
    for (const auto& [relative, content] : volume.files) {
      std::filesystem::create_directories((dir / relative).parent_path(), error);
      std::ofstream(dir / relative, std::ios::binary) << content;
    }
  }
}

}  // namespace

struct PodRuntime::Slot {
  const ContainerPlan* plan = nullptr;
  bool init = false;
  std::string log_file;
  std::string termination_file;
  std::unique_ptr<Process> process;
  ContainerObserved observed;
  int runs = 0;
  bool done = false;  // stopped for good
  off_t log_offset = 0;
  Clock::time_point next_start{};
  Clock::time_point next_readiness{};
  Clock::time_point next_liveness{};
  int readiness_successes = 0;
  int readiness_failures = 0;
  int liveness_failures = 0;
  std::optional<Clock::time_point> liveness_kill_deadline;
};

PodRuntime::PodRuntime(PodPlan plan, RuntimeOptions options)
    : plan_(std::move(plan)), options_(std::move(options)) {
  std::error_code ignored;
  std::filesystem::create_directories(options_.pod_dir, ignored);
  hosts_file_ = options_.pod_dir + "/hosts";
  WriteInPlace(hosts_file_, options_.hosts_text);
  PrepareVolumes(plan_, options_.pod_dir);
  observed_.pod_ip = options_.pod_ip;
  observed_.host_ip = options_.host_ip;
  observed_.start_time = std::chrono::system_clock::now();
  observed_.initialized = plan_.init_containers.empty() && !options_.plan_error;
  auto make_slots = [this](const std::vector<ContainerPlan>& plans, bool init,
                           std::vector<std::unique_ptr<Slot>>& slots,
                           std::vector<ContainerObserved>& observed) {
    for (const ContainerPlan& container : plans) {
      auto slot = std::make_unique<Slot>();
      slot->plan = &container;
      slot->init = init;
      std::string prefix = options_.pod_dir + "/" + (init ? "init-" : "") + container.name;
      slot->log_file = prefix + ".log";
      slot->termination_file = prefix + ".termination-log";
      slot->observed.name = container.name;
      slot->observed.image = container.image;
      if (options_.plan_error) {
        slot->observed.state.reason = WaitingReasonFor(*options_.plan_error);
        slot->observed.state.message = options_.plan_error->message();
        slot->done = true;
      } else if (init) {
        slot->observed.state.reason = "PodInitializing";
      }
      observed.push_back(slot->observed);
      slots.push_back(std::move(slot));
    }
  };
  make_slots(plan_.init_containers, true, init_slots_, observed_.init_containers);
  make_slots(plan_.containers, false, slots_, observed_.containers);
}

PodRuntime::~PodRuntime() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
  // The slots' Process destructors kill and reap whatever still runs.
}

void PodRuntime::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void PodRuntime::Terminate(std::chrono::milliseconds grace) {
  std::lock_guard lock(mutex_);
  Clock::time_point deadline = Clock::now() + grace;
  if (!kill_deadline_ || deadline < *kill_deadline_) kill_deadline_ = deadline;
  wake_.notify_all();
}

bool PodRuntime::Done() const {
  if (finished_.load()) return true;
  std::lock_guard lock(mutex_);
  std::string phase = PodPhase(observed_, plan_.restart_policy);
  return phase == "Succeeded" || phase == "Failed";
}

PodObserved PodRuntime::Observe() const {
  std::lock_guard lock(mutex_);
  return observed_;
}

void PodRuntime::UpdateHosts(const std::string& hosts_text) {
  std::lock_guard lock(mutex_);
  WriteInPlace(hosts_file_, hosts_text);
}

void PodRuntime::Run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    if (Tick()) {
      {
        std::lock_guard lock(mutex_);
        for (size_t i = 0; i < init_slots_.size(); ++i) observed_.init_containers[i] = init_slots_[i]->observed;
        for (size_t i = 0; i < slots_.size(); ++i) observed_.containers[i] = slots_[i]->observed;
        observed_.initialized = !options_.plan_error && next_init_ == init_slots_.size();
        observed_.terminating = kill_deadline_.has_value();
      }
      if (options_.on_change) options_.on_change();
    }
    if (finished_.load()) return;
    // A pod whose containers all stopped for good has nothing to watch until Terminate().
    bool idle = NoneRunning() && Done();
    std::unique_lock lock(mutex_);
    auto terminate_requested = [this] { return kill_deadline_.has_value() && !terminate_signalled_; };
    if (idle) {
      wake_.wait(lock, stop, terminate_requested);
    } else {
      wake_.wait_for(lock, stop, std::chrono::milliseconds(50), terminate_requested);
    }
  }
}

bool PodRuntime::Tick() {
  Clock::time_point now = Clock::now();
  bool changed = false;
  std::optional<Clock::time_point> kill_deadline;
  bool send_sigterm = false;
  {
    std::lock_guard lock(mutex_);
    kill_deadline = kill_deadline_;
    send_sigterm = kill_deadline_.has_value() && !terminate_signalled_;
    if (send_sigterm) terminate_signalled_ = true;
  }
  auto all_slots = [this](auto&& visit) {
    for (auto& slot : init_slots_) visit(*slot);
    for (auto& slot : slots_) visit(*slot);
  };
  if (send_sigterm) {
    changed = true;  // the pod is now terminating
    all_slots([](Slot& slot) {
      if (slot.process) slot.process->Signal(SIGTERM);
      slot.done = true;  // nothing starts again
    });
  }
  if (kill_deadline && now >= *kill_deadline) {
    all_slots([](Slot& slot) {
      if (slot.process) slot.process->Signal(SIGKILL);
    });
  }
  all_slots([&](Slot& slot) {
    if (slot.process && slot.liveness_kill_deadline && now >= *slot.liveness_kill_deadline) {
      slot.process->Signal(SIGKILL);
    }
  });
  for (auto& slot : init_slots_) changed |= Reap(*slot);
  for (auto& slot : slots_) changed |= Reap(*slot);

  if (kill_deadline) {
    if (NoneRunning()) {
      finished_.store(true);
      changed = true;
    }
    return changed;
  }
  if (options_.plan_error) return changed;

  while (next_init_ < init_slots_.size()) {
    Slot& slot = *init_slots_[next_init_];
    bool succeeded = slot.done && slot.observed.state.kind == ContainerState::Kind::kTerminated &&
                     slot.observed.state.exit_code == 0;
    if (succeeded) {
      ++next_init_;
      changed = true;
      continue;
    }
    changed |= StartIfDue(slot);  // no-op while it runs or once it failed for good
    break;
  }
  if (next_init_ == init_slots_.size()) {
    for (auto& slot : slots_) changed |= StartIfDue(*slot);
    for (auto& slot : slots_) changed |= Probe(*slot);
  }
  return changed;
}

bool PodRuntime::WillRestart(const Slot& slot, int exit_code) const {
  switch (plan_.restart_policy) {
    case RestartPolicy::kAlways: return !slot.init || exit_code != 0;
    case RestartPolicy::kOnFailure: return exit_code != 0;
    case RestartPolicy::kNever: return false;
  }
  return false;
}

bool PodRuntime::Reap(Slot& slot) {
  if (!slot.process) return false;
  std::optional<ExitStatus> exit = slot.process->Poll();
  if (!exit) return false;
  ContainerState terminated;
  terminated.kind = ContainerState::Kind::kTerminated;
  terminated.exit_code = exit->exit_code;
  terminated.signal = exit->signal;
  terminated.reason = exit->exit_code == 0 ? "Completed" : "Error";
  terminated.message = TerminationMessage(slot, exit->exit_code);
  terminated.started_at = slot.observed.state.started_at;
  terminated.finished_at = std::chrono::system_clock::now();
  terminated.container_id = slot.observed.state.container_id;
  slot.process.reset();
  RecordRun(slot.log_file, "end", FileSize(slot.log_file));
  slot.liveness_kill_deadline.reset();
  FinishRun(slot, std::move(terminated));
  return true;
}

void PodRuntime::FinishRun(Slot& slot, ContainerState terminated) {
  slot.observed.ready = false;
  slot.observed.started = false;
  if (slot.done || !WillRestart(slot, terminated.exit_code)) {
    slot.observed.state = std::move(terminated);
    slot.done = true;
    return;
  }
  auto backoff = std::min<std::chrono::milliseconds>(
      options_.restart_backoff * (1 << std::min(slot.runs - 1, 16)), options_.max_restart_backoff);
  slot.next_start = Clock::now() + backoff;
  slot.observed.last_state = std::move(terminated);
  slot.observed.state = ContainerState{};
  slot.observed.state.reason = "CrashLoopBackOff";
  slot.observed.state.message = "back-off " + std::to_string(backoff.count()) +
                                "ms restarting failed container=" + slot.plan->name;
}

LaunchSpec PodRuntime::LaunchFor(const Slot& slot) const {
  LaunchSpec spec;
  spec.argv = slot.plan->argv;
  spec.env = slot.plan->env;
  bool has_hostname = std::any_of(spec.env.begin(), spec.env.end(),
                                  [](const std::string& e) { return e.rfind("HOSTNAME=", 0) == 0; });
  if (!has_hostname) spec.env.push_back("HOSTNAME=" + plan_.hostname);
  spec.env.push_back("MLSCALE_TERMINATION_LOG=" + slot.termination_file);
  spec.working_dir = slot.plan->working_dir.empty() ? options_.pod_dir : slot.plan->working_dir;
  spec.sandbox.hosts_file = hosts_file_;
  spec.sandbox.hostname = plan_.hostname;
  for (const MountPlan& mount : slot.plan->mounts) {
    std::string source;
    for (const VolumePlan& volume : plan_.volumes) {
      if (volume.name != mount.volume) continue;
      source = volume.kind == VolumePlan::Kind::kHostPath ? volume.host_path
                                                          : options_.pod_dir + "/volumes/" + volume.name;
    }
    if (!mount.sub_path.empty()) source += "/" + mount.sub_path;
    spec.sandbox.binds.emplace_back(source, mount.mount_path);
  }
  // Last, so a volume mounted over the message's folder does not hide it.
  spec.sandbox.binds.emplace_back(slot.termination_file, slot.plan->termination_message_path);
  return spec;
}

bool PodRuntime::StartIfDue(Slot& slot) {
  Clock::time_point now = Clock::now();
  if (slot.done || slot.process || now < slot.next_start) return false;
  WriteInPlace(slot.termination_file, "");
  slot.log_offset = FileSize(slot.log_file);
  LaunchSpec spec = LaunchFor(slot);
  spec.log_file = slot.log_file;
  for (size_t i = 0; i + 1 < spec.sandbox.binds.size(); ++i) {  // volumes
    const auto& [source, target] = spec.sandbox.binds[i];
    std::error_code error;
    if (!std::filesystem::exists(source, error)) std::filesystem::create_directories(source, error);  // a new subPath
    EnsureMountTarget(source, target);  // when this fails, Spawn reports the mount's error
  }
  if (!EnsureMountTarget(slot.termination_file, slot.plan->termination_message_path)) {
    spec.sandbox.binds.pop_back();  // the container still has $MLSCALE_TERMINATION_LOG
  }
  if (slot.runs > 0) ++slot.observed.restart_count;
  ++slot.runs;
  StatusOr<std::unique_ptr<Process>> process = Process::Spawn(spec);
  if (!process.ok()) {
    // What a container runtime reports for a container that cannot start.
    ContainerState failed;
    failed.kind = ContainerState::Kind::kTerminated;
    failed.exit_code = 128;
    failed.reason = "StartError";
    failed.message = process.status().message();
    failed.started_at = failed.finished_at = std::chrono::system_clock::now();
    FinishRun(slot, std::move(failed));
    return true;
  }
  slot.process = std::move(*process);
  RecordRun(slot.log_file, "start", slot.log_offset);
  slot.observed.state = ContainerState{};
  slot.observed.state.kind = ContainerState::Kind::kRunning;
  slot.observed.state.reason.clear();
  slot.observed.state.started_at = std::chrono::system_clock::now();
  slot.observed.state.container_id = "mlscale://" + std::to_string(slot.process->pid());
  slot.observed.started = true;
  slot.observed.ready = !slot.init && !slot.plan->readiness.has_value();
  slot.readiness_successes = slot.readiness_failures = slot.liveness_failures = 0;
  if (slot.plan->readiness) {
    slot.next_readiness = now + std::chrono::seconds(slot.plan->readiness->initial_delay_seconds);
  }
  if (slot.plan->liveness) {
    slot.next_liveness = now + std::chrono::seconds(slot.plan->liveness->initial_delay_seconds);
  }
  return true;
}

bool PodRuntime::Probe(Slot& slot) {
  if (!slot.process) return false;
  bool changed = false;
  Clock::time_point now = Clock::now();
  if (slot.plan->readiness && now >= slot.next_readiness) {
    const ProbePlan& probe = *slot.plan->readiness;
    ProbeResult result = RunProbe(probe, options_.pod_ip, LaunchFor(slot));
    slot.next_readiness = Clock::now() + std::chrono::seconds(probe.period_seconds);
    if (result.success) {
      slot.readiness_failures = 0;
      if (++slot.readiness_successes >= probe.success_threshold && !slot.observed.ready) {
        slot.observed.ready = true;
        changed = true;
      }
    } else {
      slot.readiness_successes = 0;
      if (++slot.readiness_failures >= probe.failure_threshold && slot.observed.ready) {
        slot.observed.ready = false;
        changed = true;
      }
    }
  }
  if (slot.plan->liveness && !slot.liveness_kill_deadline && now >= slot.next_liveness) {
    const ProbePlan& probe = *slot.plan->liveness;
    ProbeResult result = RunProbe(probe, options_.pod_ip, LaunchFor(slot));
    slot.next_liveness = Clock::now() + std::chrono::seconds(probe.period_seconds);
    slot.liveness_failures = result.success ? 0 : slot.liveness_failures + 1;
    if (slot.liveness_failures >= probe.failure_threshold) {
      // As the kubelet: the container is killed (grace period, then SIGKILL) and the
      // restart policy decides what follows.
      slot.process->Signal(SIGTERM);
      slot.liveness_kill_deadline = Clock::now() + std::chrono::seconds(plan_.termination_grace_seconds);
    }
  }
  return changed;
}

std::string PodRuntime::TerminationMessage(const Slot& slot, int exit_code) const {
  std::string message = ReadFileFrom(slot.termination_file, 0, kMaxTerminationMessage);
  if (message.empty() && slot.plan->fallback_to_logs_on_error && exit_code != 0) {
    off_t size = FileSize(slot.log_file);
    off_t from = std::max<off_t>(slot.log_offset, size - static_cast<off_t>(kFallbackLogBytes));
    message = Tail(ReadFileFrom(slot.log_file, from, kFallbackLogBytes), kFallbackLogLines,
                   kFallbackLogBytes);
  }
  return message;
}

bool PodRuntime::NoneRunning() const {
  for (const auto& slot : init_slots_) {
    if (slot->process) return false;
  }
  for (const auto& slot : slots_) {
    if (slot->process) return false;
  }
  return true;
}

}  // namespace mlscale::nodeagent
