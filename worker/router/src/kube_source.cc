#include "mlscale/router/kube_source.h"

#include <spdlog/spdlog.h>

namespace mlscale::router {

kube::Resource EndpointSlicesResource() { return {"discovery.k8s.io", "v1", "endpointslices", true, "EndpointSlice"}; }
kube::Resource InferenceServicesResource() { return {"mlscale.io", "v1alpha1", "inferenceservices", true, "InferenceService"}; }

KubeSource::KubeSource(kube::Client& client, Router& router, KubeSourceOptions options, kube::Metrics* metrics)
    : router_(router), options_(std::move(options)) {
  kube::InformerOptions slice_options;
  slice_options.watch.label_selector = std::string(kInferenceServiceLabel) + "=" + options_.inference_service;
  slices_ = std::make_unique<kube::SharedInformer>(client, EndpointSlicesResource(), options_.namespace_name,
                                                   slice_options, metrics);
  auto upsert = [this](const kube::ObjectPtr& slice) {
    auto parsed = ParseEndpointSlice(*slice, options_.port_name);
    std::lock_guard lock(mutex_);
    if (!parsed.ok()) {
      spdlog::warn("ignoring EndpointSlice {}: {}", kube::NameOf(*slice), parsed.status().message());
      table_.Remove(kube::NameOf(*slice));
    } else {
      table_.Upsert(std::move(*parsed));
    }
    router_.SetEndpoints(table_.Revisions());
  };
  slices_->AddHandler({
      .on_add = upsert,
      .on_update = [upsert](const kube::ObjectPtr&, const kube::ObjectPtr& slice) { upsert(slice); },
      .on_delete =
          [this](const kube::ObjectPtr& slice, bool) {
            std::lock_guard lock(mutex_);
            table_.Remove(kube::NameOf(*slice));
            router_.SetEndpoints(table_.Revisions());
          },
  });

  kube::InformerOptions service_options;
  service_options.watch.field_selector = "metadata.name=" + options_.inference_service;
  service_ = std::make_unique<kube::SharedInformer>(client, InferenceServicesResource(), options_.namespace_name,
                                                    service_options, metrics);
  auto traffic = [this](const kube::ObjectPtr& service) {
    auto targets = ParseTraffic(*service);
    if (!targets.ok()) {
      // Keep routing by the last valid split rather than dropping traffic.
      spdlog::warn("InferenceService {}: {}; keeping the previous traffic split", options_.inference_service,
                   targets.status().message());
      return;
    }
    router_.SetTraffic(std::move(*targets));
  };
  service_->AddHandler({
      .on_add = traffic,
      .on_update = [traffic](const kube::ObjectPtr&, const kube::ObjectPtr& service) { traffic(service); },
      .on_delete = [this](const kube::ObjectPtr&, bool) { router_.SetTraffic({}); },
  });
  slices_->Start();
  service_->Start();
}

KubeSource::~KubeSource() {
  service_->Stop();
  slices_->Stop();
}

bool KubeSource::HasSynced() const { return slices_->HasSynced() && service_->HasSynced(); }

}  // namespace mlscale::router
