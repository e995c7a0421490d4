#include "mlscale/launcher/local_run.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <deque>
#include <fstream>
#include <sstream>
#include <thread>

#include "mlscale/common/run_token.h"
#include "mlscale/launcher/process.h"
#include "mlscale/launcher/progress.h"
#include "mlscale/launcher/socket.h"

namespace mlscale::launcher {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;

// After one rank fails, how long the others get to notice and exit by themselves
// (their own message, e.g. "peer rank 2 failed", then lands in their logs).
constexpr milliseconds kPeerFailureGrace{5000};
constexpr milliseconds kTick{200};
constexpr int kExitInterrupted = 130;

std::string ReadFile(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// The last `count` lines of a file, indented, for showing a failed rank's log.
std::string LastLines(const fs::path& path, std::size_t count) {
  std::ifstream file(path);
  std::deque<std::string> lines;
  for (std::string line; std::getline(file, line);) {
    lines.push_back(std::move(line));
    if (lines.size() > count) lines.pop_front();
  }
  std::string text;
  for (const auto& line : lines) text += "    " + line + "\n";
  return text;
}

// ": <the last line of a log that says 'error'>" (what a rank said when it stopped), or "".
std::string LastTrainerError(const fs::path& log) {
  std::ifstream file(log);
  std::string found;
  for (std::string line; std::getline(file, line);) {
    if (line.find("error") != std::string::npos) found = line;
  }
  return found.empty() ? "" : " (" + found + ")";
}

StatusOr<std::uint16_t> FreeLoopbackPort() {
  auto socket = ListenTcp("127.0.0.1", 0);
  if (!socket.ok()) return socket.status();
  return LocalPort(socket->get());
}

int TerminalWidth() {
  winsize size{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 100;
}

// Shows the progress file as it changes: a redrawn bar, or a line now and then.
class ProgressView {
 public:
  ProgressView(fs::path file, bool terminal) : file_(std::move(file)), terminal_(terminal) {}

  void Refresh() {
    std::error_code error;
    auto modified = fs::last_write_time(file_, error);
    if (error || modified == last_modified_) return;
    last_modified_ = modified;
    json parsed = json::parse(ReadFile(file_), nullptr, /*allow_exceptions=*/false);
    auto progress = ParseProgress(parsed);
    if (!progress.ok()) return;  // a file from an older trainer, or half a file: skip it
    if (terminal_) {
      std::printf("\r%s\x1b[K", FormatProgressBar(*progress, TerminalWidth() - 1).c_str());
      std::fflush(stdout);
      bar_drawn_ = true;
      return;
    }
    // Without a terminal (CI, a pipe), a line every few seconds or at each new epoch.
    latest_ = *progress;
    auto now = Clock::now();
    bool new_epoch = progress->epoch != last_epoch_ && now - last_line_ >= std::chrono::seconds(1);
    if (new_epoch || now - last_line_ >= std::chrono::seconds(5)) PrintLine(now);
  }

  // Ends the bar's line so that what follows starts on a line of its own.
  // Without a terminal, prints the last state if it has not been printed yet.
  void Finish() {
    if (bar_drawn_) std::printf("\n");
    bar_drawn_ = false;
    if (latest_ && latest_->step != printed_step_) PrintLine(Clock::now());
  }

 private:
  void PrintLine(Clock::time_point now) {
    std::printf("%s\n", FormatProgressLine(*latest_).c_str());
    std::fflush(stdout);
    last_line_ = now;
    last_epoch_ = latest_->epoch;
    printed_step_ = latest_->step;
  }

  fs::path file_;
  bool terminal_;
  std::optional<Progress> latest_;  // without a terminal: the last state read
  std::int64_t printed_step_ = -1;
  fs::file_time_type last_modified_{};
  Clock::time_point last_line_{};
  std::int64_t last_epoch_ = -1;
  bool bar_drawn_ = false;
};

struct Worker {
  std::string name;  // "rank 2", or "mpirun"
  fs::path log;
  ChildProcess process;
  std::optional<int> exit_code;
  int failure_order = -1;  // 0 for the first worker that failed, 1 for the next, ...
};

class LocalRun {
 public:
  LocalRun(const api::TrainingJob& job, const LocalRunOptions& options)
      : job_(job), options_(options), layout_(options.run_directory),
        progress_(layout_.progress, options.terminal) {}

  int Run() {
    // Ctrl-C and SIGTERM are handled by the loop below (the workers run in a process
    // group of their own, so the terminal's Ctrl-C reaches only this process).
    const std::optional<sigset_t> signals = StartSupervision([this] { return Prepare(); });
    if (!signals) return 1;
    auto start = Clock::now();
    Status started = Start();
    if (!started.ok()) {
      std::fprintf(stderr, "mlscale: %s\n", started.message().c_str());
      return 1;
    }
    Supervise(*signals);
    progress_.Refresh();  // the last state the trainer wrote
    progress_.Finish();
    return Report(std::chrono::duration<double>(Clock::now() - start).count());
  }

 private:
  Status Prepare() {
    // A fresh secret per run: other local users cannot join or feed our ranks.
    auto token = GenerateRunToken();
    if (!token.ok()) return token.status().WithContext("making the run token");
    run_token_ = std::move(*token);
    std::error_code error;
    for (const auto& folder : {layout_.root, layout_.checkpoints, layout_.model, layout_.logs}) {
      fs::create_directories(folder, error);
      if (error) return Internal("cannot create " + folder.string() + ": " + error.message());
    }
    std::ofstream config(layout_.trainer_config, std::ios::trunc);
    config << job_.spec.trainer.dump(2) << "\n";
    config.close();
    if (!config) return Internal("cannot write " + layout_.trainer_config.string());
    fs::remove(layout_.result, error);
    fs::remove(layout_.progress, error);
    for (const auto& entry : fs::directory_iterator(layout_.logs, error)) fs::remove(entry.path(), error);

    auto ignored = job_.spec.ClusterOnlyFields();
    if (!ignored.empty()) {
      std::string names;
      for (const auto& name : ignored) names += (names.empty() ? "spec." : ", spec.") + name;
      std::printf("note: cluster-only fields, ignored in a local run: %s\n", names.c_str());
    }
    std::printf("TrainingJob %s: %lld worker%s (%s launcher, %s backend), run folder %s\n", job_.name.c_str(),
                static_cast<long long>(job_.spec.replicas), job_.spec.replicas == 1 ? "" : "s",
                std::string(api::LauncherKindName(job_.spec.launcher)).c_str(),
                std::string(api::BackendName(job_.spec.backend)).c_str(), layout_.root.string().c_str());
    if (fs::exists(layout_.checkpoints) && !fs::is_empty(layout_.checkpoints, error)) {
      std::printf("resuming from the latest checkpoint in %s\n", layout_.checkpoints.string().c_str());
    }
    std::fflush(stdout);
    return Status::Ok();
  }

  std::vector<std::string> TrainerCommand() const {
    return {options_.trainer_program, "--config",       layout_.trainer_config.string(),
            "--checkpoint-dir",       layout_.checkpoints.string(), "--output-dir", layout_.model.string(),
            "--backend",              std::string(api::BackendName(job_.spec.backend))};
  }

  std::map<std::string, std::string> CommonEnvironment() const {
    return {{"MLSCALE_RUN_ID", job_.name + "-" + std::to_string(::getpid())},
            {kRunTokenVariable, run_token_},
            {"MLSCALE_RESULT_FILE", layout_.result.string()},
            {"MLSCALE_PROGRESS_FILE", layout_.progress.string()},
            // Rank 0's launcher serves the progress (this CLI reads the file): any free
            // port, so that runs side by side do not collide.
            {"MLSCALE_PROGRESS_PORT", "0"}};
  }

  std::string TimeoutSeconds() const {
    return std::to_string(std::chrono::duration<double>(options_.rendezvous_timeout).count());
  }

  Status StartWorker(std::string name, std::vector<std::string> argv, std::map<std::string, std::string> environment,
                     fs::path log) {
    CommandSpec spec{std::move(argv), std::move(environment), log.string(), process_group_, SIGTERM};
    auto process = ChildProcess::Start(spec);
    if (!process.ok()) return process.status().WithContext("starting " + name);
    if (process_group_ == 0) process_group_ = process->pid();
    workers_.push_back({std::move(name), std::move(log), std::move(*process), std::nullopt, -1});
    return Status::Ok();
  }

  Status Start() {
    if (job_.spec.launcher == api::LauncherKind::kMpi) {
      std::ofstream hostfile(layout_.hostfile, std::ios::trunc);
      // As many slots as cores: with more ranks, mpirun oversubscribes, and Open MPI
      // then yields the core while it waits instead of spinning on it.
      auto cores = static_cast<std::int64_t>(std::max(1u, std::thread::hardware_concurrency()));
      hostfile << "localhost slots=" << std::min(job_.spec.replicas, cores) << "\n";
      hostfile.close();
      if (!hostfile) return Internal("cannot write " + layout_.hostfile.string());
      std::vector<std::string> argv{options_.launcher_program, "--mode", "mpi", "--hostfile", layout_.hostfile.string(),
                                    "--np", std::to_string(job_.spec.replicas), "--timeout", TimeoutSeconds(), "--"};
      for (auto& part : TrainerCommand()) argv.push_back(std::move(part));
      return StartWorker("mpirun", std::move(argv), CommonEnvironment(), layout_.logs / "mpirun.log");
    }
    auto port = FreeLoopbackPort();
    if (!port.ok()) return port.status().WithContext("finding a free port for the rendezvous");
    std::string world_size = std::to_string(job_.spec.replicas);
    for (std::int64_t rank = 0; rank < job_.spec.replicas; ++rank) {
      auto environment = CommonEnvironment();
      environment.insert({{"WORLD_SIZE", world_size}, {"RANK", std::to_string(rank)},
                          {"LOCAL_RANK", std::to_string(rank)}, {"LOCAL_WORLD_SIZE", world_size},
                          {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(*port)}});
      std::vector<std::string> argv{options_.launcher_program, "--bind-address", "127.0.0.1", "--timeout",
                                    TimeoutSeconds(), "--"};
      for (auto& part : TrainerCommand()) argv.push_back(std::move(part));
      MLSCALE_RETURN_IF_ERROR(StartWorker("rank " + std::to_string(rank), std::move(argv), std::move(environment),
                                          layout_.logs / ("rank-" + std::to_string(rank) + ".log")));
    }
    return Status::Ok();
  }

  bool AnyRunning() const {
    return std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return !w.exit_code; });
  }

  void SignalRunning(int signal) {
    for (auto& worker : workers_) {
      if (!worker.exit_code) worker.process.Signal(signal);
    }
  }

  void KillGroup() {
    if (process_group_ > 0) ::kill(-process_group_, SIGKILL);
  }

  // Waits for every worker, reacting to Ctrl-C and to the first failure.
  void Supervise(const sigset_t& signals) {
    constexpr auto kNever = Clock::time_point::max();
    Clock::time_point terminate_at = kNever, kill_at = kNever;
    while (AnyRunning()) {
      timespec tick{0, static_cast<long>(std::chrono::nanoseconds(kTick).count())};
      int signal = ::sigtimedwait(&signals, nullptr, &tick);
      auto now = Clock::now();
      if (signal == SIGINT || signal == SIGTERM) {
        progress_.Finish();
        if (!interrupted_) {
          interrupted_ = true;
          std::printf("stopping: each trainer writes a checkpoint and exits (Ctrl-C again to kill them now)\n");
          std::fflush(stdout);
          SignalRunning(SIGTERM);
          kill_at = now + options_.stop_grace;
        } else {
          KillGroup();
        }
      }
      for (auto& worker : workers_) {
        if (worker.exit_code) continue;
        worker.exit_code = worker.process.Poll();
        if (worker.exit_code && *worker.exit_code != 0) worker.failure_order = failures_++;
      }
      if (!interrupted_ && failures_ > 0 && !stopping_after_failure_) {
        stopping_after_failure_ = true;
        terminate_at = now + kPeerFailureGrace;
      }
      if (now >= terminate_at) {
        SignalRunning(SIGTERM);
        terminate_at = kNever;
        kill_at = now + options_.stop_grace;
      }
      if (now >= kill_at) {
        KillGroup();
        kill_at = kNever;
      }
      progress_.Refresh();
    }
    // The trainers of killed launchers may still be around; they are in the group.
    if (interrupted_ || failures_ > 0) KillGroup();
  }

  // The worker whose failure stopped the run: the first to fail, unless one failed for
  // a reason of its own around the same time (exit code 2 means "a peer failed", 143
  // "stopped on request").
  const Worker* Cause() const {
    const Worker* cause = nullptr;
    for (const auto& worker : workers_) {
      if (worker.failure_order < 0) continue;
      bool own = *worker.exit_code != 2 && *worker.exit_code != 143;
      bool cause_own = cause != nullptr && *cause->exit_code != 2 && *cause->exit_code != 143;
      if (cause == nullptr || (own && !cause_own) || (own == cause_own && worker.failure_order < cause->failure_order)) {
        cause = &worker;
      }
    }
    return cause;
  }

  int Report(double wall_seconds) {
    if (!interrupted_ && failures_ > 0) {
      const Worker* cause = Cause();
      std::fprintf(stderr, "mlscale: %s failed (%s); the run is stopped. Its log (%s) ends with:\n%s",
                   cause->name.c_str(), DescribeExitCode(*cause->exit_code).c_str(),
                   cause->log.string().c_str(), LastLines(cause->log, 15).c_str());
      for (const auto& worker : workers_) {
        if (&worker == cause) continue;
        std::fprintf(stderr, "mlscale: %s: %s%s\n", worker.name.c_str(),
                     DescribeExitCode(worker.exit_code.value_or(255)).c_str(), LastTrainerError(worker.log).c_str());
      }
      std::fprintf(stderr, "mlscale: logs in %s; a re-run resumes from the last checkpoint\n",
                   layout_.logs.string().c_str());
      return 1;
    }
    if (interrupted_) {
      // A worker that did not stop as asked (143) or finish (0) may have left no checkpoint.
      for (const auto& worker : workers_) {
        const int code = worker.exit_code.value_or(255);
        if (code == 0 || code == 143) continue;
        std::fprintf(stderr, "mlscale: %s did not stop cleanly (%s); its log (%s) ends with:\n%s", worker.name.c_str(),
                     DescribeExitCode(code).c_str(), worker.log.string().c_str(), LastLines(worker.log, 15).c_str());
      }
      std::printf("stopped after %s. Checkpoints are in %s; run the same command again to resume.\n",
                  WallTime(wall_seconds).c_str(), layout_.checkpoints.string().c_str());
      return kExitInterrupted;
    }
    PrintSummary(wall_seconds);
    return 0;
  }

  // The summary, from the result rank 0 wrote (see worker's TrainResult).
  void PrintSummary(double wall_seconds) const {
    json result = json::parse(ReadFile(layout_.result), nullptr, /*allow_exceptions=*/false);
    std::printf("TrainingJob %s finished in %s (%lld worker%s)\n", job_.name.c_str(), WallTime(wall_seconds).c_str(),
                static_cast<long long>(job_.spec.replicas), job_.spec.replicas == 1 ? "" : "s");
    if (!result.is_object()) {
      std::printf("  (the trainer wrote no result to %s)\n", layout_.result.string().c_str());
    } else {
      auto number = [&](const char* key) -> double {
        auto it = result.find(key);
        return it != result.end() && it->is_number() ? it->get<double>() : -1;
      };
      double steps = number("steps"), resumed_from = number("resumedFromStep");
      if (number("accuracy") >= 0) std::printf("  test accuracy  %.2f %%\n", 100.0 * number("accuracy"));
      if (number("testLoss") >= 0) std::printf("  test loss      %.4f\n", number("testLoss"));
      if (steps >= 0) {
        std::printf("  steps          %.0f", steps);
        if (resumed_from > 0) std::printf(" (resumed from step %.0f)", resumed_from);
        std::printf("\n");
      }
      if (steps > resumed_from && number("samplesPerSecond") > 0) {
        std::printf("  training loss  %.4f\n", number("loss"));
        std::printf("  throughput     %.0f samples/s\n", number("samplesPerSecond"));
      }
      if (steps >= 0 && steps == resumed_from) {
        std::printf("  (the job had already finished: its last checkpoint was final; remove %s to train again)\n",
                    layout_.root.string().c_str());
      }
    }
    std::printf("  model          %s\n", layout_.model.string().c_str());
    std::printf("  checkpoints    %s\n", layout_.checkpoints.string().c_str());
    std::printf("  logs           %s\n", layout_.logs.string().c_str());
    std::fflush(stdout);
  }

  // "0.8 s" under a minute, else "1:05".
  static std::string WallTime(double seconds) {
    if (seconds >= 60) return FormatDuration(seconds);
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", seconds);
    return text;
  }

  const api::TrainingJob& job_;
  const LocalRunOptions& options_;
  RunLayout layout_;
  ProgressView progress_;
  std::string run_token_;
  std::vector<Worker> workers_;
  pid_t process_group_ = 0;  // 0 until the first worker starts and leads it
  bool interrupted_ = false;
  int failures_ = 0;
  bool stopping_after_failure_ = false;
};

}  // namespace

RunLayout::RunLayout(const fs::path& directory)
    : root(directory), checkpoints(directory / "checkpoints"), model(directory / "model"), logs(directory / "logs"),
      trainer_config(directory / "trainer.json"), progress(directory / "progress.json"),
      result(directory / "result.json"), hostfile(directory / "hostfile") {}

int RunLocal(const api::TrainingJob& job, const LocalRunOptions& options) { return LocalRun(job, options).Run(); }

}  // namespace mlscale::launcher
