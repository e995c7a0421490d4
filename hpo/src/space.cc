#include "mlscale/hpo/space.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

namespace mlscale::hpo {
namespace {

Status ParameterError(const Parameter& parameter, const std::string& problem) {
  return InvalidArgument("parameter '" + parameter.name + "': " + problem);
}

bool IsIntegral(double x) { return std::isfinite(x) && std::floor(x) == x && std::fabs(x) < 0x1.0p53; }

// Number of grid values low, low + step, ... <= high (tolerating rounding of the last one).
std::int64_t StepCount(double low, double high, double step) {
  return static_cast<std::int64_t>(std::floor((high - low) / step + 1e-9)) + 1;
}

// Log-scale ints are sampled log-uniformly on [low - 0.5, high + 0.5] and rounded, so
// every value gets the width of its rounding interval in log space.
double IntLogLow(const Parameter& p) { return std::log(p.low - 0.5); }
double IntLogHigh(const Parameter& p) { return std::log(p.high + 0.5); }

}  // namespace

Status ValidateSpace(const SearchSpace& space) {
  if (space.parameters.empty()) return InvalidArgument("search space has no parameters");
  std::set<std::string> names;
  for (const Parameter& p : space.parameters) {
    if (p.name.empty()) return InvalidArgument("a parameter has an empty name");
    if (!names.insert(p.name).second) return ParameterError(p, "duplicate name");
    if (p.type == ParameterType::kCategorical) {
      if (p.choices.empty()) return ParameterError(p, "categorical needs at least one choice");
      std::set<std::string> distinct(p.choices.begin(), p.choices.end());
      if (distinct.size() != p.choices.size()) return ParameterError(p, "duplicate choices");
      continue;
    }
    if (!std::isfinite(p.low) || !std::isfinite(p.high)) return ParameterError(p, "bounds must be finite");
    if (p.low >= p.high) {
      return ParameterError(p, "low (" + std::to_string(p.low) + ") must be less than high (" +
                                   std::to_string(p.high) + ")");
    }
    if (p.log_scale && p.low <= 0) return ParameterError(p, "log scale needs low > 0");
    if (p.step && p.log_scale) return ParameterError(p, "step and log scale cannot be combined");
    if (p.step && !(std::isfinite(*p.step) && *p.step > 0)) return ParameterError(p, "step must be > 0");
    if (p.type == ParameterType::kInt) {
      if (!IsIntegral(p.low) || !IsIntegral(p.high)) return ParameterError(p, "int bounds must be integers");
      if (p.step && !IsIntegral(*p.step)) return ParameterError(p, "int step must be an integer");
    }
  }
  return Status::Ok();
}

std::optional<std::int64_t> DiscreteSize(const Parameter& p) {
  switch (p.type) {
    case ParameterType::kCategorical: return static_cast<std::int64_t>(p.choices.size());
    case ParameterType::kInt: return StepCount(p.low, p.high, p.step.value_or(1.0));
    case ParameterType::kFloat:
      if (p.step) return StepCount(p.low, p.high, *p.step);
      return std::nullopt;
  }
  return std::nullopt;
}

ParameterValue DecodeValue(const Parameter& p, double unit) {
  unit = std::clamp(unit, 0.0, 1.0);
  if (p.type == ParameterType::kInt && p.log_scale) {
    double value = std::round(std::exp(IntLogLow(p) + unit * (IntLogHigh(p) - IntLogLow(p))));
    return static_cast<std::int64_t>(std::clamp(value, p.low, p.high));
  }
  if (std::optional<std::int64_t> size = DiscreteSize(p)) {
    std::int64_t index = std::min(static_cast<std::int64_t>(unit * static_cast<double>(*size)), *size - 1);
    switch (p.type) {
      case ParameterType::kCategorical: return p.choices[static_cast<std::size_t>(index)];
      case ParameterType::kInt:
        return static_cast<std::int64_t>(p.low) + index * static_cast<std::int64_t>(p.step.value_or(1.0));
      case ParameterType::kFloat: return p.low + static_cast<double>(index) * *p.step;
    }
  }
  if (p.log_scale) {
    double log_low = std::log(p.low), log_high = std::log(p.high);
    return std::clamp(std::exp(log_low + unit * (log_high - log_low)), p.low, p.high);
  }
  return std::clamp(p.low + unit * (p.high - p.low), p.low, p.high);
}

double EncodeValue(const Parameter& p, const ParameterValue& value) {
  if (p.type == ParameterType::kCategorical) {
    auto it = std::find(p.choices.begin(), p.choices.end(), std::get<std::string>(value));
    return (static_cast<double>(it - p.choices.begin()) + 0.5) / static_cast<double>(p.choices.size());
  }
  double x = p.type == ParameterType::kInt ? static_cast<double>(std::get<std::int64_t>(value))
                                           : std::get<double>(value);
  if (p.type == ParameterType::kInt && p.log_scale) {
    return (std::log(x) - IntLogLow(p)) / (IntLogHigh(p) - IntLogLow(p));
  }
  if (std::optional<std::int64_t> size = DiscreteSize(p)) {
    double index = std::round((x - p.low) / p.step.value_or(1.0));
    return (index + 0.5) / static_cast<double>(*size);
  }
  if (p.log_scale) return (std::log(x) - std::log(p.low)) / (std::log(p.high) - std::log(p.low));
  return (x - p.low) / (p.high - p.low);
}

Status ValidateAssignment(const SearchSpace& space, const Assignment& assignment) {
  for (const auto& [name, value] : assignment) {
    bool known = std::any_of(space.parameters.begin(), space.parameters.end(),
                             [&](const Parameter& p) { return p.name == name; });
    if (!known) return InvalidArgument("assignment has unknown parameter '" + name + "'");
  }
  for (const Parameter& p : space.parameters) {
    auto it = assignment.find(p.name);
    if (it == assignment.end()) return ParameterError(p, "missing from the assignment");
    const ParameterValue& value = it->second;
    if (p.type == ParameterType::kCategorical) {
      const auto* choice = std::get_if<std::string>(&value);
      if (!choice) return ParameterError(p, "expected one of its choices (a string)");
      if (std::find(p.choices.begin(), p.choices.end(), *choice) == p.choices.end()) {
        return ParameterError(p, "'" + *choice + "' is not one of its choices");
      }
      continue;
    }
    double x = 0;
    if (p.type == ParameterType::kInt) {
      const auto* integer = std::get_if<std::int64_t>(&value);
      if (!integer) return ParameterError(p, "expected an integer");
      x = static_cast<double>(*integer);
    } else {
      const auto* real = std::get_if<double>(&value);
      if (!real || !std::isfinite(*real)) return ParameterError(p, "expected a finite number");
      x = *real;
    }
    double tolerance = 1e-9 * std::max(1.0, std::fabs(p.high - p.low));
    if (x < p.low - tolerance || x > p.high + tolerance) {
      return ParameterError(p, "value " + std::to_string(x) + " is outside [" + std::to_string(p.low) +
                                   ", " + std::to_string(p.high) + "]");
    }
    if (p.step) {
      double steps = (x - p.low) / *p.step;
      if (std::fabs(steps - std::round(steps)) > 1e-6) {
        return ParameterError(p, "value " + std::to_string(x) + " is not on the step grid");
      }
    }
  }
  return Status::Ok();
}

Assignment Decode(const SearchSpace& space, const Eigen::VectorXd& unit) {
  Assignment assignment;
  for (std::size_t i = 0; i < space.parameters.size(); ++i) {
    const Parameter& p = space.parameters[i];
    assignment.emplace(p.name, DecodeValue(p, unit[static_cast<Eigen::Index>(i)]));
  }
  return assignment;
}

Eigen::VectorXd Encode(const SearchSpace& space, const Assignment& assignment) {
  Eigen::VectorXd unit(static_cast<Eigen::Index>(space.parameters.size()));
  for (std::size_t i = 0; i < space.parameters.size(); ++i) {
    const Parameter& p = space.parameters[i];
    unit[static_cast<Eigen::Index>(i)] = EncodeValue(p, assignment.at(p.name));
  }
  return unit;
}

std::string AssignmentKey(const Assignment& assignment) {
  std::string key;
  for (const auto& [name, value] : assignment) {
    if (!key.empty()) key += ',';
    key += name;
    key += '=';
    std::visit([&](const auto& v) { key += nlohmann::json(v).dump(); }, value);
  }
  return key;
}

}  // namespace mlscale::hpo
