// The operator's metrics registry: common/metrics' Registry (Prometheus text format),
// one per process, passed to the parts that record (client, watcher, work queue,
// controllers). The names below keep the kube API as the controllers know it.
#pragma once

#include "mlscale/metrics/registry.h"

namespace mlscale::kube {

using Labels = metrics::Labels;
using Metrics = metrics::Registry;

}  // namespace mlscale::kube
