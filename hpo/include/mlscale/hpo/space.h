// The search space of a sweep: named parameters, each a float, an int or a categorical,
// and the assignments (one value per parameter) that samplers suggest.
//
// Every sampler works in the unit cube: parameter i maps to one coordinate in [0, 1).
// Floats map linearly (or logarithmically for log scale); ints and categoricals split
// [0, 1) into one equal bin per value. Encode/Decode convert between the two forms.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <Eigen/Core>

#include "mlscale/common/status.h"

namespace mlscale::hpo {

enum class ParameterType { kFloat, kInt, kCategorical };

struct Parameter {
  std::string name;
  ParameterType type = ParameterType::kFloat;
  // kFloat and kInt: the closed range [low, high]; low < high.
  double low = 0.0;
  double high = 1.0;
  // kFloat and kInt: sample on a log scale (needs low > 0).
  bool log_scale = false;
  // kFloat: values are low + k * step (optional, > 0, not with log scale).
  // kInt: values are low + k * step (optional, a positive integer, default 1).
  std::optional<double> step;
  // kCategorical: the choices, non-empty and distinct.
  std::vector<std::string> choices;
};

struct SearchSpace {
  std::vector<Parameter> parameters;
};

// One parameter's value: double for kFloat, int64_t for kInt, string for kCategorical.
using ParameterValue = std::variant<double, std::int64_t, std::string>;
// One value per parameter name.
using Assignment = std::map<std::string, ParameterValue>;

// OK, or InvalidArgument naming the parameter and what is wrong with it (no parameters,
// empty or duplicate names, low >= high, non-finite bounds, log scale with low <= 0,
// bad step, empty or duplicate choices, a non-integral int bound).
Status ValidateSpace(const SearchSpace& space);

// OK when `assignment` has exactly the space's parameters, each of the right type, inside
// its range and on its step grid; InvalidArgument naming the first offending parameter.
Status ValidateAssignment(const SearchSpace& space, const Assignment& assignment);

// The number of distinct values of a discrete parameter (int, categorical, stepped float);
// nullopt for a continuous float.
std::optional<std::int64_t> DiscreteSize(const Parameter& parameter);

// Maps a unit coordinate in [0, 1] to the parameter's value (log scale, rounding to the
// step grid and binning for discrete parameters are applied here).
ParameterValue DecodeValue(const Parameter& parameter, double unit);
// The unit coordinate of a valid value: the bin centre for discrete parameters.
double EncodeValue(const Parameter& parameter, const ParameterValue& value);

// The whole point: unit vector (one coordinate per parameter, in space order) <-> values.
Assignment Decode(const SearchSpace& space, const Eigen::VectorXd& unit);
// Needs a valid assignment (ValidateAssignment).
Eigen::VectorXd Encode(const SearchSpace& space, const Assignment& assignment);

// A canonical text form of an assignment ("lr=0.01,layers=3,opt=adam"), used to compare
// assignments exactly and in messages.
std::string AssignmentKey(const Assignment& assignment);

}  // namespace mlscale::hpo
