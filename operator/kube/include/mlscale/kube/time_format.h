// Kubernetes timestamps (metav1.Time and MicroTime): formatting and parsing.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mlscale::kube {

// Now as metav1.MicroTime: "2026-01-02T03:04:05.123456Z".
std::string MicroTimeNow();
// Now as metav1.Time: "2026-01-02T03:04:05Z".
std::string TimeNow();
// `time` as metav1.Time (UTC, whole seconds: the fraction is dropped): "2026-01-02T03:04:05Z".
std::string FormatTime(std::chrono::system_clock::time_point time);

// Parses metav1.Time or MicroTime ("2026-01-02T03:04:05Z", "...05.123456Z"; UTC only).
// nullopt for anything else.
std::optional<std::chrono::system_clock::time_point> ParseTime(std::string_view text);

}  // namespace mlscale::kube
