// mlscale-router's command line (Boost.Program_options), parsed into the options of its
// parts. README.md lists the flags.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

#include "mlscale/common/status.h"
#include "mlscale/http/server.h"
#include "mlscale/router/kube_source.h"
#include "mlscale/router/router.h"
#include "mlscale/router/upstream.h"

namespace mlscale::router {

struct RouterFlags {
  KubeSourceOptions source;  // namespace "" = the kubeconfig context's (in-cluster: the pod's)
  std::string kubeconfig;    // "" = $KUBECONFIG, in-cluster, ~/.kube/config
  http::ServerOptions server;   // --listen and the request limits
  http::ServerOptions metrics;  // --metrics-listen
  RouterOptions router;
  UpstreamOptions upstream;
  std::string log_level = "info";
  std::string log_format = "text";
  std::chrono::milliseconds drain{5000};          // SIGTERM: not ready, still serving
  std::chrono::milliseconds drain_timeout{30000};  // then: longest wait for requests in flight
};

// "host:port", ":port" (all IPv4 addresses) or "[v6]:port" -> address and port. Errors
// name the flag.
Status ParseListenAddress(const std::string& flag, const std::string& text, http::ServerOptions& options);

// Parses argv. `help` is set (and the usage written to `out`) for --help; errors are
// InvalidArgument naming the flag.
StatusOr<RouterFlags> ParseRouterFlags(int argc, const char* const* argv, std::ostream& out, bool& help);

}  // namespace mlscale::router
