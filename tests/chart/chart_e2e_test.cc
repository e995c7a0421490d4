// The chart on the test control plane. What it renders passes the API server's own
// validation (server-side dry run); installed with helm, the operator runs as a real pod
// (a test node agent runs the chart's image, mapped to this build's mlscale-operator,
// with the chart's ServiceAccount token), one example of every kind the operator hosts
// reaches its goal state, and the API server's audit log then shows that the
// operator's ServiceAccount used every permission the chart grants and was refused none.
// `helm upgrade` to two replicas keeps a running job running; `helm uninstall` leaves
// nothing of the release.
//
// The InferenceService's pods (model servers, routers) run this build's mlscale-serve and
// mlscale-router as the chart's --serve-command/--router-command; the router reads the API
// with its own ServiceAccount token (in-cluster), as the operator does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "artifacts.h"
#include "audit_log.h"
#include "chart_support.h"
#include "cluster_environment.h"
#include "command.h"
#include "e2e_fixture.h"
#include "mlscale/api/manifest.h"
#include "mlscale/api/training_job.h"
#include "node_agent_process.h"
#include "operator_flags.h"

namespace mlscale::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;

bool WaitFor(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(300ms);
  }
  return done();
}

class ChartCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    StatusOr<TestCluster> cluster = CurrentCluster();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = *cluster;
    StatusOr<std::string> helm = HelmBinary();
    ASSERT_TRUE(helm.ok()) << helm.status().ToString();
    tag_ = std::to_string(::getpid()) + "-" + std::to_string(++counter_);
    dir_ = cluster_.dir + "/chart/" + tag_;
    std::filesystem::create_directories(dir_);
  }

  void TearDown() override {
    for (const std::string& ns : namespaces_) Kubectl({"delete", "namespace", ns, "--wait=false", "--ignore-not-found"});
  }

  CommandResult Kubectl(const std::vector<std::string>& args, const std::string& input = "") const {
    return testing::Kubectl(cluster_.admin_kubeconfig, args, input);
  }

  CommandResult HelmHere(std::vector<std::string> args) const {
    args.insert(args.end(), {"--kubeconfig", cluster_.admin_kubeconfig});
    return Helm(args);
  }

  // The object (or list) kubectl prints as JSON; an empty object when kubectl fails (e.g. not found).
  json Get(const std::vector<std::string>& args) const {
    std::vector<std::string> all = {"get"};
    all.insert(all.end(), args.begin(), args.end());
    all.insert(all.end(), {"-o", "json"});
    CommandResult result = Kubectl(all);
    if (result.exit_code != 0) return json::object();
    json parsed = json::parse(result.output, nullptr, false);
    return parsed.is_object() ? parsed : json::object();
  }

  std::string MakeNamespace(const std::string& prefix) {
    std::string name = prefix + "-" + tag_;
    CommandResult created = Kubectl({"create", "namespace", name});
    EXPECT_EQ(created.exit_code, 0) << created.output;
    namespaces_.push_back(name);
    return name;
  }

  std::string WriteFile(const std::string& name, const std::string& text) const {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  TestCluster cluster_;
  std::string tag_;
  std::string dir_;
  std::vector<std::string> namespaces_;
  static inline int counter_ = 0;
};

TEST_F(ChartCluster, RenderedChartPassesServerSideDryRun) {
  const std::string ns = MakeNamespace("chart-dry");
  for (const std::vector<std::string>& values :
       {std::vector<std::string>{},
        {"replicas=2", "namespaces={" + ns + "}", "gangScheduling.enabled=true", "grafanaDashboard.enabled=true",
         "controllers={TrainingJob,HyperparameterSweep,InferenceService}"}}) {
    std::vector<std::string> args = {"template", "dry", ChartDir(), "--namespace", ns, "--include-crds",
                                     "--kube-version", "1.35.4"};
    for (const std::string& value : values) args.insert(args.end(), {"--set", value});
    CommandResult rendered = Helm(args);
    ASSERT_EQ(rendered.exit_code, 0) << rendered.output;
    const std::string manifests = rendered.output.substr(rendered.output.find("---"));
    CommandResult applied = Kubectl({"apply", "--dry-run=server", "-f", "-"}, manifests);
    EXPECT_EQ(applied.exit_code, 0) << applied.output;
    EXPECT_THAT(applied.output, HasSubstr("deployment.apps/dry-mlscale created (server dry run)"));
    EXPECT_THAT(applied.output, HasSubstr("clusterrole.rbac.authorization.k8s.io/dry-mlscale created (server dry run)"));
  }
}

