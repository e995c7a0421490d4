#include "quantity.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace mlscale::nodeagent {

StatusOr<double> ParseQuantity(const std::string& text) {
  static const std::pair<const char*, double> kSuffixes[] = {
      {"Ki", 1024.0}, {"Mi", std::pow(1024.0, 2)}, {"Gi", std::pow(1024.0, 3)},
      {"Ti", std::pow(1024.0, 4)}, {"Pi", std::pow(1024.0, 5)}, {"Ei", std::pow(1024.0, 6)},
      {"n", 1e-9}, {"u", 1e-6}, {"m", 1e-3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9},
      {"T", 1e12}, {"P", 1e15}, {"E", 1e18}};
  size_t number_end = 0;
  while (number_end < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[number_end])) || text[number_end] == '.' ||
          ((text[number_end] == '+' || text[number_end] == '-') && number_end == 0))) {
    ++number_end;
  }
  std::string number = text.substr(0, number_end);
  std::string suffix = text.substr(number_end);
  if (number.empty() || number == "+" || number == "-" || number == ".") {
    return InvalidArgument("'" + text + "' is not a quantity");
  }
  double multiplier = 1.0;
  if (!suffix.empty()) {
    bool known = false;
    for (const auto& [name, factor] : kSuffixes) {
      if (suffix == name) {
        multiplier = factor;
        known = true;
        break;
      }
    }
    if (!known && (suffix[0] == 'e' || suffix[0] == 'E') && suffix.size() > 1) {
      char* end = nullptr;
      long exponent = std::strtol(suffix.c_str() + 1, &end, 10);
      if (end != nullptr && *end == '\0' && exponent > -30 && exponent < 30) {
        multiplier = std::pow(10.0, static_cast<double>(exponent));
        known = true;
      }
    }
    if (!known) return InvalidArgument("'" + text + "' has an unknown quantity suffix '" + suffix + "'");
  }
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (end == nullptr || *end != '\0') return InvalidArgument("'" + text + "' is not a quantity");
  return value * multiplier;
}

}  // namespace mlscale::nodeagent
