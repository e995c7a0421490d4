#include "pod_plan.h"

#include <gtest/gtest.h>

#include "quantity.h"

namespace mlscale::nodeagent {
namespace {

using nlohmann::json;

json Pod(json containers, json extra_spec = json::object()) {
  json pod = {{"metadata", {{"name", "trainer-0"}, {"namespace", "ml"}, {"uid", "u-1"},
                            {"labels", {{"job", "mnist"}}}, {"annotations", {{"a/b", "c"}}}}},
              {"spec", {{"containers", containers}}}};
  pod["spec"].update(extra_spec);
  return pod;
}

PlanInputs Inputs() {
  PlanInputs inputs;
  inputs.images = {{"mlscale/worker:dev", {"/opt/worker", "--serve"}}};
  inputs.pod_ip = "127.64.0.9";
  inputs.host_ip = "127.0.0.1";
  inputs.node_name = "node-a";
  inputs.node_allocatable = {{"cpu", "8"}, {"memory", "16Gi"}};
  inputs.base_env = {"PATH=/usr/bin:/bin"};
  inputs.lookup = [](const std::string& kind, const std::string& ns,
                     const std::string& name) -> StatusOr<std::map<std::string, std::string>> {
    if (kind == "configmaps" && ns == "ml" && name == "settings") {
      return std::map<std::string, std::string>{{"LR", "0.1"}, {"EPOCHS", "3"}};
    }
    if (kind == "secrets" && ns == "ml" && name == "token") {
      return std::map<std::string, std::string>{{"value", "s3cret"}};
    }
    return NotFound(kind + " " + ns + "/" + name + " not found");
  };
  return inputs;
}

std::string EnvValue(const ContainerPlan& plan, const std::string& name) {
  for (const std::string& entry : plan.env) {
    if (entry.rfind(name + "=", 0) == 0) return entry.substr(name.size() + 1);
  }
  return "<unset>";
}

TEST(PodPlan, ImageEntrypointWithArgsWhenNoCommand) {
  StatusOr<PodPlan> plan = BuildPodPlan(
      Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"}, {"args", {"--epochs", "2"}}}}), Inputs());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->containers[0].argv,
            (std::vector<std::string>{"/opt/worker", "--serve", "--epochs", "2"}));
  EXPECT_EQ(plan->restart_policy, RestartPolicy::kAlways);
  EXPECT_EQ(plan->termination_grace_seconds, 30);
  EXPECT_EQ(plan->hostname, "trainer-0");
  EXPECT_EQ(plan->containers[0].termination_message_path, "/dev/termination-log");
}

TEST(PodPlan, CommandReplacesEntrypointEvenForUnmappedImages) {
  StatusOr<PodPlan> plan = BuildPodPlan(
      Pod({{{"name", "w"}, {"image", "busybox"}, {"command", {"sh", "-c"}}, {"args", {"exit 3"}}}},
          {{"restartPolicy", "Never"}, {"terminationGracePeriodSeconds", 5}}),
      Inputs());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->containers[0].argv, (std::vector<std::string>{"sh", "-c", "exit 3"}));
  EXPECT_EQ(plan->restart_policy, RestartPolicy::kNever);
  EXPECT_EQ(plan->termination_grace_seconds, 5);
}

TEST(PodPlan, UnmappedImageWithoutCommandIsAnImagePullError) {
  StatusOr<PodPlan> plan = BuildPodPlan(Pod({{{"name", "w"}, {"image", "nginx:1.27"}}}), Inputs());
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(WaitingReasonFor(plan.status()), "ErrImagePull");
  EXPECT_NE(plan.status().message().find("nginx:1.27"), std::string::npos);
}

TEST(PodPlan, EnvironmentMergesEnvFromThenEnvAndExpandsReferences) {
  json container = {
      {"name", "w"}, {"image", "mlscale/worker:dev"},
      {"envFrom", {{{"configMapRef", {{"name", "settings"}}}, {"prefix", "CFG_"}}}},
      {"env",
       {{{"name", "CFG_LR"}, {"value", "0.5"}},
        {{"name", "POD_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
        {{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}},
        {{"name", "JOB"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.labels['job']"}}}}}},
        {{"name", "NOTE"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.annotations['a/b']"}}}}}},
        {{"name", "NODE"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "spec.nodeName"}}}}}},
        {{"name", "TOKEN"}, {"valueFrom", {{"secretKeyRef", {{"name", "token"}, {"key", "value"}}}}}},
        {{"name", "EPOCHS"}, {"valueFrom", {{"configMapKeyRef", {{"name", "settings"}, {"key", "EPOCHS"}}}}}},
        {{"name", "ABSENT"},
         {"valueFrom", {{"configMapKeyRef", {{"name", "nope"}, {"key", "x"}, {"optional", true}}}}}},
        {{"name", "ADDR"}, {"value", "$(POD_IP):29500 $(UNDEFINED) $$(POD_IP)"}},
        {{"name", "CPUS"}, {"valueFrom", {{"resourceFieldRef", {{"resource", "limits.cpu"}}}}}},
        {{"name", "MEM_MI"},
         {"valueFrom", {{"resourceFieldRef", {{"resource", "requests.memory"}, {"divisor", "1Mi"}}}}}}}},
      {"resources", {{"requests", {{"memory", "1536Mi"}}}}},
      {"args", {"--master=$(ADDR)", "--name=$(POD_NAME)"}}};
  StatusOr<PodPlan> plan = BuildPodPlan(Pod({container}), Inputs());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const ContainerPlan& c = plan->containers[0];
  EXPECT_EQ(c.env.front(), "PATH=/usr/bin:/bin");
  EXPECT_EQ(EnvValue(c, "CFG_LR"), "0.5");  // env overrides envFrom
  EXPECT_EQ(EnvValue(c, "CFG_EPOCHS"), "3");
  EXPECT_EQ(EnvValue(c, "POD_NAME"), "trainer-0");
  EXPECT_EQ(EnvValue(c, "POD_IP"), "127.64.0.9");
  EXPECT_EQ(EnvValue(c, "JOB"), "mnist");
  EXPECT_EQ(EnvValue(c, "NOTE"), "c");
  EXPECT_EQ(EnvValue(c, "NODE"), "node-a");
  EXPECT_EQ(EnvValue(c, "TOKEN"), "s3cret");
  EXPECT_EQ(EnvValue(c, "EPOCHS"), "3");
  EXPECT_EQ(EnvValue(c, "ABSENT"), "<unset>");
  EXPECT_EQ(EnvValue(c, "ADDR"), "127.64.0.9:29500 $(UNDEFINED) $(POD_IP)");
  EXPECT_EQ(EnvValue(c, "CPUS"), "8");  // no limit: the node's allocatable
  EXPECT_EQ(EnvValue(c, "MEM_MI"), "1536");
  EXPECT_EQ(c.argv[2], "--master=127.64.0.9:29500 $(UNDEFINED) $(POD_IP)");
  EXPECT_EQ(c.argv[3], "--name=trainer-0");
}

TEST(PodPlan, ProbesResolveNamedPortsAndDefaults) {
  json container = {{"name", "srv"}, {"image", "mlscale/worker:dev"},
                    {"ports", {{{"name", "http"}, {"containerPort", 8080}}}},
                    {"readinessProbe", {{"httpGet", {{"path", "healthz"}, {"port", "http"}}},
                                        {"periodSeconds", 2}}},
                    {"livenessProbe", {{"tcpSocket", {{"port", 9000}}}}}};
  StatusOr<PodPlan> plan = BuildPodPlan(Pod({container}), Inputs());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const ProbePlan& readiness = *plan->containers[0].readiness;
  EXPECT_EQ(readiness.kind, ProbePlan::Kind::kHttpGet);
  EXPECT_EQ(readiness.port, 8080);
  EXPECT_EQ(readiness.path, "/healthz");
  EXPECT_EQ(readiness.period_seconds, 2);
  EXPECT_EQ(readiness.failure_threshold, 3);
  EXPECT_EQ(plan->containers[0].liveness->kind, ProbePlan::Kind::kTcpSocket);
  EXPECT_EQ(plan->containers[0].liveness->port, 9000);
}

TEST(PodPlan, VolumesAndMounts) {
  json pod = Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"},
                   {"volumeMounts", {{{"name", "scratch"}, {"mountPath", "/ckpt"}},
                                     {{"name", "hostfile"}, {"mountPath", "/etc/mpi"}},
                                     {{"name", "token"}, {"mountPath", "/run/token"}, {"subPath", "t"}}}}}},
                 {{"volumes", {{{"name", "scratch"}, {"emptyDir", json::object()}},
                               {{"name", "hostfile"}, {"configMap", {{"name", "settings"},
                                                                     {"items", {{{"key", "LR"}, {"path", "conf/lr"}}}}}}},
                               {{"name", "token"}, {"secret", {{"secretName", "token"}}}},
                               {{"name", "data"}, {"hostPath", {{"path", "/srv/data"}, {"type", "DirectoryOrCreate"}}}}}}});
  StatusOr<PodPlan> plan = BuildPodPlan(pod, Inputs());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->volumes.size(), 4u);
  EXPECT_EQ(plan->volumes[0].kind, VolumePlan::Kind::kEmptyDir);
  EXPECT_EQ(plan->volumes[1].files, (std::map<std::string, std::string>{{"conf/lr", "0.1"}}));
  EXPECT_EQ(plan->volumes[2].files.at("value"), "s3cret");
  EXPECT_EQ(plan->volumes[3].host_path, "/srv/data");
  EXPECT_TRUE(plan->volumes[3].create_host_path);
  ASSERT_EQ(plan->containers[0].mounts.size(), 3u);
  EXPECT_EQ(plan->containers[0].mounts[2].sub_path, "t");
  // What the ServiceAccount admission plugin adds to every pod.
  pod["spec"]["volumes"] = {{{"name", "kube-api-access"},
                             {"projected", {{"sources", {{{"serviceAccountToken", {{"path", "token"}}}},
                                                         {{"configMap", {{"name", "settings"}, {"items", {{{"key", "LR"}, {"path", "ca.crt"}}}}}}},
                                                         {{"downwardAPI", {{"items", {{{"path", "namespace"},
                                                                                       {"fieldRef", {{"fieldPath", "metadata.namespace"}}}}}}}}}}}}}}};
  pod["spec"]["containers"][0]["volumeMounts"] = {{{"name", "kube-api-access"}, {"mountPath", "/var/run/secrets/kubernetes.io/serviceaccount"}}};
  plan = BuildPodPlan(pod, Inputs());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->volumes[0].files, (std::map<std::string, std::string>{{"ca.crt", "0.1"}, {"namespace", "ml"}}));
  ASSERT_EQ(plan->volumes[0].tokens.size(), 1u);  // issued by the agent, not by the plan
  EXPECT_EQ(plan->volumes[0].tokens[0].path, "token");
  EXPECT_EQ(plan->volumes[0].tokens[0].audience, "");
  EXPECT_EQ(plan->volumes[0].tokens[0].expiration_seconds, 3600);
  EXPECT_EQ(plan->service_account, "default");
}

