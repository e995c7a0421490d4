#include "process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mlscale::nodeagent {
namespace {

// What the child reports through the error pipe when a step before exec fails.
struct ChildFailure {
  int step;
  int error;
};
constexpr const char* kSteps[] = {"setsid", "unshare(mount, uts)", "making mounts private",
                                  "binding the hosts file over /etc/hosts", "binding a volume or file",
                                  "sethostname", "redirecting output", "chdir", "exec"};
enum Step { kSetsid, kUnshare, kPrivate, kBindHosts, kBindFile, kHostname, kRedirect, kChdir, kExec };

[[noreturn]] void Fail(int fd, Step step) {
  ChildFailure failure{step, errno};
  ssize_t ignored = write(fd, &failure, sizeof failure);
  (void)ignored;
  _exit(127);
}

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

StatusOr<std::string> ResolveProgram(const std::string& name, const std::vector<std::string>& env) {
  if (name.empty()) return InvalidArgument("empty program name");
  if (name.find('/') != std::string::npos) return name;
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const std::string& entry : env) {
    if (entry.rfind("PATH=", 0) == 0) path = entry.substr(5);
  }
  size_t begin = 0;
  while (begin <= path.size()) {
    size_t end = path.find(':', begin);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(begin, end - begin);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat info {};
    if (stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    begin = end + 1;
  }
  return NotFound("executable file '" + name + "' not found in $PATH (" + path + ")");
}

StatusOr<std::unique_ptr<Process>> Process::Spawn(const LaunchSpec& spec) {
  if (spec.argv.empty()) return InvalidArgument("no program to start");
  StatusOr<std::string> program = ResolveProgram(spec.argv[0], spec.env);
  if (!program.ok()) return program.status();

  // Everything the child needs is prepared here: between fork and exec only system calls.
  std::vector<char*> argv = CStrings(spec.argv);
  std::vector<char*> envp = CStrings(spec.env);
  int output = open(spec.log_file.empty() ? "/dev/null" : spec.log_file.c_str(),
                    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (output < 0) return Internal("opening " + spec.log_file + ": " + std::strerror(errno));
  int input = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int error_pipe[2];
  if (input < 0 || pipe2(error_pipe, O_CLOEXEC) != 0) {
    int error = errno;
    close(output);
    if (input >= 0) close(input);
    return Internal(std::string("preparing to start a process: ") + std::strerror(error));
  }
  const Sandbox& sandbox = spec.sandbox;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    int report = error_pipe[1];
    // Die with the agent rather than linger as an orphan the agent can no longer see.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) signal(sig, SIG_DFL);
    if (setsid() < 0) Fail(report, kSetsid);
    if (!sandbox.empty()) {
      int flags = CLONE_NEWNS | (sandbox.hostname.empty() ? 0 : CLONE_NEWUTS);
      if (unshare(flags) != 0) Fail(report, kUnshare);
      if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Fail(report, kPrivate);
      if (!sandbox.hosts_file.empty() &&
          mount(sandbox.hosts_file.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) {
        Fail(report, kBindHosts);
      }
      for (const auto& [source, target] : sandbox.binds) {
        if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) Fail(report, kBindFile);
      }
      if (!sandbox.hostname.empty() &&
          sethostname(sandbox.hostname.data(), sandbox.hostname.size()) != 0) {
        Fail(report, kHostname);
      }
    }
    if (dup2(input, STDIN_FILENO) < 0 || dup2(output, STDOUT_FILENO) < 0 ||
        dup2(output, STDERR_FILENO) < 0) {
      Fail(report, kRedirect);
    }
    if (!spec.working_dir.empty() && chdir(spec.working_dir.c_str()) != 0) Fail(report, kChdir);
    execve(program->c_str(), argv.data(), envp.data());
    Fail(report, kExec);
  }
  int fork_error = errno;
  close(error_pipe[1]);
  close(output);
  close(input);
  if (pid < 0) {
    close(error_pipe[0]);
    return Internal(std::string("fork: ") + std::strerror(fork_error));
  }
  ChildFailure failure{};
  ssize_t n;
  do {
    n = read(error_pipe[0], &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  close(error_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof failure)) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return FailedPrecondition("starting " + *program + ": " + kSteps[failure.step] + ": " +
                              std::strerror(failure.error));
  }
  return std::make_unique<Process>(SpawnedTag{}, pid);
}

Process::~Process() {
  if (exit_) return;
  kill(-pid_, SIGKILL);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

std::optional<ExitStatus> Process::Poll() {
  if (exit_) return exit_;
  int status = 0;
  pid_t reaped = waitpid(pid_, &status, WNOHANG);
  if (reaped != pid_) return std::nullopt;
  ExitStatus result;
  if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
    result.exit_code = 128 + result.signal;
  } else {
    result.exit_code = WEXITSTATUS(status);
  }
  // Like a container runtime: the container ends with its main process.
  kill(-pid_, SIGKILL);
  exit_ = result;
  return exit_;
}

void Process::Signal(int signal) {
  if (!exit_) kill(-pid_, signal);
}

}  // namespace mlscale::nodeagent
