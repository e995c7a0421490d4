// Building URL query strings. Internal to mlscale_kube.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mlscale::kube {

// Percent-encodes everything outside RFC 3986's unreserved set.
std::string PercentEncode(std::string_view text);

// "?a=1&b=x%3Dy" from the pairs whose value is not empty; "" when none is.
std::string QueryString(const std::vector<std::pair<std::string, std::string>>& parameters);

}  // namespace mlscale::kube
