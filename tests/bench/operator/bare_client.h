// The bare-client ceiling of the operator benchmarks (tests/bench/operator, tests/bench/scale):
// the objects mlscale-operator creates for a TrainingJob, made by the controller's own builders
// and created by a plain client, so that a benchmark can compare the operator with how fast the
// API server accepts the same objects.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"
#include "mlscale/kube/client.h"

namespace mlscale::bench {

// The token Secret, the headless Service (when trainingjob::NeedsService) and one pod per rank that the TrainingJob controller
// creates for `training_job` (a TrainingJob object with metadata.name and metadata.namespace),
// without owner references (nothing owns them, so nothing garbage-collects them: delete the
// namespace). Errors: the job does not parse (the API's message), or no random token.
StatusOr<std::vector<nlohmann::json>> BareJobObjects(const nlohmann::json& training_job);

// Creates one object of BareJobObjects in `namespace_name` with `client`.
Status CreateBareObject(kube::Client& client, const std::string& namespace_name, const nlohmann::json& object);

}  // namespace mlscale::bench
