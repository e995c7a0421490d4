// Issuing many independent requests (a controller's child creations) concurrently, in
// growing batches, as the ReplicaSet and Job controllers' slowStartBatch do: first 1,
// then twice as many as the last batch, up to `max_parallel` in flight. The first batch
// that has a failure is the last: a parent whose creations all fail the same way (a quota,
// an admission webhook) costs a few requests, not one per child, and the next reconcile
// tries again.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::kube {

struct SlowStartOptions {
  size_t initial_batch = 1;
  size_t max_parallel = 16;  // requests in flight at once
};

// Calls `issue(i)` for i in [0, count) as described above, each batch's calls on threads
// of their own (joined before the next batch). Returns one status per index: what `issue`
// returned, or Unavailable ("not attempted") for indices after the failing batch.
// `issue` must be safe to call concurrently.
std::vector<Status> SlowStartBatch(size_t count, const std::function<Status(size_t index)>& issue,
                                   SlowStartOptions options = {});

}  // namespace mlscale::kube
