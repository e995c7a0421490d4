// The model version a revision's pods actually serve, read from the pods themselves
// (mlscale-serve's protocol endpoints), for status.revisions[].modelVersion: a spec that
// asks for "latest" or pins a version says what was wanted, only the server knows what it
// loaded (a pinned version missing from the folder, a newer one it picked up since).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "mlscale/common/status.h"

namespace mlscale::controllers::inference {

// The most of a metadata or model-list reply read; a longer one is an error.
inline constexpr std::size_t kMaxModelReplyBytes = 64 * 1024;
// The most models of a repository asked for their versions.
inline constexpr std::size_t kMaxRepositoryModels = 16;

// The version in an OIP v2 model metadata reply (GET /v2/models/<name>):
// {"name": "<name>", "versions": ["3"], ...}. mlscale-serve lists exactly the version it
// serves; if a server lists several, the highest number. Errors (InvalidArgument, naming the
// field): not a JSON object, `name` missing or not `expected_name`, `versions` missing, empty,
// not strings, or a version that is not a number of 1..18 digits.
StatusOr<std::string> ParseServedVersion(std::string_view body, const std::string& expected_name);

// The model names of a KServe v1 list reply (GET /v1/models): {"models": ["a", "b"]}.
// Errors: not an object, `models` not an array of non-empty strings of at most 253 bytes.
StatusOr<std::vector<std::string>> ParseModelList(std::string_view body);

// What one pod at `address`:`port` serves: the version of `model_name` ("3"), or for a
// repository (`model_name` empty) "name:version" of each of its models (at most
// kMaxRepositoryModels), comma-separated in name order. Unavailable when the pod does not
// answer 200 within `deadline` per request; the parse errors above otherwise.
StatusOr<std::string> FetchServedVersion(const std::string& address, int port, const std::string& model_name,
                                         std::chrono::milliseconds deadline);

// The versions several pods of one revision report, as one status value: the distinct ones
// in order, joined by " | " (one value when the pods agree; several while a new version
// loads). Empty input: "".
std::string CombineServedVersions(std::vector<std::string> versions);

}  // namespace mlscale::controllers::inference