// One release with the operator as a pod on a node agent of its own, watching one namespace.
class ChartRelease : public ChartCluster {
 protected:
  void SetUp() override {
    ChartCluster::SetUp();
    if (HasFatalFailure()) return;
    if (geteuid() != 0) GTEST_SKIP() << "the node agent needs root (mount namespaces)";
    // The InferenceService e2e fixture applies ClusterRole mlscale-router without Helm's
    // labels, and helm install refuses to adopt such an object; the two tests share a ctest
    // RESOURCE_LOCK, so removing it here cannot pull it from under a running isvc test.
    CommandResult unowned = Kubectl({"delete", "clusterrole", "mlscale-router", "--ignore-not-found", "--wait"});
    ASSERT_EQ(unowned.exit_code, 0) << unowned.output;
    release_ns_ = MakeNamespace("mlscale-sys");
    work_ns_ = MakeNamespace("mlscale-work");
    release_ = "lp" + std::to_string(::getpid());
    service_account_ = release_ + "-mlscale";

    // The worker image: our launcher as the entrypoint, the trainer on its PATH (as in the
    // real image, whose PATH has /opt/mlscale/bin).
    const std::string worker = WriteFile(
        "worker-image", "#!/bin/sh\nPATH=" + std::filesystem::path(MLSCALE_TRAINER_BINARY).parent_path().string() +
                            ":$PATH exec " + MLSCALE_LAUNCHER_BINARY + " \"$@\"\n");
    std::filesystem::permissions(worker, std::filesystem::perms::owner_all | std::filesystem::perms::others_read);
    // Pod addresses outside the loopback range, which EndpointSlices refuse (the router learns
    // its servers from them): the host routes 10.250.0.0/16 to itself.
    CommandResult route = RunCommand({"ip", "route", "replace", "local", "10.250.0.0/16", "dev", "lo", "table", "local"});
    ASSERT_EQ(route.exit_code, 0) << route.output;
    NodeAgentOptions options;
    options.extra_args = {"--address-range", "10.250.0.1-10.250.255.254"};
    options.name = UniqueNodeName("chart");
    options.images = {{"mlscale/operator:0.1.0", MLSCALE_OPERATOR_BINARY},
                      {std::string(api::kDefaultWorkerImage), worker}};
    options.capacity = {{"cpu", "64"}, {"memory", "64Gi"}};
    StatusOr<std::unique_ptr<NodeAgentProcess>> node = StartNodeAgent(options);
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    node_ = std::move(*node);
  }

  void TearDown() override {
    if (installed_) HelmHere({"uninstall", release_, "--namespace", release_ns_, "--wait", "--timeout", "60s"});
    node_.reset();
    ChartCluster::TearDown();
  }

  // Values for the test: the operator on our node, every kind it hosts, one watched namespace.
  json Values(int replicas) const {
    json placement = json::object();
    node_->PlaceHere(placement);
    return {{"replicas", replicas},
            {"controllers", operator_cmd::KnownControllers()},
            {"namespaces", {work_ns_}},
            {"leaderElection", {{"enabled", true}}},
            {"inferenceService", {{"serveCommand", MLSCALE_SERVE_BINARY}, {"routerCommand", MLSCALE_ROUTER_BINARY}}},
            {"nodeSelector", placement["nodeSelector"]},
            {"tolerations", placement["tolerations"]}};
  }

  CommandResult InstallOrUpgrade(const std::string& verb, int replicas) {
    const std::string values = WriteFile("values-" + std::to_string(replicas) + ".json", Values(replicas).dump());
    CommandResult result = HelmHere({verb, release_, ChartDir(), "--namespace", release_ns_, "-f", values, "--wait",
                                     "--timeout", "180s"});
    if (result.exit_code == 0) installed_ = true;
    return result;
  }

  // What went wrong, for a failure message: the operator pods' logs and the job's state.
  std::string Diagnostics(const std::string& job = "") const {
    std::string text = "--- operator pods\n" +
                       Kubectl({"get", "pods", "-n", release_ns_, "-o", "wide"}).output;
    json pods = Get({"pods", "-n", release_ns_});
    for (const json& pod : pods.value("items", json::array())) {
      std::string dir = node_->PodDir(release_ns_, pod["metadata"]["name"]);
      if (dir.empty()) continue;
      std::ifstream log(dir + "/operator.log");
      std::stringstream content;
      content << log.rdbuf();
      std::string all = content.str();
      text += "--- " + pod["metadata"]["name"].get<std::string>() + " log (tail)\n" +
              all.substr(all.size() > 4000 ? all.size() - 4000 : 0);
    }
    if (!job.empty()) text += "--- job\n" + Kubectl({"get", "tj", job, "-n", work_ns_, "-o", "yaml"}).output;
    return text;
  }

