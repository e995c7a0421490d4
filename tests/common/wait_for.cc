#include "wait_for.h"

#include <sys/wait.h>

#include <thread>

namespace mlscale::testing {

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds limit,
             std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(interval);
  }
  return condition();
}

bool WaitForExit(pid_t pid, std::chrono::milliseconds limit) {
  return WaitFor([pid] { return waitpid(pid, nullptr, WNOHANG) == pid; }, limit, std::chrono::milliseconds(20));
}

}  // namespace mlscale::testing
