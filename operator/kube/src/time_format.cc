#include "mlscale/kube/time_format.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace mlscale::kube {

std::string FormatTime(std::chrono::system_clock::time_point time) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string TimeNow() { return FormatTime(std::chrono::system_clock::now()); }

std::string MicroTimeNow() {
  auto now = std::chrono::system_clock::now();
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1'000'000;
  std::string text = FormatTime(now);
  char fraction[16];
  std::snprintf(fraction, sizeof fraction, ".%06lldZ", static_cast<long long>(micros));
  return text.substr(0, text.size() - 1) + fraction;
}

std::optional<std::chrono::system_clock::time_point> ParseTime(std::string_view text_view) {
  std::string text(text_view);
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  size_t position = static_cast<size_t>(consumed);
  long micros = 0;
  if (position < text.size() && text[position] == '.') {
    long scale = 100000;
    for (++position; position < text.size() && text[position] >= '0' && text[position] <= '9'; ++position) {
      micros += (text[position] - '0') * scale;
      scale /= 10;
    }
  }
  if (position + 1 != text.size() || text[position] != 'Z') return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const time_t seconds = timegm(&tm);
  if (seconds == time_t(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(seconds) + std::chrono::microseconds(micros);
}

}  // namespace mlscale::kube
