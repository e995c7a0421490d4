#include "mlscale/kube/time_format.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace mlscale::kube {
namespace {
std::string Format(bool micro) {
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  if (!micro) return std::string(text) + "Z";
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1'000'000;
  char fraction[16];
  std::snprintf(fraction, sizeof fraction, ".%06lldZ", static_cast<long long>(micros));
  return std::string(text) + fraction;
}
}  // namespace

std::string MicroTimeNow() { return Format(true); }
std::string TimeNow() { return Format(false); }

}  // namespace mlscale::kube
