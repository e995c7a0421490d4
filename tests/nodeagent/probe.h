// Container probes as the kubelet runs them: exec (a command in the pod's sandbox,
// success on exit 0), httpGet (HTTP/1.1 GET, success on a 2xx/3xx status) and tcpSocket
// (success when a connection opens), each bounded by the probe's timeout.
#pragma once

#include <string>

#include "pod_plan.h"
#include "process.h"

namespace mlscale::nodeagent {

struct ProbeResult {
  bool success = false;
  std::string message;  // why it failed
};

// Runs `probe` once against a pod at `pod_ip`. `exec_base` gives exec probes their
// environment and sandbox (argv is replaced by the probe's command).
ProbeResult RunProbe(const ProbePlan& probe, const std::string& pod_ip, const LaunchSpec& exec_base);

}  // namespace mlscale::nodeagent
