// The chart without a cluster: lint, its values schema, its RBAC's shape, the CRDs it
// ships (one source: crds/), what its values turn into.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "chart_support.h"
#include "mlscale/api/manifest.h"
#include "operator_flags.h"

namespace mlscale::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using nlohmann::json;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

json Deployment(const std::vector<json>& objects) {
  std::vector<json> found = OfKind(objects, "Deployment");
  return found.size() == 1 ? found[0] : json();
}

std::vector<std::string> Args(const json& deployment) {
  return deployment["spec"]["template"]["spec"]["containers"][0]["args"].get<std::vector<std::string>>();
}

TEST(Chart, LintIsClean) {
  for (const std::vector<std::string>& values :
       {std::vector<std::string>{}, {"replicas=2", "namespaces={team-a,team-b}", "gangScheduling.enabled=true",
                                     "controllers={TrainingJob,HyperparameterSweep,InferenceService}",
                                     "metrics.serviceMonitor.enabled=true", "grafanaDashboard.enabled=true"}}) {
    std::vector<std::string> args = {"lint", "--strict", ChartDir()};
    for (const std::string& value : values) args.insert(args.end(), {"--set", value});
    CommandResult lint = Helm(args);
    EXPECT_EQ(lint.exit_code, 0) << lint.output;
    EXPECT_THAT(lint.output, HasSubstr("1 chart(s) linted, 0 chart(s) failed"));
    EXPECT_EQ(lint.output.find("[WARNING]"), std::string::npos) << lint.output;
    EXPECT_EQ(lint.output.find("[ERROR]"), std::string::npos) << lint.output;
  }
}

TEST(Chart, SchemaRefusesBadValuesNamingTheField) {
  struct Case {
    std::string value;
    std::string field;  // what helm's message must name
  };
  const std::vector<Case> cases = {
      {"replicas=-1", "replicas"},
      {"replicas=two", "replicas"},
      {"logLevel=verbose", "logLevel"},
      {"logFormat=xml", "logFormat"},
      {"workers=0", "workers"},
      {"kubeApiQps=0", "kubeApiQps"},
      {"kubeApiQps=0.0", "kubeApiQps"},
      {"kubeApiBurst=0", "kubeApiBurst"},
      {"controllers={TrainingJobs}", "controllers"},
      {"namespaces={Team_A}", "namespaces"},
      {"image.pullPolicy=Sometimes", "pullPolicy"},
      {"image.repository=", "repository"},
      {"metrics.port=70000", "port"},
      {"metrics.serviceMonitor.interval=often", "interval"},
      {"leaderElection.leaseName=Not_A_Name", "leaseName"},
      {"replica=2", "replica"},  // a typo: unknown keys are refused, not ignored
      {"nodeSelector.disk=1", "disk"},
      {"inferenceService.serveCommand=", "serveCommand"},
      {"inferenceService.routerComand=x", "routerComand"},
  };
  for (const Case& c : cases) {
    StatusOr<std::vector<json>> rendered = RenderChart({c.value});
    ASSERT_FALSE(rendered.ok()) << c.value << " was accepted";
    EXPECT_THAT(rendered.status().message(), HasSubstr("values don't meet the specifications of the schema"))
        << c.value;
    EXPECT_THAT(rendered.status().message(), HasSubstr(c.field)) << c.value;
  }
}

