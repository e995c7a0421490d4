// Waiting in tests for something another thread or process makes true.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>

namespace mlscale::testing {

// Polls `condition` every `interval` until it holds or `limit` has passed; returns its
// last value. The default interval suits conditions that run a process (kubectl); an
// in-process condition may poll faster.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds limit,
             std::chrono::milliseconds interval = std::chrono::milliseconds(200));

// Waits up to `limit` for the child process `pid` to exit and reaps it; true when it did.
bool WaitForExit(pid_t pid, std::chrono::milliseconds limit);

}  // namespace mlscale::testing
