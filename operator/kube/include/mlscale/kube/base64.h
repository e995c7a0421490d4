// Strict base64 decoding (standard alphabet, padding optional, whitespace ignored).
// Also used by the test node agent.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mlscale::kube {

// The decoded bytes, or nullopt when `text` holds a character outside the alphabet.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace mlscale::kube