TEST(Chart, ShipsTheRepositorysCrdsByteForByte) {
  const fs::path scratch = fs::temp_directory_path() / ("chart-package-" + std::to_string(::getpid()));
  fs::create_directories(scratch);
  CommandResult package = Helm({"package", ChartDir(), "--destination", scratch.string()});
  ASSERT_EQ(package.exit_code, 0) << package.output;
  CommandResult untar = RunCommand({"tar", "-xzf", (scratch / "mlscale-0.1.0.tgz").string(), "-C", scratch.string()});
  ASSERT_EQ(untar.exit_code, 0) << untar.output;
  // Every CRD of crds/ is in the packaged chart, unchanged, and the chart has no other.
  std::set<std::string> repository, packaged;
  for (const auto& entry : fs::directory_iterator(SourceDir() + "/crds")) {
    if (entry.is_regular_file() && entry.path().extension() == ".yaml") repository.insert(entry.path().filename());
  }
  for (const auto& entry : fs::directory_iterator(scratch / "mlscale" / "crds")) packaged.insert(entry.path().filename());
  EXPECT_EQ(packaged, repository);
  EXPECT_FALSE(repository.empty());
  for (const std::string& name : repository) {
    EXPECT_EQ(ReadFile(scratch / "mlscale" / "crds" / name), ReadFile(SourceDir() + "/crds/" + name)) << name << " drifted";
  }
  // The router's ClusterRole, likewise from crds/rbac.
  EXPECT_EQ(ReadFile(scratch / "mlscale" / "files" / "router-clusterrole.yaml"),
            ReadFile(SourceDir() + "/crds/rbac/router-clusterrole.yaml"));
  fs::remove_all(scratch);
}

TEST(Chart, RbacNamesEveryVerbAndResourceWithoutWildcards) {
  StatusOr<std::vector<json>> rendered =
      RenderChart({"replicas=2", "gangScheduling.enabled=true", "namespaces={team-a}",
                   "controllers={TrainingJob,HyperparameterSweep,InferenceService}"});
  ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
  size_t rules = 0;
  for (const json& role : *rendered) {
    if (role.value("kind", "") != "Role" && role.value("kind", "") != "ClusterRole") continue;
    for (const json& rule : role["rules"]) {
      ++rules;
      for (const char* field : {"verbs", "resources", "apiGroups"}) {
        ASSERT_TRUE(rule.contains(field)) << rule.dump();
        for (const json& item : rule[field]) EXPECT_EQ(item.get<std::string>().find('*'), std::string::npos) << rule.dump();
      }
    }
  }
  EXPECT_GT(rules, 5u);
}

TEST(Chart, WatchedNamespacesGetRolesAndTheRestAClusterRole) {
  StatusOr<std::vector<json>> everywhere = RenderChart({});
  ASSERT_TRUE(everywhere.ok()) << everywhere.status().ToString();
  EXPECT_TRUE(OfKind(*everywhere, "Role").empty());
  std::map<std::string, std::vector<Grant>> all = GrantsOf(*everywhere);
  // The operator's ClusterRole, and the router's (bound per namespace by the operator).
  ASSERT_EQ(all.size(), 2u) << ::testing::PrintToString(all);
  ASSERT_TRUE(all.count("ClusterRole//mlscale-router")) << ::testing::PrintToString(all);
  EXPECT_THAT(all["ClusterRole//t-mlscale"], ::testing::Contains("create /pods"));
  EXPECT_THAT(all["ClusterRole//t-mlscale"], ::testing::Contains("list /nodes"));

  StatusOr<std::vector<json>> scoped = RenderChart({"namespaces={team-a,team-b}"});
  ASSERT_TRUE(scoped.ok()) << scoped.status().ToString();
  std::map<std::string, std::vector<Grant>> grants = GrantsOf(*scoped);
  ASSERT_TRUE(grants.count("Role/team-a/t-mlscale")) << ::testing::PrintToString(grants);
  ASSERT_TRUE(grants.count("Role/team-b/t-mlscale"));
  EXPECT_THAT(grants["Role/team-a/t-mlscale"], ::testing::Contains("create /pods"));
  // Only cluster-scoped resources stay in the ClusterRole.
  EXPECT_THAT(grants["ClusterRole//t-mlscale"],
              ::testing::UnorderedElementsAre(
                  "list /nodes", "watch /nodes",
                  "get apiextensions.k8s.io/customresourcedefinitions[hyperparametersweeps.mlscale.io]",
                  "get apiextensions.k8s.io/customresourcedefinitions[inferenceservices.mlscale.io]"));
  json deployment = Deployment(*scoped);
  EXPECT_THAT(Args(deployment), ::testing::IsSupersetOf({"--namespace=team-a", "--namespace=team-b"}));
  EXPECT_EQ(OfKind(*scoped, "RoleBinding").size(), 2u);
}

