#include "mlscale/launcher/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

namespace mlscale::launcher {
namespace {

template <typename T>
Status ReadNumber(const nlohmann::json& object, const char* key, T& out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Status::Ok();
  if (!it->is_number()) return InvalidArgument(std::string("progress field '") + key + "' is not a number");
  out = it->get<T>();
  return Status::Ok();
}

__attribute__((format(printf, 1, 2))) std::string Format(const char* format, ...) {
  char text[256];
  va_list arguments;
  va_start(arguments, format);
  std::vsnprintf(text, sizeof text, format, arguments);
  va_end(arguments);
  return text;
}

std::string Facts(const Progress& p) {
  std::string text;
  if (p.epochs > 0) text += Format("epoch %lld/%lld", static_cast<long long>(p.epoch), static_cast<long long>(p.epochs));
  if (p.total_steps > 0) text += Format(" step %lld/%lld", static_cast<long long>(p.step), static_cast<long long>(p.total_steps));
  // Before the first step there is no loss or speed to show yet.
  if (p.step > 0) {
    text += Format(" loss %.4f %.0f samples/s ETA %s", p.loss, p.samples_per_second, FormatDuration(p.eta_seconds).c_str());
  }
  if (!p.phase.empty() && p.phase != "training") text += " (" + p.phase + ")";
  return text;
}

double Fraction(const Progress& p) {
  if (p.total_steps <= 0) return 0;
  return std::clamp(static_cast<double>(p.step) / static_cast<double>(p.total_steps), 0.0, 1.0);
}

}  // namespace

StatusOr<Progress> ParseProgress(const nlohmann::json& json) {
  if (!json.is_object()) return InvalidArgument("progress is not a JSON object");
  Progress p;
  MLSCALE_RETURN_IF_ERROR(ReadNumber(json, "step", p.step));
  MLSCALE_RETURN_IF_ERROR(ReadNumber(json, "totalSteps", p.total_steps));
  MLSCALE_RETURN_IF_ERROR(ReadNumber(json, "epoch", p.epoch));
  MLSCALE_RETURN_IF_ERROR(ReadNumber(json, "epochs", p.epochs));
  MLSCALE_RETURN_IF_ERROR(ReadNumber(json, "loss", p.loss));
  MLSCALE_RETURN_IF_ERROR(ReadNumber(json, "samplesPerSecond", p.samples_per_second));
  MLSCALE_RETURN_IF_ERROR(ReadNumber(json, "etaSeconds", p.eta_seconds));
  MLSCALE_RETURN_IF_ERROR(ReadNumber(json, "elapsedSeconds", p.elapsed_seconds));
  if (auto it = json.find("phase"); it != json.end() && it->is_string()) p.phase = it->get<std::string>();
  return p;
}

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  auto total = static_cast<long long>(std::llround(seconds));
  long long hours = total / 3600, minutes = (total / 60) % 60, rest = total % 60;
  if (hours > 0) return Format("%lld:%02lld:%02lld", hours, minutes, rest);
  return Format("%lld:%02lld", minutes, rest);
}

std::string FormatProgressBar(const Progress& p, int width) {
  std::string facts = Format("%3.0f%% ", 100.0 * Fraction(p)) + Facts(p);
  // The bar takes what the facts leave, between 10 and 30 columns.
  int bar_width = std::clamp(width - static_cast<int>(facts.size()) - 4, 10, 30);
  int filled = static_cast<int>(std::lround(Fraction(p) * bar_width));
  std::string line = "[" + std::string(static_cast<std::size_t>(filled), '#') +
                     std::string(static_cast<std::size_t>(bar_width - filled), '.') + "] " + facts;
  if (width > 0 && static_cast<int>(line.size()) > width) line.resize(static_cast<std::size_t>(width));
  return line;
}

std::string FormatProgressLine(const Progress& p) {
  return Format("progress %3.0f%% ", 100.0 * Fraction(p)) + Facts(p) +
         " elapsed " + FormatDuration(p.elapsed_seconds);
}

}  // namespace mlscale::launcher
