#include "mlscale/launcher/process.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace mlscale::launcher {
namespace {

constexpr int kForwardedSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

// Environment strings "NAME=value": this process's, with `overrides` applied.
std::vector<std::string> MergedEnvironment(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> merged;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    std::string name(text.substr(0, text.find('=')));
    if (!overrides.contains(name)) merged.emplace_back(text);
  }
  for (const auto& [name, value] : overrides) merged.push_back(name + "=" + value);
  return merged;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

std::string DescribeExitCode(int exit_code) {
  std::string text = "exit code " + std::to_string(exit_code);
  if (exit_code > 128 && exit_code < 128 + NSIG) {
    int signal = exit_code - 128;
    text += " = signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  }
  return text;
}

StatusOr<ChildProcess> ChildProcess::Start(const CommandSpec& spec) {
  if (spec.argv.empty()) return InvalidArgument("empty command");
  // Everything the child needs is prepared before fork: between fork and exec only
  // async-signal-safe calls are allowed.
  std::vector<std::string> argv = spec.argv;
  std::vector<std::string> environment = MergedEnvironment(spec.environment);
  std::vector<char*> argv_pointers = Pointers(argv);
  std::vector<char*> environment_pointers = Pointers(environment);
  int output = -1;
  if (!spec.output_file.empty()) {
    output = ::open(spec.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (output < 0) return Internal("cannot open " + spec.output_file + ": " + std::strerror(errno));
  }
  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) {
    if (output >= 0) ::close(output);
    return Internal(std::string("pipe2: ") + std::strerror(errno));
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int error = errno;
    if (output >= 0) ::close(output);
    ::close(error_pipe[0]);
    ::close(error_pipe[1]);
    return Internal(std::string("fork: ") + std::strerror(error));
  }
  if (pid == 0) {
    if (spec.process_group >= 0) ::setpgid(0, spec.process_group);
    if (spec.parent_death_signal) {
      ::prctl(PR_SET_PDEATHSIG, *spec.parent_death_signal);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    }
    for (int signal = 1; signal < NSIG; ++signal) ::signal(signal, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (output >= 0) {
      ::dup2(output, STDOUT_FILENO);
      ::dup2(output, STDERR_FILENO);
    }
    ::execvpe(argv_pointers[0], argv_pointers.data(), environment_pointers.data());
    int error = errno;
    ssize_t ignored = ::write(error_pipe[1], &error, sizeof error);
    (void)ignored;
    ::_exit(127);
  }
  // Both sides set the group, so it is in place whichever runs first.
  if (spec.process_group >= 0) ::setpgid(pid, spec.process_group == 0 ? pid : spec.process_group);
  if (output >= 0) ::close(output);
  ::close(error_pipe[1]);
  int exec_error = 0;
  ssize_t n;
  do {
    n = ::read(error_pipe[0], &exec_error, sizeof exec_error);
  } while (n < 0 && errno == EINTR);
  ::close(error_pipe[0]);
  ChildProcess child(pid);
  if (n == static_cast<ssize_t>(sizeof exec_error)) {
    child.Wait();
    return FailedPrecondition("cannot run '" + spec.argv[0] + "': " + std::strerror(exec_error));
  }
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), exit_code_(other.exit_code_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    KillIfRunning();
    pid_ = std::exchange(other.pid_, -1);
    exit_code_ = other.exit_code_;
  }
  return *this;
}

ChildProcess::~ChildProcess() { KillIfRunning(); }

void ChildProcess::KillIfRunning() {
  if (pid_ > 0 && running()) {
    ::kill(pid_, SIGKILL);
    Wait();
  }
}

void ChildProcess::Signal(int signal) const {
  if (pid_ > 0 && running()) ::kill(pid_, signal);
}

std::optional<int> ChildProcess::Poll() {
  if (!running() || pid_ <= 0) return exit_code_;
  int status = 0;
  pid_t result = ::waitpid(pid_, &status, WNOHANG);
  if (result == pid_) exit_code_ = ExitCodeOf(status);
  return exit_code_;
}

int ChildProcess::Wait() {
  while (running() && pid_ > 0) {
    int status = 0;
    pid_t result = ::waitpid(pid_, &status, 0);
    if (result == pid_) exit_code_ = ExitCodeOf(status);
    if (result < 0 && errno != EINTR) exit_code_ = 255;
  }
  return exit_code_.value_or(255);
}

StatusOr<int> RunForwardingSignals(const CommandSpec& spec) {
  sigset_t watched, previous;
  sigemptyset(&watched);
  for (int signal : kForwardedSignals) sigaddset(&watched, signal);
  sigaddset(&watched, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &watched, &previous);
  auto child = ChildProcess::Start(spec);
  if (!child.ok()) {
    ::sigprocmask(SIG_SETMASK, &previous, nullptr);
    return child.status();
  }
  while (true) {
    if (auto exit_code = child->Poll()) {
      ::sigprocmask(SIG_SETMASK, &previous, nullptr);
      return *exit_code;
    }
    // A timeout as well as SIGCHLD: a SIGCHLD from another child must not be missed.
    timespec tick{0, 200'000'000};
    int signal = ::sigtimedwait(&watched, nullptr, &tick);
    if (signal > 0 && signal != SIGCHLD) child->Signal(signal);
  }
}

std::optional<sigset_t> StartSupervision(const std::function<Status()>& prepare) {
  if (Status prepared = prepare(); !prepared.ok()) {
    std::fprintf(stderr, "mlscale: %s\n", prepared.message().c_str());
    return std::nullopt;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

std::string ExecutableDirectory() {
  std::error_code error;
  auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string(".") : path.parent_path().string();
}

}  // namespace mlscale::launcher
