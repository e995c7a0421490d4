// mlscale-incluster-probe: run as a pod by the node agent's e2e tests. It loads the
// in-cluster configuration exactly as the operator does (kube::InClusterConfig: the
// service-account folder the kubelet mounts, KUBERNETES_SERVICE_HOST/PORT), asks the API
// server who it is (a SelfSubjectReview), and tries one request its role allows and one
// it does not. Prints one "key: value" line per finding; exits 1 when it cannot talk to
// the API server at all.
#include <iostream>
#include <string>

#include "mlscale/kube/client.h"
#include "mlscale/kube/config.h"
#include "mlscale/kube/errors.h"

int main() {
  using namespace mlscale;
  StatusOr<kube::ClientConfig> config = kube::InClusterConfig();
  if (!config.ok()) {
    std::cout << "config: " << config.status().ToString() << std::endl;
    return 1;
  }
  StatusOr<std::unique_ptr<kube::Client>> client = kube::Client::Create(*config);
  if (!client.ok()) {
    std::cout << "client: " << client.status().ToString() << std::endl;
    return 1;
  }
  kube::Resource reviews{"authentication.k8s.io", "v1", "selfsubjectreviews", false, "SelfSubjectReview"};
  StatusOr<kube::Object> review =
      (*client)->Create(reviews, "", {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "SelfSubjectReview"}});
  if (!review.ok()) {
    std::cout << "review: " << review.status().ToString() << std::endl;
    return 1;
  }
  std::cout << "user: " << (*review)["status"]["userInfo"].value("username", "") << std::endl;
  std::cout << "namespace: " << config->namespace_name << std::endl;
  auto outcome = [](const Status& status) {
    return status.ok() ? std::string("allowed") : status.code() == StatusCode::kPermissionDenied ? std::string("forbidden") : status.ToString();
  };
  std::cout << "list pods: " << outcome((*client)->List(kube::resources::Pods(), config->namespace_name).status())
            << std::endl;
  std::cout << "list secrets: "
            << outcome((*client)->List(kube::resources::Secrets(), config->namespace_name).status()) << std::endl;
  return 0;
}
