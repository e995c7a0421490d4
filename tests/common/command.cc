#include "command.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <thread>

extern char** environ;

namespace mlscale::testing {

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& stdin_text) {
  CommandResult result;
  int in_pipe[2];
  int out_pipe[2];
  if (argv.empty() || pipe2(in_pipe, O_CLOEXEC) != 0) return {127, "cannot start an empty command"};
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(in_pipe[0]);
    close(in_pipe[1]);
    return {127, "pipe failed"};
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int spawn_error = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in_pipe[0]);
  close(out_pipe[1]);
  if (spawn_error != 0) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    return {127, "cannot start " + argv[0]};
  }
  // Write stdin from a thread so a program that prints before reading cannot deadlock us.
  std::thread writer([fd = in_pipe[1], &stdin_text] {
    size_t written = 0;
    while (written < stdin_text.size()) {
      ssize_t n = write(fd, stdin_text.data() + written, stdin_text.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    close(fd);
  });
  std::array<char, 4096> buffer{};
  for (;;) {
    ssize_t n = read(out_pipe[0], buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buffer.data(), static_cast<size_t>(n));
  }
  close(out_pipe[0]);
  writer.join();
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace mlscale::testing
