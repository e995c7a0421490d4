#include "mlscale/kube/slow_start.h"

#include <algorithm>
#include <thread>

namespace mlscale::kube {

std::vector<Status> SlowStartBatch(size_t count, const std::function<Status(size_t index)>& issue,
                                   SlowStartOptions options) {
  std::vector<Status> results(count, Unavailable("not attempted: an earlier request of the batch failed"));
  const size_t max_parallel = std::max<size_t>(1, options.max_parallel);
  size_t batch = std::clamp<size_t>(options.initial_batch, 1, max_parallel);
  size_t next = 0;
  while (next < count) {
    const size_t size = std::min(batch, count - next);
    if (size == 1) {
      results[next] = issue(next);  // no thread for a batch of one
    } else {
      std::vector<std::jthread> threads;
      threads.reserve(size - 1);
      for (size_t i = next + 1; i < next + size; ++i) threads.emplace_back([&results, &issue, i] { results[i] = issue(i); });
      results[next] = issue(next);
    }  // threads joined here
    bool failed = false;
    for (size_t i = next; i < next + size; ++i) failed = failed || !results[i].ok();
    next += size;
    if (failed) break;
    batch = std::min(batch * 2, max_parallel);
  }
  return results;
}

}  // namespace mlscale::kube