  std::string Username() const { return "system:serviceaccount:" + release_ns_ + ":" + service_account_; }

  std::unique_ptr<NodeAgentProcess> node_;
  std::string release_ns_, work_ns_, release_, service_account_;
  bool installed_ = false;
};

// The TrainingJob example, placed on our node, made to walk every path the controller's
// grants exist for: created (pods, Service, ConfigMap, Secret, Events), suspended (pods
// deleted), resumed (the "Running" event repeats: patched), finished (cleanPodPolicy
// deletes pods), deleted by its TTL.
json DigitsJob(const NodeAgentProcess& node) {
  StatusOr<std::string> text = api::ReadManifestFile(SourceDir() + "/examples/trainingjob-digits.yaml");
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  StatusOr<json> job = api::ParseYamlDocument(*text);
  EXPECT_TRUE(job.ok()) << job.status().ToString();
  (*job)["spec"]["replicas"] = 2;  // lean: two cores for every test of the run
  // Long enough to suspend it while it runs (it resumes from its checkpoint): 400 epochs
  // took about 20 s with Eigen's products, a few seconds with oneDNN's.
  (*job)["spec"]["trainer"]["epochs"] = 1500;
  json placement = json::object();
  node.PlaceHere(placement);
  (*job)["spec"]["template"] = placement;
  (*job)["spec"]["runPolicy"] = {{"cleanPodPolicy", "All"}, {"ttlSecondsAfterFinished", 20}};
  return *job;
}