TEST(PodPlan, ServiceAccountTokenProjection) {
  auto with_token = [](json token) {
    json pod = Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"}}},
                   {{"serviceAccountName", "trainer"},
                    {"volumes", {{{"name", "sa"}, {"projected", {{"sources", {{{"serviceAccountToken", token}}}}}}}}}});
    return BuildPodPlan(pod, Inputs());
  };
  StatusOr<PodPlan> plan = with_token({{"path", "vault/token"}, {"audience", "vault"}, {"expirationSeconds", 7200}});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->service_account, "trainer");
  ASSERT_EQ(plan->volumes[0].tokens.size(), 1u);
  EXPECT_EQ(plan->volumes[0].tokens[0].path, "vault/token");
  EXPECT_EQ(plan->volumes[0].tokens[0].audience, "vault");
  EXPECT_EQ(plan->volumes[0].tokens[0].expiration_seconds, 7200);
  for (const json& bad : {json{{"path", "/abs"}}, json{{"path", "../x"}}, json{{"audience", "a"}},
                          json{{"path", "t"}, {"expirationSeconds", 60}},
                          json{{"path", "t"}, {"expirationSeconds", "1h"}}, json("token")}) {
    StatusOr<PodPlan> refused = with_token(bad);
    ASSERT_FALSE(refused.ok()) << bad.dump();
    EXPECT_NE(refused.status().message().find("serviceAccountToken"), std::string::npos) << refused.status().ToString();
  }
}