TEST(Chart, LeaderElectionIsOnWithMoreThanOneReplica) {
  for (const auto& [values, expected] : std::vector<std::pair<std::vector<std::string>, bool>>{
           {{}, false}, {{"replicas=2"}, true}, {{"leaderElection.enabled=true"}, true}}) {
    StatusOr<std::vector<json>> rendered = RenderChart(values, "t", "ops");
    ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
    std::vector<std::string> args = Args(Deployment(*rendered));
    const bool elects = std::find(args.begin(), args.end(), "--leader-elect") != args.end();
    EXPECT_EQ(elects, expected) << ::testing::PrintToString(values);
    std::map<std::string, std::vector<Grant>> grants = GrantsOf(*rendered);
    EXPECT_EQ(grants.count("Role/ops/t-mlscale-leader-election"), expected ? 1u : 0u);
    if (expected) {
      EXPECT_THAT(args, ::testing::IsSupersetOf({"--leader-election-namespace=ops", "--leader-election-id=mlscale-operator"}));
      EXPECT_THAT(grants["Role/ops/t-mlscale-leader-election"],
                  ::testing::UnorderedElementsAre("create coordination.k8s.io/leases",
                                                  "get coordination.k8s.io/leases[mlscale-operator]",
                                                  "update coordination.k8s.io/leases[mlscale-operator]"));
    }
  }
}

TEST(Chart, ValuesReachThePod) {
  StatusOr<std::vector<json>> rendered = RenderChart(
      {"image.tag=dev", "logLevel=debug", "logFormat=json", "kubeApiQps=7.5", "kubeApiBurst=9", "workers=3",
       "nodeSelector.pool=system", "tolerations[0].key=dedicated", "tolerations[0].operator=Exists",
       "priorityClassName=system-cluster-critical", "controllers={TrainingJob,HyperparameterSweep}"});
  ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
  json pod = Deployment(*rendered)["spec"]["template"]["spec"];
  json container = pod["containers"][0];
  EXPECT_EQ(container["image"], "mlscale/operator:dev");
  EXPECT_THAT(Args(Deployment(*rendered)),
              ::testing::IsSupersetOf({"--log-level=debug", "--log-format=json", "--kube-api-qps=7.5", "--kube-api-burst=9",
                                       "--workers=3", "--controllers=TrainingJob", "--controllers=HyperparameterSweep"}));
  EXPECT_EQ(pod["nodeSelector"], json({{"pool", "system"}}));
  EXPECT_EQ(pod["tolerations"][0]["key"], "dedicated");
  EXPECT_EQ(pod["priorityClassName"], "system-cluster-critical");
}

TEST(Chart, InferenceServiceProgramsReachTheOperator) {
  StatusOr<std::vector<json>> defaults = RenderChart({});
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  std::vector<std::string> args = Args(Deployment(*defaults));
  EXPECT_THAT(args, ::testing::IsSupersetOf({"--serve-command=mlscale-serve", "--router-command=mlscale-router"}));
  // No router image: the operator gives each router its service's spec.image.
  EXPECT_THAT(args, ::testing::Not(::testing::Contains(::testing::StartsWith("--router-image"))));
  StatusOr<std::vector<json>> set = RenderChart({"inferenceService.serveCommand=/opt/serve",
                                                 "inferenceService.routerCommand=/opt/route",
                                                 "inferenceService.routerImage=registry.example/router:1"});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_THAT(Args(Deployment(*set)), ::testing::IsSupersetOf({"--serve-command=/opt/serve", "--router-command=/opt/route",
                                                               "--router-image=registry.example/router:1"}));
  // Without the InferenceService controller its flags stay out.
  StatusOr<std::vector<json>> without = RenderChart({"controllers={TrainingJob}"});
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  EXPECT_THAT(Args(Deployment(*without)), ::testing::Not(::testing::Contains(::testing::HasSubstr("serve-command"))));
}

