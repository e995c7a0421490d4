// Building search-space parameters in the hpo tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mlscale/hpo/space.h"

namespace mlscale::hpo::testing {

inline Parameter Float(std::string name, double low, double high, bool log_scale = false) {
  Parameter p;
  p.name = std::move(name);
  p.type = ParameterType::kFloat;
  p.low = low;
  p.high = high;
  p.log_scale = log_scale;
  return p;
}

inline Parameter Int(std::string name, double low, double high, bool log_scale = false) {
  Parameter p = Float(std::move(name), low, high, log_scale);
  p.type = ParameterType::kInt;
  return p;
}

inline Parameter Categorical(std::string name, std::vector<std::string> choices) {
  Parameter p;
  p.name = std::move(name);
  p.type = ParameterType::kCategorical;
  p.choices = std::move(choices);
  return p;
}

}  // namespace mlscale::hpo::testing
