// Kubernetes resource quantities ("500m", "2", "1Gi", "1e3") as numbers.
#pragma once

#include <string>

#include "mlscale/common/status.h"

namespace mlscale::nodeagent {

// The quantity's value ("500m" -> 0.5, "1Ki" -> 1024). InvalidArgument for anything
// that is not a quantity.
StatusOr<double> ParseQuantity(const std::string& text);

}  // namespace mlscale::nodeagent
