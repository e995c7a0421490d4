// mlscale-router as a process against the real test control plane: real mlscale-serve
// processes as the model pods, EndpointSlices and an InferenceService object read through
// the API server (with a service account holding only the router's permissions), real
// HTTP through the router.
//
// Why the test writes the EndpointSlices itself (standing in for the endpointslice
// controller, which does run): the API server refuses loopback addresses in EndpointSlices
// ("may not be in the loopback range"), and every test node agent pod has a loopback
// address (127.64.0.0/10), so no slice the controller writes can list a node agent pod. The
// servers here bind the machine's own non-loopback address, one port each, and each gets a
// slice of its own with the labels and conditions the controller would write (the label
// mirroring itself is checked against the real controller below).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <functional>
#include <map>
#include <thread>

#include <ifaddrs.h>
#include <net/if.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "artifacts.h"
#include "cluster_environment.h"
#include "raw_connection.h"

extern char** environ;

namespace mlscale::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return condition();
}

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// The first non-loopback IPv4 address of an interface that is up ("" when none).
std::string HostAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* entry = list; entry != nullptr && found.empty(); entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) continue;
    if ((entry->ifa_flags & IFF_UP) == 0 || (entry->ifa_flags & IFF_LOOPBACK) != 0) continue;
    char text[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(entry->ifa_addr)->sin_addr, text, sizeof text);
    found = text;
  }
  ::freeifaddrs(list);
  return found;
}

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection closed or timed out)
  std::string head;
  std::string body;
  std::string Header(const std::string& lower_name) const {
    auto at = head.find("\r\n" + lower_name + ": ");
    if (at == std::string::npos) return "";
    at += 4 + lower_name.size();
    return head.substr(at, head.find("\r\n", at) - at);
  }
};

// One keep-alive client connection; reconnects when the server closed it.
class Client {
 public:
  explicit Client(uint16_t port) : port_(port) {}
  HttpAnswer Get(const std::string& path) {
    if (!connection_) connection_ = std::make_unique<RawConnection>(port_);
    HttpAnswer answer;
    if (connection_->Send("GET " + path + " HTTP/1.1\r\nHost: router\r\n\r\n")) {
      std::string text = connection_->ReadResponse();
      auto end = text.find("\r\n\r\n");
      if (text.size() > 12 && end != std::string::npos) {
        answer.status = std::stoi(text.substr(9, 3));
        answer.head = text.substr(0, end);
        std::transform(answer.head.begin(), answer.head.end(), answer.head.begin(),
                       [](unsigned char c) { return char(std::tolower(c)); });
        answer.body = text.substr(end + 4);
      }
    }
    if (answer.status == 0 || answer.head.find("connection: close") != std::string::npos) connection_.reset();
    return answer;
  }

 private:
  uint16_t port_;
  std::unique_ptr<RawConnection> connection_;
};