TEST(TokenRefreshTime, At80PercentOfTheLifetimeAndWithin24Hours) {
  using namespace std::chrono;
  system_clock::time_point issued = system_clock::from_time_t(1'700'000'000);
  EXPECT_EQ(TokenRefreshTime(issued, issued + seconds(3600), 80), issued + seconds(2880));
  EXPECT_EQ(TokenRefreshTime(issued, issued + seconds(600), 80), issued + seconds(480));
  EXPECT_EQ(TokenRefreshTime(issued, issued + hours(24 * 365), 80), issued + hours(24));
  EXPECT_EQ(TokenRefreshTime(issued, issued - seconds(5), 80), issued);  // already expired: now
  // --token-refresh-percent (the refresh e2e test's 1 %: a 600 s token is replaced after 6 s).
  EXPECT_EQ(TokenRefreshTime(issued, issued + seconds(600), 1), issued + seconds(6));
  EXPECT_EQ(TokenRefreshTime(issued, issued + seconds(600), 100), issued + seconds(600));
}

TEST(PodPlan, HostnameAndSubdomain) {
  json pod = Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"}}},
                 {{"hostname", "worker-1"}, {"subdomain", "job"}});
  StatusOr<PodPlan> plan = BuildPodPlan(pod, Inputs());
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->hostname, "worker-1");
  EXPECT_EQ(plan->subdomain, "job");
  json long_name = Pod({});
  long_name["metadata"]["name"] = std::string(62, 'a') + "-b";
  EXPECT_EQ(PodHostname(long_name), std::string(62, 'a'));  // cut to 63, no trailing '-'
}

