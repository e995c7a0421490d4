// mlscale-incluster-probe: run as a pod by the node agent's e2e tests. It loads the
// in-cluster configuration exactly as the operator does (kube::InClusterConfig: the
// service-account folder the kubelet mounts, KUBERNETES_SERVICE_HOST/PORT), asks the API
// server who it is (a SelfSubjectReview) --rounds times, --interval-ms apart, printing the
// user and the credential (the token's JTI) that authenticated each round, so a test sees a
// refreshed token being used; then tries one request its role allows and one it does not.
// Prints one "key: value" line per finding; exits 1 when it cannot talk to the API server.
#include <chrono>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include <boost/program_options.hpp>

#include "flags.h"
#include "mlscale/kube/client.h"
#include "mlscale/kube/config.h"
#include "mlscale/kube/errors.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  using namespace mlscale;
  po::options_description flags("mlscale-incluster-probe [options]");
  flags.add_options()(
      "rounds", po::value<int>()->default_value(1)->value_name("N"), "SelfSubjectReviews to make")(
      "interval-ms", po::value<int>()->default_value(1000)->value_name("MS"), "pause between two of them");
  po::variables_map options;
  if (std::optional<int> exit_code = mlscale::testing::ParseFlags(argc, argv, flags, options)) return *exit_code;
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
  for (int round = 0; round < options["rounds"].as<int>(); ++round) {
    if (round > 0) std::this_thread::sleep_for(std::chrono::milliseconds(options["interval-ms"].as<int>()));
    StatusOr<kube::Object> review =
        (*client)->Create(reviews, "", {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "SelfSubjectReview"}});
    if (!review.ok()) {
      std::cout << "review: " << review.status().ToString() << std::endl;
      return 1;
    }
    const kube::Object& user = (*review)["status"]["userInfo"];
    std::cout << "user: " << user.value("username", "") << std::endl;
    kube::Object credential = user.value("extra", kube::Object::object())
                                  .value("authentication.kubernetes.io/credential-id", kube::Object::array());
    std::cout << "credential: " << (credential.empty() ? std::string() : credential[0].get<std::string>()) << std::endl;
  }
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
