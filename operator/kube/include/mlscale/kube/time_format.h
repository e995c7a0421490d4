// Kubernetes timestamps (metav1.Time and MicroTime) of the current instant.
#pragma once

#include <string>

namespace mlscale::kube {

// Now as metav1.MicroTime: "2026-01-02T03:04:05.123456Z".
std::string MicroTimeNow();
// Now as metav1.Time: "2026-01-02T03:04:05Z".
std::string TimeNow();

}  // namespace mlscale::kube
