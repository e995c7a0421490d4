// The HTTP face of mlscale-serve: routes each request of the Open Inference Protocol v2
// (REST), KServe's v1 protocol and /metrics to the model repository, and counts it.
//
//   GET  /v2/health/live                         200 {"live": true}
//   GET  /v2/health/ready                        200 {"ready": true} | 503 {"ready": false} (draining, or a model not ready)
//   GET  /v2                                     server metadata
//   GET  /v2/models/{m}[/versions/{v}]           model metadata (inputs, outputs, versions)
//   GET  /v2/models/{m}[/versions/{v}]/ready     200 {"name","ready": true} | 503 ready false
//   POST /v2/models/{m}[/versions/{v}]/infer     inference (protocol.h)
//   GET  /v1/models                              {"models": [names]}
//   GET  /v1/models/{m}                          {"name", "ready"}
//   POST /v1/models/{m}:predict                  {"instances"} -> {"predictions", "probabilities"}
//   GET  /metrics                                Prometheus text (metrics.h)
// Errors are {"error": "..."}: 400 malformed body, wrong shape or datatype; 404 unknown
// path, model or version; 405 wrong method; 413 body over the limit (from the HTTP server);
// 503 model not ready or its queue full.
#pragma once

#include <atomic>
#include <string>

#include "mlscale/http/server.h"
#include "mlscale/serve/metrics.h"
#include "mlscale/serve/model_repository.h"

namespace mlscale::serve {

class InferenceService {
 public:
  // Both must outlive the service.
  InferenceService(ModelRepository& repository, ServeMetrics& metrics, std::string version);

  // The http::Handler: answers on the calling thread, or on a batcher's thread when the
  // model batches.
  void Handle(http::Request&& request, http::Responder responder);

  // From now on /v2/health/ready (and every model's ready) answers 503; inference goes on.
  void SetDraining() { draining_ = true; }

 private:
  struct Route;
  void Infer(const Route& route, http::Request&& request, http::Responder responder, ModelMetrics& metrics,
             long started_ns);

  ModelRepository& repository_;
  ServeMetrics& metrics_;
  const std::string version_;
  std::atomic<bool> draining_ = false;
};

}  // namespace mlscale::serve
