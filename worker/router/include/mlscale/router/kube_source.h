// Feeds a Router from the API server: the InferenceService's EndpointSlices (label
// selector mlscale.io/inference-service=<isvc>) and the InferenceService itself (field
// selector metadata.name=<isvc>, only status.traffic is read), each through an informer
// (list + watch that resumes and relists by itself).
#pragma once

#include <memory>
#include <string>

#include "mlscale/kube/client.h"
#include "mlscale/kube/informer.h"
#include "mlscale/kube/metrics.h"
#include "mlscale/router/endpoints.h"
#include "mlscale/router/router.h"

namespace mlscale::router {

inline constexpr const char* kInferenceServiceLabel = "mlscale.io/inference-service";

kube::Resource EndpointSlicesResource();
kube::Resource InferenceServicesResource();

struct KubeSourceOptions {
  std::string namespace_name;
  std::string inference_service;
  std::string port_name;  // the slice port to use (ParseEndpointSlice); "" = first TCP port
};

class KubeSource {
 public:
  // Starts both informers. `client`, `router` and `metrics` must outlive the source.
  KubeSource(kube::Client& client, Router& router, KubeSourceOptions options, kube::Metrics* metrics);
  ~KubeSource();  // stops the informers (no more calls into the router)
  KubeSource(const KubeSource&) = delete;
  KubeSource& operator=(const KubeSource&) = delete;

  // Both informers delivered their first list (the router's readiness).
  bool HasSynced() const;

 private:
  Router& router_;
  const KubeSourceOptions options_;
  std::mutex mutex_;  // guards table_ (slice events arrive on the informer's thread)
  EndpointTable table_;
  std::unique_ptr<kube::SharedInformer> slices_;
  std::unique_ptr<kube::SharedInformer> service_;
};

}  // namespace mlscale::router
