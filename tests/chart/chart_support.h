// Running helm on charts/mlscale from a test, and reading what it renders.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"
#include "mlscale/common/status.h"

namespace mlscale::testing {

// charts/mlscale in the source tree.
std::string ChartDir();
// The repository's top folder (crds/, examples/ under it).
std::string SourceDir();

// The helm binary: $TEST_ASSET_HELM, else the one tests/cluster/testcluster.py finds or
// builds (`binaries --extra helm`, cached per machine). An error when there is none.
StatusOr<std::string> HelmBinary();

// Runs helm with the arguments (stdout and stderr together).
CommandResult Helm(const std::vector<std::string>& args);

// `helm template <release> charts/mlscale --namespace <ns>` with `--set` for each value
// (key=value, helm's syntax) against Kubernetes `kube_version`; the objects rendered, in
// order, or an error carrying helm's output.
StatusOr<std::vector<nlohmann::json>> RenderChart(const std::vector<std::string>& set_values,
                                                  const std::string& release = "t",
                                                  const std::string& namespace_name = "mlscale-system");

// Splits a stream of YAML documents (helm's output, "---" between them) into objects;
// documents holding only comments are skipped.
StatusOr<std::vector<nlohmann::json>> ParseYamlStream(const std::string& text);

// The objects of `kind` among `objects`.
std::vector<nlohmann::json> OfKind(const std::vector<nlohmann::json>& objects, const std::string& kind);

// One permission: "<verb> <group>/<resource>[/<subresource>]" ("" group for core), with
// "[name]" appended when the rule names resources.
using Grant = std::string;
// Every (verb, resource) the rules of the Roles and ClusterRoles among `objects` grant,
// keyed by the role's "<Kind>/<namespace>/<name>".
std::map<std::string, std::vector<Grant>> GrantsOf(const std::vector<nlohmann::json>& objects);

}  // namespace mlscale::testing