TEST(Chart, PodIsLockedDownByDefault) {
  StatusOr<std::vector<json>> rendered = RenderChart({});
  ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
  json pod = Deployment(*rendered)["spec"]["template"]["spec"];
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  json container = pod["containers"][0]["securityContext"];
  EXPECT_EQ(container["readOnlyRootFilesystem"], true);
  EXPECT_EQ(container["allowPrivilegeEscalation"], false);
  EXPECT_EQ(container["capabilities"]["drop"], json::array({"ALL"}));
  // Default image: the chart's appVersion, which is the project's version.
  EXPECT_EQ(pod["containers"][0]["image"], "mlscale/operator:0.1.0");
  // Optional parts stay out unless asked for.
  EXPECT_TRUE(OfKind(*rendered, "ServiceMonitor").empty());
  EXPECT_TRUE(OfKind(*rendered, "ConfigMap").empty());
  EXPECT_EQ(OfKind(*rendered, "Service").size(), 1u);
}

TEST(Chart, OptionalServiceMonitorAndDashboard) {
  StatusOr<std::vector<json>> rendered = RenderChart({"metrics.serviceMonitor.enabled=true", "grafanaDashboard.enabled=true"});
  ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
  std::vector<json> monitors = OfKind(*rendered, "ServiceMonitor");
  ASSERT_EQ(monitors.size(), 1u);
  EXPECT_EQ(monitors[0]["spec"]["endpoints"][0]["port"], "metrics");
  std::vector<json> dashboards = OfKind(*rendered, "ConfigMap");
  ASSERT_EQ(dashboards.size(), 1u);
  EXPECT_EQ(dashboards[0]["metadata"]["labels"]["grafana_dashboard"], "1");
  json dashboard = json::parse(dashboards[0]["data"]["mlscale.json"].get<std::string>(), nullptr, false);
  ASSERT_TRUE(dashboard.is_object());
  EXPECT_GE(dashboard["panels"].size(), 4u);
  // A ServiceMonitor without the Service it selects is refused.
  StatusOr<std::vector<json>> orphan = RenderChart({"metrics.serviceMonitor.enabled=true", "metrics.service.enabled=false"});
  ASSERT_FALSE(orphan.ok());
  EXPECT_THAT(orphan.status().message(), HasSubstr("metrics.serviceMonitor.enabled needs metrics.service.enabled"));
}

TEST(Chart, DefaultControllersAreEveryKindTheOperatorHosts) {
  StatusOr<std::vector<json>> rendered = RenderChart({});
  ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
  std::vector<std::string> asked;
  for (const std::string& arg : Args(Deployment(*rendered))) {
    if (arg.rfind("--controllers=", 0) == 0) asked.push_back(arg.substr(14));
  }
  EXPECT_THAT(asked, ::testing::UnorderedElementsAreArray(operator_cmd::KnownControllers()));
  // And each of those kinds is one values.schema.json accepts.
  json schema = json::parse(ReadFile(ChartDir() + "/values.schema.json"));
  std::vector<std::string> accepted = schema["properties"]["controllers"]["items"]["enum"];
  EXPECT_THAT(accepted, ::testing::IsSupersetOf(operator_cmd::KnownControllers()));
}

TEST(Chart, RouterClusterRoleOnlyWithInferenceServices) {
  StatusOr<std::vector<json>> without = RenderChart({"controllers={TrainingJob,HyperparameterSweep}"});
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  StatusOr<std::vector<json>> with = RenderChart({"controllers={TrainingJob,InferenceService}"});
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  auto names = [](const std::vector<json>& objects) {
    std::set<std::string> found;
    for (const json& role : OfKind(objects, "ClusterRole")) found.insert(role["metadata"]["name"]);
    return found;
  };
  EXPECT_EQ(names(*without).count("mlscale-router"), 0u);
  EXPECT_EQ(names(*with).count("mlscale-router"), 1u);
}

}  // namespace
}  // namespace mlscale::testing