TEST(PodPlan, MalformedSpecsAreConfigErrorsNamingTheField) {
  struct Case {
    const char* what;
    json pod;
    const char* mentions;
  };
  json ok_container = {{"name", "w"}, {"image", "mlscale/worker:dev"}};
  std::vector<Case> cases = {
      {"not an object", json::array(), "metadata"},
      {"no spec", {{"metadata", {{"name", "p"}, {"uid", "u"}}}}, "spec"},
      {"no containers", Pod(json::array()), "spec.containers"},
      {"containers not a list", Pod(json::object()), "spec.containers"},
      {"container without name", Pod({{{"image", "x"}, {"command", {"true"}}}}), "without a name"},
      {"command not a list", Pod({{{"name", "w"}, {"image", "x"}, {"command", "true"}}}), "command"},
      {"args with a number", Pod({{{"name", "w"}, {"image", "x"}, {"command", {"true"}}, {"args", {1}}}}), "args"},
      {"bad restart policy", Pod({ok_container}, {{"restartPolicy", "Sometimes"}}), "restartPolicy"},
      {"env not a list", Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"}, {"env", "X=1"}}}), "env"},
      {"unknown fieldRef",
       Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"},
             {"env", {{{"name", "X"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "spec.nope"}}}}}}}}}}),
       "spec.nope"},
      {"missing configmap",
       Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"},
             {"env", {{{"name", "X"}, {"valueFrom", {{"configMapKeyRef", {{"name", "gone"}, {"key", "k"}}}}}}}}}}),
       "gone"},
      {"missing key",
       Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"},
             {"env", {{{"name", "X"}, {"valueFrom", {{"configMapKeyRef", {{"name", "settings"}, {"key", "k"}}}}}}}}}}),
       "key 'k'"},
      {"bad divisor",
       Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"},
             {"env", {{{"name", "X"}, {"valueFrom", {{"resourceFieldRef", {{"resource", "limits.cpu"}, {"divisor", "lots"}}}}}}}}}}),
       "divisor"},
      {"probe on unknown port",
       Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"}, {"readinessProbe", {{"tcpSocket", {{"port", "grpc"}}}}}}}),
       "grpc"},
      {"probe without handler",
       Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"}, {"readinessProbe", {{"periodSeconds", 1}}}}}),
       "handler"},
      {"probe period not a number",
       Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"},
             {"livenessProbe", {{"exec", {{"command", {"true"}}}}, {"periodSeconds", "often"}}}}}),
       "periodSeconds"},
      {"https probe",
       Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"},
             {"readinessProbe", {{"httpGet", {{"port", 1}, {"scheme", "HTTPS"}}}}}}}),
       "HTTPS"},
      {"unsupported volume", Pod({ok_container}, {{"volumes", {{{"name", "v"}, {"persistentVolumeClaim", {{"claimName", "c"}}}}}}}),
       "only emptyDir"},
      {"downward resourceFieldRef", Pod({ok_container}, {{"volumes", {{{"name", "v"}, {"downwardAPI", {{"items", {{{"path", "cpu"}, {"resourceFieldRef", {{"resource", "limits.cpu"}}}}}}}}}}}}), "only fieldRef"},
      {"volumes not a list", Pod({ok_container}, {{"volumes", "v"}}), "spec.volumes"},
      {"missing configmap volume", Pod({ok_container}, {{"volumes", {{{"name", "v"}, {"configMap", {{"name", "gone"}}}}}}}),
       "gone"},
      {"escaping item path",
       Pod({ok_container}, {{"volumes", {{{"name", "v"}, {"configMap", {{"name", "settings"},
                                                                   {"items", {{{"key", "LR"}, {"path", "../x"}}}}}}}}}}),
       "without '..'"},
      {"mount of an unknown volume",
       Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"}, {"volumeMounts", {{{"name", "nope"}, {"mountPath", "/x"}}}}}}),
       "no volume named 'nope'"},
      {"relative mount path",
       Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"}, {"volumeMounts", {{{"name", "v"}, {"mountPath", "x"}}}}}},
           {{"volumes", {{{"name", "v"}, {"emptyDir", json::object()}}}}}),
       "mountPath must be absolute"},
      {"relative termination path",
       Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"}, {"terminationMessagePath", "log"}}}),
       "terminationMessagePath"},
  };
  for (const Case& c : cases) {
    StatusOr<PodPlan> plan = BuildPodPlan(c.pod, Inputs());
    ASSERT_FALSE(plan.ok()) << c.what;
    EXPECT_EQ(WaitingReasonFor(plan.status()), "CreateContainerConfigError") << c.what;
    EXPECT_NE(plan.status().message().find(c.mentions), std::string::npos)
        << c.what << ": " << plan.status().message();
  }
}

