// Process-wide log setup on spdlog: human-readable text or one JSON object per line.
#pragma once

#include <string>

#include "mlscale/common/status.h"

namespace mlscale::kube {

enum class LogFormat { kText, kJson };

// Sets the default spdlog logger's format and level ("trace".."critical", "off").
Status ConfigureLogging(LogFormat format, const std::string& level = "info");

}  // namespace mlscale::kube