// A process started with its output in a file; SIGTERM on destruction.
class Process {
 public:
  Process(std::vector<std::string> argv, const std::string& log) : log_(log) {
    std::vector<char*> pointers;
    for (auto& arg : argv) pointers.push_back(arg.data());
    pointers.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    if (posix_spawn(&pid_, pointers[0], &actions, nullptr, pointers.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Process() { Stop(); }
  // Signals the process and waits for it; returns its exit code.
  int Stop(int signal_number = SIGTERM) {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, signal_number);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }
  std::string Log() const {
    std::string text;
    if (FILE* file = std::fopen(log_.c_str(), "r")) {
      char chunk[4096];
      for (size_t got; (got = std::fread(chunk, 1, sizeof chunk, file)) > 0;) text.append(chunk, got);
      std::fclose(file);
    }
    return text;
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

constexpr const char* kService = "digits";

class RouterCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto cluster = CurrentCluster();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    kubeconfig_ = new std::string(cluster->admin_kubeconfig);
    // The InferenceService CRD: the project's when this tree has it, else a minimal one
    // (created, never applied over another's).
    if (std::filesystem::exists(MLSCALE_ISVC_CRD)) {
      auto applied = Kubectl(*kubeconfig_, {"apply", "-f", MLSCALE_ISVC_CRD});
      ASSERT_EQ(applied.exit_code, 0) << applied.output;
    } else if (Kubectl(*kubeconfig_, {"get", "crd", "inferenceservices.mlscale.io"}).exit_code != 0) {
      json crd = {{"apiVersion", "apiextensions.k8s.io/v1"}, {"kind", "CustomResourceDefinition"},
                  {"metadata", {{"name", "inferenceservices.mlscale.io"}}},
                  {"spec", {{"group", "mlscale.io"}, {"scope", "Namespaced"},
                            {"names", {{"plural", "inferenceservices"}, {"singular", "inferenceservice"}, {"kind", "InferenceService"}, {"shortNames", {"isvc"}}}},
                            {"versions", {{{"name", "v1alpha1"}, {"served", true}, {"storage", true},
                                           {"subresources", {{"status", json::object()}}},
                                           {"schema", {{"openAPIV3Schema", {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}}}}}}}}}}};
      auto created = Kubectl(*kubeconfig_, {"create", "-f", "-"}, crd.dump());
      ASSERT_TRUE(created.exit_code == 0 || created.output.find("AlreadyExists") != std::string::npos) << created.output;
    }
    ASSERT_TRUE(WaitFor([] { return Kubectl(*kubeconfig_, {"get", "inferenceservices", "-A"}).exit_code == 0; }, 30s));
    // Two model versions: revision "r1" serves version 1, "r2" version 2 of model m, so the
    // answer itself says which revision's server answered.
    models_ = new std::string(std::filesystem::temp_directory_path() / ("router-models-" + std::to_string(getpid())));
    for (int version : {1, 2}) {
      serve::testing::WriteArtifact(*models_ + "/v" + std::to_string(version) + "/m/" + std::to_string(version),
                                    serve::testing::MakeArtifact(8, {16}, 3, uint64_t(version)));
    }
  }
  static void TearDownTestSuite() {
    if (models_) std::filesystem::remove_all(*models_);
  }

  void SetUp() override {
    host_ = HostAddress();
    if (host_.empty()) GTEST_SKIP() << "no non-loopback IPv4 address to put in EndpointSlices";
    static int counter = 0;
    namespace_ = "router-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
    logs_ = std::filesystem::temp_directory_path() / namespace_;
    std::filesystem::create_directories(logs_);
    ASSERT_EQ(Run({"create", "namespace", namespace_}).exit_code, 0);
    // Least privilege: the router reads with a service account allowed only get/list/watch
    // on endpointslices and inferenceservices.
    Apply({{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "Role"}, {"metadata", {{"name", "mlscale-router"}}},
           {"rules", {{{"apiGroups", {"discovery.k8s.io"}}, {"resources", {"endpointslices"}}, {"verbs", {"get", "list", "watch"}}},
                      {{"apiGroups", {"mlscale.io"}}, {"resources", {"inferenceservices"}}, {"verbs", {"get", "list", "watch"}}}}}});
    auto kubeconfig = KubeconfigForServiceAccount(namespace_, "mlscale-router");
    ASSERT_TRUE(kubeconfig.ok()) << kubeconfig.status().ToString();
    router_kubeconfig_ = *kubeconfig;
    Apply({{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "RoleBinding"}, {"metadata", {{"name", "mlscale-router"}}},
           {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", "mlscale-router"}}},
           {"subjects", {{{"kind", "ServiceAccount"}, {"name", "mlscale-router"}, {"namespace", namespace_}}}}});
    Apply({{"apiVersion", "mlscale.io/v1alpha1"}, {"kind", "InferenceService"}, {"metadata", {{"name", kService}}},
           {"spec", {{"model", {{"trainingJob", "digits"}}}}}});  // valid under the project CRD too
  }
  void TearDown() override {
    router_.reset();
    pods_.clear();
    if (!namespace_.empty()) Run({"delete", "namespace", namespace_, "--wait=false"});
    if (!logs_.empty() && !HasFailure()) std::filesystem::remove_all(logs_);
  }

  CommandResult Run(const std::vector<std::string>& args, const std::string& input = "") {
    return Kubectl(*kubeconfig_, args, input);
  }
  void Apply(const json& object) {
    auto result = Run({"-n", namespace_, "apply", "-f", "-"}, object.dump());
    ASSERT_EQ(result.exit_code, 0) << result.output;
  }

  // A model-server "pod": mlscale-serve on the host address and a port of its own, serving
  // model m at `version`, with an EndpointSlice of its own (see the file comment).
  struct Pod {
    std::string revision;
    uint16_t port = 0;
    std::unique_ptr<Process> process;
  };
  void StartPod(const std::string& name, const std::string& revision, int version, bool ready = true) {
    Pod pod{revision, FreePort(), nullptr};
    pod.process = std::make_unique<Process>(
        std::vector<std::string>{MLSCALE_SERVE_BINARY, "--model", "m=" + *models_ + "/v" + std::to_string(version) + "/m",
                                 "--address", host_, "--port", std::to_string(pod.port), "--threads", "1",
                                 "--poll-seconds", "0", "--drain-seconds", "0"},
        logs_ + "/" + name + ".log");
    ASSERT_TRUE(WaitFor([&] { return ProbeReady(host_, pod.port); }, 30s)) << name << " never answered /v2/health/ready";
    pods_[name] = std::move(pod);
    WriteSlice(name, ready ? "ready" : "starting");
  }
  // The slice of pod `name` in state "ready", "starting" (not ready, not serving) or
  // "terminating" (serving, terminating), as the endpointslice controller writes them.
  void WriteSlice(const std::string& name, const std::string& state) {
    const Pod& pod = pods_.at(name);
    const bool ready = state == "ready", terminating = state == "terminating";
    Apply({{"apiVersion", "discovery.k8s.io/v1"}, {"kind", "EndpointSlice"},
           {"metadata", {{"name", name},
                         {"labels", {{"mlscale.io/inference-service", kService}, {"mlscale.io/revision", pod.revision},
                                     {"kubernetes.io/service-name", std::string(kService) + "-" + pod.revision},
                                     {"endpointslice.kubernetes.io/managed-by", "router-test"}}}}},
           {"addressType", "IPv4"},
           {"ports", {{{"name", "http"}, {"port", pod.port}, {"protocol", "TCP"}}}},
           {"endpoints", {{{"addresses", {host_}},
                           {"conditions", {{"ready", ready}, {"serving", ready || terminating}, {"terminating", terminating}}}}}}});
  }
  static bool ProbeReady(const std::string& host, uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &address.sin_addr);
    const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    bool ok = false;
    if (connected) {
      const std::string request = "GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
      char buffer[64] = {};
      ok = ::recv(fd, buffer, sizeof buffer - 1, 0) > 12 && std::string(buffer).starts_with("HTTP/1.1 200");
    }
    ::close(fd);
    return ok;
  }
  void SetTraffic(const json& traffic) {
    auto result = Run({"-n", namespace_, "patch", "inferenceservice", kService, "--subresource=status", "--type=merge",
                       "-p", json{{"status", {{"traffic", traffic}}}}.dump()});
    ASSERT_EQ(result.exit_code, 0) << result.output;
  }

  void StartRouter(const std::vector<std::string>& extra = {}) {
    port_ = FreePort();
    metrics_port_ = FreePort();
    std::vector<std::string> args = {MLSCALE_ROUTER_BINARY, "--inference-service", kService, "--namespace", namespace_,
                                     "--kubeconfig", router_kubeconfig_,
                                     "--listen", "127.0.0.1:" + std::to_string(port_), "--metrics-listen",
                                     "127.0.0.1:" + std::to_string(metrics_port_), "--threads", "2",  // pods on the same loops (the default)
                                     "--drain-seconds", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    router_ = std::make_unique<Process>(args, logs_ + "/router.log");
    ASSERT_TRUE(WaitFor([&] { return Client(metrics_port_).Get("/readyz").status == 200; }, 30s))
        << "router never ready:\n" << router_->Log();
  }
  json Stats() { return json::parse(Client(metrics_port_).Get("/v1/stats").body, nullptr, false); }
  // Waits until the router's stats show `ready` ready pods for `revision`.
  void WaitForReadyEndpoints(const std::string& revision, int ready) {
    ASSERT_TRUE(WaitFor([&] {
      json stats = Stats();
      return stats.is_object() && stats["revisions"].contains(revision) &&
             stats["revisions"][revision]["readyEndpoints"] == ready;
    }, 30s)) << "stats: " << Stats().dump() << "\n" << router_->Log();
  }
  // The version of model m in a metadata answer ("" when not a 200 metadata answer).
  static std::string VersionOf(const HttpAnswer& answer) {
    if (answer.status != 200) return "";
    json body = json::parse(answer.body, nullptr, false);
    return body.is_object() && body["versions"].is_array() && !body["versions"].empty() ? body["versions"][0].get<std::string>() : "";
  }

  static std::string* kubeconfig_;
  static std::string* models_;
  std::string host_, namespace_, router_kubeconfig_, logs_;
  uint16_t port_ = 0, metrics_port_ = 0;
  std::map<std::string, Pod> pods_;
  std::unique_ptr<Process> router_;
};

std::string* RouterCluster::kubeconfig_ = nullptr;
std::string* RouterCluster::models_ = nullptr;

TEST_F(RouterCluster, EndpointSliceControllerMirrorsTheRevisionLabels) {
  // What the router's selector relies on: the slices the real endpointslice controller
  // makes for a revision's Service carry that Service's labels.
  Apply({{"apiVersion", "v1"}, {"kind", "Service"},
         {"metadata", {{"name", "digits-r1"}, {"labels", {{"mlscale.io/inference-service", kService}, {"mlscale.io/revision", "r1"}}}}},
         {"spec", {{"selector", {{"mlscale.io/inference-service", kService}, {"mlscale.io/revision", "r1"}}},
                   {"ports", {{{"name", "http"}, {"port", 8080}, {"targetPort", 8080}}}}}}});
  json items;
  ASSERT_TRUE(WaitFor([&] {
    auto slices = Run({"-n", namespace_, "get", "endpointslices", "-l", std::string("mlscale.io/inference-service=") + kService,
                       "-o", "json"});
    if (slices.exit_code != 0) return false;
    items = json::parse(slices.output, nullptr, false)["items"];
    return items.is_array() && !items.empty();
  }, 30s)) << "the endpointslice controller made no slice with the Service's labels";
  EXPECT_EQ(items[0]["metadata"]["labels"]["mlscale.io/revision"], "r1");
  EXPECT_EQ(items[0]["metadata"]["labels"]["kubernetes.io/service-name"], "digits-r1");
}

TEST_F(RouterCluster, TrafficReachesOnlyReadyPods) {
  StartPod("r1-ready", "r1", 1);
  StartPod("r1-starting", "r1", 2, /*ready=*/false);  // serves, but its slice says not ready
  SetTraffic({{{"revision", "r1"}, {"percent", 100}}});
  StartRouter();
  WaitForReadyEndpoints("r1", 1);
  Client client(port_);
  for (int i = 0; i < 200; ++i) {
    auto answer = client.Get("/v2/models/m");
    ASSERT_EQ(answer.status, 200) << "request " << i << ": " << answer.body;
    ASSERT_EQ(VersionOf(answer), "1") << "request " << i << " reached the pod that is not ready";
    EXPECT_EQ(answer.Header("x-mlscale-revision"), "r1");
  }
  json stats = Stats();
  EXPECT_EQ(stats["revisions"]["r1"]["readyEndpoints"], 1);
  EXPECT_GT(stats["revisions"]["r1"]["requestsPerSecond"].get<double>(), 0);
  auto metrics = Client(metrics_port_).Get("/metrics").body;
  EXPECT_NE(metrics.find("mlscale_router_requests_total{revision=\"r1\",code=\"200\"} 200"), std::string::npos) << metrics;
  // Once ready, it gets its share.
  WriteSlice("r1-starting", "ready");
  WaitForReadyEndpoints("r1", 2);
  int second = 0;
  for (int i = 0; i < 100; ++i) second += VersionOf(client.Get("/v2/models/m")) == "2";
  EXPECT_GT(second, 10);
}

TEST_F(RouterCluster, CanaryGetsTwentyPercentOfFiveThousand) {
  StartPod("r1-a", "r1", 1);
  StartPod("r2-a", "r2", 2);
  SetTraffic({{{"revision", "r1"}, {"percent", 80}}, {{"revision", "r2"}, {"percent", 20}}});
  StartRouter();
  WaitForReadyEndpoints("r1", 1);
  WaitForReadyEndpoints("r2", 1);
  std::atomic<int> by_version[3] = {0, 0, 0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      Client client(port_);
      for (int i = 0; i < 1250; ++i) {
        const std::string version = VersionOf(client.Get("/v2/models/m"));
        if (version == "1" || version == "2") {
          by_version[std::stoi(version)]++;
        } else {
          failed++;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  const double canary_percent = 100.0 * by_version[2].load() / 5000.0;
  EXPECT_NEAR(canary_percent, 20.0, 3.0) << by_version[1].load() << " stable, " << by_version[2].load() << " canary";
}

TEST_F(RouterCluster, PodsAndARevisionGoingAwayMidLoadLoseNoRequest) {
  StartPod("r1-a", "r1", 1);
  StartPod("r1-b", "r1", 1);
  StartPod("r2-a", "r2", 2);
  SetTraffic({{{"revision", "r1"}, {"percent", 100}}, {{"revision", "r2"}, {"percent", 0}}});
  StartRouter();
  WaitForReadyEndpoints("r1", 2);
  WaitForReadyEndpoints("r2", 1);
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      Client client(port_);
      while (!stop) {
        auto answer = client.Get("/v2/models/m");
        if (answer.status == 200) {
          answered++;
        } else {
          std::lock_guard lock(failures_mutex);
          failures.push_back(std::to_string(answer.status) + " " + answer.body);
        }
      }
    });
  }
  auto wait_answers = [&](int more) {
    const int target = answered + more;
    return WaitFor([&] { return answered >= target; }, 60s);
  };
  EXPECT_TRUE(wait_answers(300));
  // A pod going away the hard way: its server dies before its slice says anything, so
  // the router meets refused connections and must retry them on the other pod.
  pods_.at("r1-a").process->Stop(SIGKILL);
  EXPECT_TRUE(wait_answers(300));
  WriteSlice("r1-a", "terminating");
  ASSERT_EQ(Run({"-n", namespace_, "delete", "endpointslice", "r1-a"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return Stats()["revisions"]["r1"]["readyEndpoints"] == 1; }, 30s));
  EXPECT_TRUE(wait_answers(300));
  SetTraffic({{{"revision", "r1"}, {"percent", 0}}, {{"revision", "r2"}, {"percent", 100}}});  // the rollout
  EXPECT_TRUE(wait_answers(100));
  // The old revision goes: its last pod drains (terminating, still serving), then stops.
  WriteSlice("r1-b", "terminating");
  EXPECT_TRUE(wait_answers(100));
  pods_.at("r1-b").process->Stop(SIGTERM);
  ASSERT_EQ(Run({"-n", namespace_, "delete", "endpointslice", "r1-b"}).exit_code, 0);
  EXPECT_TRUE(wait_answers(300));
  stop = true;
  for (auto& thread : threads) thread.join();
  EXPECT_GT(answered.load(), 1500);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << (failures.empty() ? "" : failures[0]);
  Client client(port_);
  EXPECT_EQ(VersionOf(client.Get("/v2/models/m")), "2");
  auto metrics = Client(metrics_port_).Get("/metrics").body;
  EXPECT_NE(metrics.find("mlscale_router_retries_total{revision=\"r1\"}"), std::string::npos)
      << "the killed pod was never met: the test did not test the retry\n" << metrics;
}

TEST_F(RouterCluster, HeldRequestsAreServedOnceAPodIsReady) {
  SetTraffic({{{"revision", "r1"}, {"percent", 100}}});  // r1 has no pod: at zero replicas
  StartRouter({"--queue-timeout-ms", "90000"});
  std::vector<std::thread> threads;
  std::vector<HttpAnswer> answers(3);
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] { answers[size_t(t)] = Client(port_).Get("/v2/models/m"); });
  }
  ASSERT_TRUE(WaitFor([&] { return Stats()["revisions"]["r1"]["queued"] == 3; }, 20s)) << Stats().dump();
  EXPECT_EQ(Stats()["revisions"]["r1"]["readyEndpoints"], 0);
  std::this_thread::sleep_for(500ms);
  StartPod("r1-a", "r1", 1);  // what the controller does on queued > 0
  for (auto& thread : threads) thread.join();
  for (const auto& answer : answers) {
    EXPECT_EQ(answer.status, 200) << answer.body;
    EXPECT_EQ(VersionOf(answer), "1");
    EXPECT_GE(std::stoi("0" + answer.Header("x-mlscale-queued-ms")), 500);
  }
  EXPECT_EQ(Stats()["revisions"]["r1"]["queued"], 0);
  auto metrics = Client(metrics_port_).Get("/metrics").body;
  EXPECT_NE(metrics.find("mlscale_router_queue_wait_seconds_count{revision=\"r1\"} 3"), std::string::npos) << metrics;
  EXPECT_EQ(router_->Stop(), 0) << router_->Log();
}

}  // namespace
}  // namespace mlscale::testing