TEST(PodPlan, RandomlyDamagedPodsNeverCrash) {
  json base = Pod({{{"name", "w"}, {"image", "mlscale/worker:dev"}, {"args", {"a"}},
                    {"env", {{{"name", "A"}, {"value", "$(B)"}}}},
                    {"readinessProbe", {{"exec", {{"command", {"true"}}}}}}}});
  std::string text = base.dump();
  uint32_t seed = 12345;
  int parsed = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string damaged = text;
    for (int edits = 0; edits < 3; ++edits) {
      seed = seed * 1664525u + 1013904223u;
      size_t at = seed % damaged.size();
      const char replacements[] = "{}[]\",:0a ";
      damaged[at] = replacements[(seed >> 16) % (sizeof replacements - 1)];
    }
    json pod = json::parse(damaged, nullptr, /*allow_exceptions=*/false);
    if (pod.is_discarded()) continue;
    ++parsed;
    StatusOr<PodPlan> plan = BuildPodPlan(pod, Inputs());  // must not throw or crash
    (void)PlanSkeleton(pod);
    if (!plan.ok()) {
      EXPECT_FALSE(plan.status().message().empty());
    }
  }
  EXPECT_GT(parsed, 100);
}

TEST(Quantity, ParsesKubernetesSuffixes) {
  EXPECT_DOUBLE_EQ(*ParseQuantity("500m"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseQuantity("2"), 2.0);
  EXPECT_DOUBLE_EQ(*ParseQuantity("1Ki"), 1024.0);
  EXPECT_DOUBLE_EQ(*ParseQuantity("1.5G"), 1.5e9);
  EXPECT_DOUBLE_EQ(*ParseQuantity("3e2"), 300.0);
  for (const char* bad : {"", "m", "1X", "1.2.3", "--1", "1e", "Gi"}) {
    EXPECT_FALSE(ParseQuantity(bad).ok()) << bad;
  }
}

TEST(ExpandVariables, LaterDefinitionsWinAndEscapesAreKept) {
  EXPECT_EQ(ExpandVariables("$(A)-$(A", {"A=1", "A=2"}), "2-$(A");
  EXPECT_EQ(ExpandVariables("$$ $ $(", {}), "$ $ $(");
}

}  // namespace
}  // namespace mlscale::nodeagent
