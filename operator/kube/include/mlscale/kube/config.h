// How to reach and authenticate to a Kubernetes API server: loaded from a kubeconfig
// file (current or a named context) or from the in-cluster service-account mount.
#pragma once

#include <chrono>
#include <string>

#include "mlscale/common/status.h"

namespace mlscale::kube {

struct ClientConfig {
  std::string server;  // "https://host:port", no trailing slash
  std::string namespace_name = "default";  // the context's namespace (in-cluster: the pod's)

  // TLS. PEM text, already read from files when the kubeconfig named files.
  std::string ca_pem;                     // given: trusted alone; empty: the system's trust store
  bool insecure_skip_tls_verify = false;  // only when the kubeconfig asks for it
  std::string client_certificate_pem;
  std::string client_key_pem;

  // Bearer token. When token_file is set it is re-read whenever it changes on disk
  // (the kubelet rotates projected service-account tokens); bearer_token is then ignored.
  std::string bearer_token;
  std::string token_file;

  // Client-side rate limit on requests (each watch request counts once). The defaults
  // are a large cluster's comfortable share for one controller; raise them with flags.
  double qps = 50.0;
  int burst = 100;

  // Per non-watch request attempt (headers and body), excluding retries; a caller's
  // deadline (CallOptions) can make it shorter.
  std::chrono::milliseconds request_timeout{30'000};
  int max_retries = 5;  // for transient failures: connection errors, 429, 5xx
  // What is read from the server is bounded, so that a hostile or broken server cannot
  // exhaust memory: a response body, one line (one event) of a watch, and what of a
  // stream has arrived but not yet been taken by its reader (a reader that falls this
  // far behind ends the stream with kResourceExhausted; a Watcher resumes from the last
  // event it took, as after the API server's own closing of a slow watch).
  size_t max_response_bytes = size_t{256} << 20;
  size_t max_watch_line_bytes = size_t{16} << 20;
  size_t max_watch_backlog_bytes = size_t{64} << 20;
  std::string user_agent = "mlscale-kube/0.1";
};

// Reads a kubeconfig file. `context` empty means the file's current-context. Relative
// file paths inside are resolved against the file's folder. Errors name the file and
// the field that is missing or malformed.
StatusOr<ClientConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");

// The same from kubeconfig text; `base_dir` resolves relative certificate/token paths.
StatusOr<ClientConfig> ParseKubeconfig(const std::string& yaml_text, const std::string& base_dir,
                                       const std::string& context = "");

// In-cluster configuration: KUBERNETES_SERVICE_HOST/PORT, the CA and the token file under
// `service_account_dir` (the token is re-read when it rotates).
StatusOr<ClientConfig> InClusterConfig(
    const std::string& service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// The usual precedence: `explicit_path` if given, else $KUBECONFIG (first file), else
// in-cluster when KUBERNETES_SERVICE_HOST is set, else ~/.kube/config.
StatusOr<ClientConfig> LoadDefaultConfig(const std::string& explicit_path = "",
                                         const std::string& context = "");

}  // namespace mlscale::kube