TEST_F(ChartRelease, LeastPrivilegeProvenUpgradeKeepsJobsUninstallLeavesNothing) {
  ASSERT_FALSE(operator_cmd::KnownControllers().empty());
  for (const std::string& kind : operator_cmd::KnownControllers()) {
    // A kind the operator hosts without a goal-state scenario here would go unproven.
    ASSERT_THAT((std::vector<std::string>{"TrainingJob", "HyperparameterSweep", "InferenceService"}),
                ::testing::Contains(kind))
        << "no goal-state example for " << kind << " in this test: add one";
  }
  CommandResult install = InstallOrUpgrade("install", 1);
  ASSERT_EQ(install.exit_code, 0) << install.output << Diagnostics();
  EXPECT_THAT(install.output, HasSubstr("kubectl apply -f examples/trainingjob-digits.yaml"));  // NOTES.txt

  // --- TrainingJob. "digits" (the example): Running, suspended, resumed, Succeeded, deleted
  // by its TTL. "steady" (a worker that sleeps) runs through the helm upgrade.
  auto state = [&](const std::string& name) {
    return Get({"tj", name, "-n", work_ns_}).value("status", json::object()).value("state", "");
  };
  auto pod_uids = [&](const std::string& name) {
    std::set<std::string> uids;
    for (const json& pod : Get({"pods", "-n", work_ns_, "-l", "mlscale.io/job-name=" + name}).value("items", json::array())) {
      uids.insert(pod["metadata"]["uid"].get<std::string>());
    }
    return uids;
  };
  json placement = json::object();
  node_->PlaceHere(placement);
  const json steady = {{"apiVersion", "mlscale.io/v1alpha1"},
                       {"kind", "TrainingJob"},
                       {"metadata", {{"name", "steady"}}},
                       {"spec",
                        {{"replicas", 1},
                         {"container", {{"image", "busybox:e2e"}, {"command", {"/bin/sh", "-c", "sleep 3600"}}}},
                         {"template", placement}}}};
  for (const json& job : {DigitsJob(*node_), steady}) {
    CommandResult applied = Kubectl({"apply", "-n", work_ns_, "-f", "-"}, job.dump());
    ASSERT_EQ(applied.exit_code, 0) << applied.output;
  }
  ASSERT_TRUE(WaitFor([&] { return state("digits") == "Running"; }, 180s)) << Diagnostics("digits");
  ASSERT_EQ(Kubectl({"patch", "tj", "digits", "-n", work_ns_, "--type=merge", "-p",
                     R"({"spec":{"runPolicy":{"suspend":true}}})"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return state("digits") == "Suspended" && pod_uids("digits").empty(); }, 120s))
      << Diagnostics("digits");
  ASSERT_EQ(Kubectl({"patch", "tj", "digits", "-n", work_ns_, "--type=merge", "-p",
                     R"({"spec":{"runPolicy":{"suspend":false}}})"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return state("digits") == "Succeeded"; }, 600s)) << Diagnostics("digits");
  EXPECT_EQ(Get({"tj", "digits", "-n", work_ns_}).value("status", json::object()).value("restarts", 0), 0);

  // helm upgrade to two replicas (the second stands by for the Lease) while "steady" runs.
  ASSERT_TRUE(WaitFor([&] { return state("steady") == "Running"; }, 120s)) << Diagnostics("steady");
  const std::set<std::string> before = pod_uids("steady");
  CommandResult upgrade = InstallOrUpgrade("upgrade", 2);
  ASSERT_EQ(upgrade.exit_code, 0) << upgrade.output << Diagnostics("steady");
  json deployment = Get({"deployment", release_ + "-mlscale", "-n", release_ns_});
  EXPECT_EQ(deployment.value("status", json::object()).value("readyReplicas", 0), 2) << Diagnostics();
  std::this_thread::sleep_for(3s);  // the new replica's caches are synced: it would have acted by now
  EXPECT_EQ(state("steady"), "Running") << Diagnostics("steady");
  EXPECT_EQ(pod_uids("steady"), before) << "the upgrade restarted the running job's worker";
  EXPECT_EQ(Get({"tj", "steady", "-n", work_ns_}).value("status", json::object()).value("restarts", 0), 0);
  ASSERT_EQ(Kubectl({"delete", "tj", "steady", "-n", work_ns_, "--wait=false"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return Get({"tj", "digits", "-n", work_ns_}).empty(); }, 120s))
      << "ttlSecondsAfterFinished did not delete the job" << Diagnostics();

  // --- HyperparameterSweep (when the operator hosts it): the example, smaller, to its end.
  const std::vector<std::string> kinds = operator_cmd::KnownControllers();
  if (std::find(kinds.begin(), kinds.end(), "HyperparameterSweep") != kinds.end()) {
    StatusOr<std::string> text = api::ReadManifestFile(SourceDir() + "/examples/sweep-digits-bayesian.yaml");
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    StatusOr<json> sweep = api::ParseYamlDocument(*text);
    ASSERT_TRUE(sweep.ok()) << sweep.status().ToString();
    (*sweep)["spec"]["maxTrials"] = 3;
    (*sweep)["spec"]["parallelTrials"] = 2;
    (*sweep)["spec"]["trialTemplate"]["spec"]["template"] = placement;
    // Trials long enough for their evaluations to be read several times (1000 epochs took
    // about two seconds once the products went through oneDNN: no reading was recorded, and
    // the trainingjobs patch grant went unused), so early stopping records them on the
    // trials (a patch) as a real sweep does.
    (*sweep)["spec"]["trialTemplate"]["spec"]["trainer"]["epochs"] = 8000;
    CommandResult applied = Kubectl({"apply", "-n", work_ns_, "-f", "-"}, sweep->dump());
    ASSERT_EQ(applied.exit_code, 0) << applied.output;
    const std::string name = (*sweep)["metadata"]["name"];
    auto sweep_state = [&] {
      return Get({"sweep", name, "-n", work_ns_}).value("status", json::object()).value("state", "");
    };
    ASSERT_TRUE(WaitFor([&] { return sweep_state() == "Succeeded"; }, 600s))
        << Kubectl({"get", "sweep", name, "-n", work_ns_, "-o", "yaml"}).output << Diagnostics();
  }

  // --- InferenceService (when the operator hosts it): a model on a hostPath volume, Ready,
  // a prediction answered through the router; then a second model rolls out a new revision
  // and the first one's Deployment and Service are deleted once drained.
  if (std::find(kinds.begin(), kinds.end(), "InferenceService") != kinds.end()) {
    const std::string models = dir_ + "/models", name = "digits-isvc";
    serve::testing::WriteArtifact(models + "/m1", serve::testing::MakeArtifact(64, {16}, 10, 1));
    serve::testing::WriteArtifact(models + "/m2", serve::testing::MakeArtifact(64, {16}, 10, 2));
    json isvc = {{"apiVersion", "mlscale.io/v1alpha1"},
                 {"kind", "InferenceService"},
                 {"metadata", {{"name", name}}},
                 {"spec",
                  {{"model", {{"volume", "models"}, {"path", "m1"}}},
                   {"rollout", {{"drainSeconds", 1}, {"oldRevisionGraceSeconds", 1}}},
                   {"template",
                    {{"nodeSelector", placement["nodeSelector"]},
                     {"tolerations", placement["tolerations"]},
                     {"env", {{{"name", "OMP_NUM_THREADS"}, {"value", "1"}}}},
                     {"volumes", {{{"name", "models"}, {"hostPath", {{"path", models}}}}}}}}}}};
    auto isvc_diagnostics = [&] {
      std::string text = Kubectl({"get", "isvc", name, "-n", work_ns_, "-o", "yaml"}).output +
                         Kubectl({"get", "deploy,pods,endpointslices", "-n", work_ns_, "-o", "wide"}).output;
      for (const json& pod : Get({"pods", "-n", work_ns_, "-l", "mlscale.io/inference-service=" + name}).value("items", json::array())) {
        const std::string dir = node_->PodDir(work_ns_, pod["metadata"]["name"]);
        for (const char* container : {"router", "server"}) {
          std::ifstream log(dir + "/" + container + ".log");
          std::stringstream content;
          content << log.rdbuf();
          const std::string all = content.str();
          if (!all.empty()) text += "--- " + pod["metadata"]["name"].get<std::string>() + " " + container + "\n" +
                                    all.substr(all.size() > 2000 ? all.size() - 2000 : 0);
        }
      }
      return text + Diagnostics();
    };
    auto revisions = [&] {
      std::set<std::string> names;
      for (const json& revision : Get({"deployments", "-n", work_ns_, "-l",
                                         "mlscale.io/inference-service=" + name + ",mlscale.io/component=predictor"})
                                        .value("items", json::array())) {
        names.insert(revision["metadata"]["name"].get<std::string>());
      }
      return names;
    };
    auto wait_ready = [&] {
      return Kubectl({"wait", "isvc/" + name, "-n", work_ns_, "--for=condition=Ready", "--timeout=180s"}).exit_code == 0;
    };
    ASSERT_EQ(Kubectl({"apply", "-n", work_ns_, "-f", "-"}, isvc.dump()).exit_code, 0);
    ASSERT_TRUE(wait_ready()) << isvc_diagnostics();
    std::string router;
    for (const json& pod : Get({"pods", "-n", work_ns_, "-l", "mlscale.io/inference-service=" + name +
                                                              ",mlscale.io/component=router"}).value("items", json::array())) {
      router = pod["status"].value("podIP", "");
    }
    ASSERT_FALSE(router.empty()) << isvc_diagnostics();
    HttpAnswer answer;
    // Ready is the servers'; the router may learn them from their EndpointSlice a moment later.
    WaitFor([&] {
      answer = HttpRequest(router, 8080, "POST", "/v2/models/" + name + "/infer", serve::testing::InferBody(2, 64));
      return answer.status == 200;
    }, 30s);
    ASSERT_EQ(answer.status, 200) << answer.body << isvc_diagnostics();
    json reply = json::parse(answer.body, nullptr, false);
    ASSERT_TRUE(reply.is_object() && reply.contains("outputs")) << answer.body;
    const std::set<std::string> first = revisions();
    ASSERT_EQ(first.size(), 1u) << isvc_diagnostics();
    ASSERT_EQ(Kubectl({"patch", "isvc", name, "-n", work_ns_, "--type=merge", "-p",
                       R"({"spec":{"model":{"path":"m2"}}})"}).exit_code, 0);
    ASSERT_TRUE(WaitFor([&] {
      const std::set<std::string> now = revisions();
      return now.size() == 1 && now != first;
    }, 180s)) << "the first revision was not retired\n" << isvc_diagnostics();
    ASSERT_TRUE(wait_ready()) << isvc_diagnostics();
    ASSERT_EQ(Kubectl({"delete", "isvc", name, "-n", work_ns_, "--wait=false"}).exit_code, 0);
  }

  // The grants, as installed (the audit log is read after the uninstall).
  CommandResult manifest = HelmHere({"get", "manifest", release_, "--namespace", release_ns_});
  ASSERT_EQ(manifest.exit_code, 0) << manifest.output;
  StatusOr<std::vector<json>> objects = ParseYamlStream(manifest.output);
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  std::map<std::string, std::vector<Grant>> grants = GrantsOf(*objects);
  ASSERT_FALSE(grants.empty());
  // Requests refused while helm uninstall deletes the roles before the pods have stopped
  // (a terminating operator renewing its Lease) are the uninstall's, not the chart's: the
  // log up to here is where none may be refused.
  const std::uintmax_t audit_bytes_before_uninstall = std::filesystem::file_size(cluster_.audit_log);

  // --- helm uninstall: nothing of the release is left (CRDs stay, as Helm keeps them).
  CommandResult uninstall = HelmHere({"uninstall", release_, "--namespace", release_ns_, "--wait", "--timeout", "120s"});
  ASSERT_EQ(uninstall.exit_code, 0) << uninstall.output;
  installed_ = false;
  const std::string selector = "app.kubernetes.io/instance=" + release_;
  ASSERT_TRUE(WaitFor([&] {
    return Get({"pods", "-n", release_ns_}).value("items", json::array()).empty();
  }, 120s)) << Kubectl({"get", "pods", "-n", release_ns_}).output;
  for (const std::string& ns : {release_ns_, work_ns_}) {
    json left = Get({"deployments,replicasets,pods,services,serviceaccounts,configmaps,secrets,roles,rolebindings",
                     "-n", ns, "-l", selector});
    EXPECT_THAT(left.value("items", json::array()), ::testing::IsEmpty()) << left.dump(1);
  }
  json cluster_left = Get({"clusterroles,clusterrolebindings", "-l", selector});
  EXPECT_THAT(cluster_left.value("items", json::array()), ::testing::IsEmpty()) << cluster_left.dump(1);
  EXPECT_TRUE(Get({"serviceaccount", service_account_, "-n", release_ns_}).empty());
  EXPECT_FALSE(Get({"crd", "trainingjobs.mlscale.io"}).empty()) << "the CRDs must stay";

  // --- The audit log: what the operator's ServiceAccount asked for in its whole life (its
  // watches are logged when they end: the uninstall stopped them), against its grants.
  std::vector<std::string> denied;
  std::set<Grant> used;
  auto read_audit_log = [&]() -> Status {
    std::ifstream in(cluster_.audit_log, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    const std::string log = text.str();
    StatusOr<std::vector<AuditRecord>> records = ParseAuditLog(log);
    // Whole lines only: the API server may be writing the last one.
    StatusOr<std::vector<AuditRecord>> until_uninstall = ParseAuditLog(log.substr(0, log.rfind('\n', audit_bytes_before_uninstall - 1) + 1));
    if (!records.ok()) return records.status();
    if (!until_uninstall.ok()) return until_uninstall.status();
    denied.clear();
    used.clear();
    for (const AuditRecord& record : *until_uninstall) {
      if (record.user == Username() && record.code == 403) denied.push_back(Permission(record) + " " + record.uri);
    }
    for (const AuditRecord& record : *records) {
      if (record.user != Username() || record.code == 403) continue;
      if (record.resource.empty()) continue;  // non-resource URLs: discovery, granted to everyone
      used.insert(Permission(record));
      if (!record.name.empty()) used.insert(Permission(record) + "[" + record.name + "]");
      // A server-side apply that made the object (201) was also authorized as create, a
      // check inside the PATCH that is not logged on its own.
      if (record.verb == "patch" && record.code == 201) {
        AuditRecord created = record;
        created.verb = "create";
        used.insert(Permission(created));
      }
    }
    // `bind` is checked inside the RoleBinding's creation and not logged on its own: the
    // operator's only RoleBindings (InferenceService routers') bind ClusterRole mlscale-router.
    if (used.count("create rbac.authorization.k8s.io/rolebindings")) {
      used.insert("bind rbac.authorization.k8s.io/clusterroles[mlscale-router]");
    }
    return Status::Ok();
  };
  auto all_used = [&] {
    for (const auto& [role, list] : grants) {
      for (const Grant& grant : list) {
        if (role != "ClusterRole//mlscale-router" && !used.count(grant)) return false;
      }
    }
    return true;
  };
  Status read = read_audit_log();
  ASSERT_TRUE(read.ok()) << read.ToString();
  // A watch is logged when it ends, a moment after its process was stopped.
  WaitFor([&] { return read_audit_log().ok() && all_used(); }, 30s);
  ASSERT_FALSE(used.empty()) << "no request of " << Username() << " in the audit log";
  EXPECT_THAT(denied, ::testing::IsEmpty()) << "requests of the operator were refused";
  for (const auto& [role, list] : grants) {
    if (role == "ClusterRole//mlscale-router") continue;  // the router's, not the operator's
    for (const Grant& grant : list) {
      EXPECT_TRUE(used.count(grant)) << role << " grants '" << grant << "', which the operator never used";
    }
  }
}

}  // namespace
}  // namespace mlscale::testing
