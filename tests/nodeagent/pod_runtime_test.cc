// The pod supervisor with real processes: phases, restarts, termination messages,
// probes and graceful termination.
#include "pod_runtime.h"
#include "probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

namespace mlscale::nodeagent {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class PodRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "sandboxes need root";
    dir_ = std::filesystem::temp_directory_path() /
           ("nodeagent-runtime-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override {
    runtime_.reset();
    std::filesystem::remove_all(dir_);
    std::filesystem::remove("/tmp/nodeagent-runtime-msg");  // a mount target one test creates
  }

  // Starts a pod whose containers are given as (name, shell script) pairs.
  void Run(std::vector<json> containers, const std::string& policy, json extra_spec = json::object(),
           std::vector<json> init_containers = {}, decltype(PlanInputs::lookup) lookup = nullptr) {
    json pod = {{"metadata", {{"name", "p"}, {"namespace", "ml"}, {"uid", "uid-1"}}},
                {"spec", {{"restartPolicy", policy}, {"containers", containers}}}};
    if (!init_containers.empty()) pod["spec"]["initContainers"] = init_containers;
    pod["spec"].update(extra_spec);
    PlanInputs inputs;
    inputs.pod_ip = "127.0.0.1";
    inputs.base_env = {"PATH=/usr/bin:/bin"};
    inputs.lookup = std::move(lookup);
    StatusOr<PodPlan> plan = BuildPodPlan(pod, inputs);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    RuntimeOptions options;
    options.pod_dir = dir_;
    options.pod_ip = "127.0.0.1";
    options.hosts_text = "127.0.0.1 localhost\n";
    options.restart_backoff = 100ms;
    options.max_restart_backoff = 200ms;
    runtime_ = std::make_unique<PodRuntime>(std::move(*plan), options);
    runtime_->Start();
  }
  static json Shell(const std::string& name, const std::string& script) {
    return {{"name", name}, {"image", "shell"}, {"command", {"sh", "-c", script}}};
  }

  // Waits until `predicate` holds for the observed pod.
  bool WaitFor(const std::function<bool(const PodObserved&)>& predicate, std::chrono::seconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (predicate(runtime_->Observe())) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  bool WaitForPhase(const std::string& phase, std::chrono::seconds limit = 10s) {
    bool reached = WaitFor([&](const PodObserved& o) { return PodPhase(o, runtime_->plan().restart_policy) == phase; }, limit);
    if (!reached) {
      ADD_FAILURE() << "phase " << PodPhase(runtime_->Observe(), runtime_->plan().restart_policy)
                    << ", wanted " << phase;
    }
    return reached;
  }

  std::filesystem::path dir_;
  std::unique_ptr<PodRuntime> runtime_;
};

TEST_F(PodRuntimeTest, SucceedsWithExitCodeAndTerminationMessage) {
  Run({Shell("main", "echo 'accuracy=0.98' > /dev/termination-log; exit 0")}, "Never");
  ASSERT_TRUE(WaitForPhase("Succeeded"));
  ContainerObserved c = runtime_->Observe().containers[0];
  EXPECT_EQ(c.state.kind, ContainerState::Kind::kTerminated);
  EXPECT_EQ(c.state.exit_code, 0);
  EXPECT_EQ(c.state.reason, "Completed");
  EXPECT_EQ(c.state.message, "accuracy=0.98\n");
  EXPECT_EQ(c.restart_count, 0);
  // A finished pod idles until it is deleted, and then finishes at once.
  runtime_->Terminate(std::chrono::seconds(30));
  EXPECT_TRUE(WaitFor([this](const PodObserved&) { return runtime_->Finished(); }, 2s));
  EXPECT_EQ(PodPhase(runtime_->Observe(), RestartPolicy::kNever), "Succeeded");
}

TEST_F(PodRuntimeTest, FailsWithCustomTerminationPathAndLogFallback) {
  json custom = Shell("custom", "echo custom-reason > /tmp/nodeagent-runtime-msg; echo \"$MLSCALE_TERMINATION_LOG\"; exit 4");
  custom["terminationMessagePath"] = "/tmp/nodeagent-runtime-msg";
  json fallback = Shell("fallback", "echo line1; echo last words; exit 5");
  fallback["terminationMessagePolicy"] = "FallbackToLogsOnError";
  Run({custom, fallback}, "Never");
  ASSERT_TRUE(WaitForPhase("Failed"));
  PodObserved o = runtime_->Observe();
  EXPECT_EQ(o.containers[0].state.exit_code, 4);
  EXPECT_EQ(o.containers[0].state.reason, "Error");
  EXPECT_EQ(o.containers[0].state.message, "custom-reason\n");
  EXPECT_EQ(o.containers[1].state.exit_code, 5);
  EXPECT_EQ(o.containers[1].state.message, "line1\nlast words\n");
}

TEST_F(PodRuntimeTest, OnFailureRestartsUntilSuccessCountingRestarts) {
  // Fails twice, then succeeds: a counter file survives restarts in the pod folder.
  Run({Shell("flaky", "n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; [ $n -ge 2 ]")},
      "OnFailure");
  ASSERT_TRUE(WaitForPhase("Succeeded"));
  ContainerObserved c = runtime_->Observe().containers[0];
  EXPECT_EQ(c.restart_count, 2);
  ASSERT_TRUE(c.last_state.has_value());
  EXPECT_EQ(c.last_state->exit_code, 1);
}

TEST_F(PodRuntimeTest, AlwaysRestartsEvenAfterSuccess) {
  Run({Shell("loop", "exit 0")}, "Always");
  EXPECT_TRUE(WaitFor([](const PodObserved& o) { return o.containers[0].restart_count >= 2; }));
  EXPECT_EQ(PodPhase(runtime_->Observe(), RestartPolicy::kAlways), "Running");
}

TEST_F(PodRuntimeTest, InitContainersRunFirstInOrder) {
  Run({Shell("main", "cat order > /dev/termination-log")}, "Never", json::object(),
      {Shell("first", "echo first >> order"), Shell("second", "echo second >> order")});
  ASSERT_TRUE(WaitForPhase("Succeeded"));
  PodObserved o = runtime_->Observe();
  EXPECT_TRUE(o.initialized);
  EXPECT_EQ(o.containers[0].state.message, "first\nsecond\n");
}

TEST_F(PodRuntimeTest, VolumesAreSharedInsideThePodAndPrivateToIt) {
  json writer = Shell("writer", "echo step-100 > /tmp/nodeagent-ckpt/latest");
  writer["volumeMounts"] = {{{"name", "ckpt"}, {"mountPath", "/tmp/nodeagent-ckpt"}}};
  json reader = Shell("reader", "cat /tmp/nodeagent-ckpt/latest /tmp/nodeagent-conf/lr > /dev/termination-log");
  reader["volumeMounts"] = {{{"name", "ckpt"}, {"mountPath", "/tmp/nodeagent-ckpt"}},
                            {{"name", "conf"}, {"mountPath", "/tmp/nodeagent-conf"}}};
  json volumes = {{{"name", "ckpt"}, {"emptyDir", json::object()}},
                  {{"name", "conf"}, {"configMap", {{"name", "settings"}}}}};
  Run({reader}, "Never", {{"volumes", volumes}}, {writer},
      [](const std::string&, const std::string&, const std::string&) -> StatusOr<std::map<std::string, std::string>> {
        return std::map<std::string, std::string>{{"lr", "0.01"}};
      });
  ASSERT_TRUE(WaitForPhase("Succeeded"));
  EXPECT_EQ(runtime_->Observe().containers[0].state.message, "step-100\n0.01");
  // The host's folder is only a mount point: the data lives in the pod's volume.
  EXPECT_FALSE(std::filesystem::exists("/tmp/nodeagent-ckpt/latest"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "volumes/ckpt/latest"));
  std::filesystem::remove_all("/tmp/nodeagent-ckpt");
  std::filesystem::remove_all("/tmp/nodeagent-conf");
}

TEST_F(PodRuntimeTest, FailedInitContainerFailsANeverPod) {
  Run({Shell("main", "exit 0")}, "Never", json::object(), {Shell("init", "exit 9")});
  ASSERT_TRUE(WaitForPhase("Failed"));
  PodObserved o = runtime_->Observe();
  EXPECT_FALSE(o.initialized);
  EXPECT_EQ(o.containers[0].state.kind, ContainerState::Kind::kWaiting);
}

TEST_F(PodRuntimeTest, TerminateSendsSigtermThenSigkillAfterTheGracePeriod) {
  // "polite" exits on SIGTERM with a message; "stubborn" ignores it and needs SIGKILL.
  Run({Shell("polite", "trap 'echo got-term > /dev/termination-log; exit 0' TERM; while :; do sleep 0.05; done"),
       Shell("stubborn", "trap '' TERM; while :; do sleep 0.05; done")},
      "Always");
  ASSERT_TRUE(WaitForPhase("Running"));
  std::this_thread::sleep_for(200ms);  // let the shells install their traps
  auto started = std::chrono::steady_clock::now();
  runtime_->Terminate(1500ms);
  ASSERT_TRUE(WaitFor([](const PodObserved& o) {
    return o.containers[0].state.kind == ContainerState::Kind::kTerminated;
  }));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1000ms);  // SIGTERM, not SIGKILL
  EXPECT_EQ(runtime_->Observe().containers[0].state.message, "got-term\n");
  EXPECT_EQ(runtime_->Observe().containers[0].state.exit_code, 0);
  EXPECT_FALSE(runtime_->Finished());  // the stubborn one still runs inside its grace period
  ASSERT_TRUE(WaitFor([this](const PodObserved&) { return runtime_->Finished(); }));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1500ms);
  ContainerObserved stubborn = runtime_->Observe().containers[1];
  EXPECT_EQ(stubborn.state.signal, SIGKILL);
  EXPECT_EQ(stubborn.state.exit_code, 137);
  EXPECT_EQ(PodPhase(runtime_->Observe(), RestartPolicy::kAlways), "Failed");
}

TEST_F(PodRuntimeTest, ExecReadinessProbeFlipsReady) {
  json c = Shell("srv", "sleep 60");
  c["readinessProbe"] = {{"exec", {{"command", {"test", "-f", dir_.string() + "/ready"}}}},
                         {"periodSeconds", 1}, {"failureThreshold", 1}};
  Run({c}, "Never");
  ASSERT_TRUE(WaitForPhase("Running"));
  std::this_thread::sleep_for(1200ms);
  EXPECT_FALSE(runtime_->Observe().containers[0].ready);
  std::ofstream(dir_ / "ready");
  EXPECT_TRUE(WaitFor([](const PodObserved& o) { return o.containers[0].ready; }, 5s));
  std::filesystem::remove(dir_ / "ready");
  EXPECT_TRUE(WaitFor([](const PodObserved& o) { return !o.containers[0].ready; }, 5s));
}

// A listening socket on 127.0.0.1; returns its port.
int Listen(int& fd) {
  fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  listen(fd, 8);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

TEST_F(PodRuntimeTest, TcpAndHttpProbes) {
  int fd = -1;
  int port = Listen(fd);
  // A one-shot HTTP server answering 200 on the listening socket, from a thread.
  std::jthread server([fd] {
    int client = accept(fd, nullptr, nullptr);
    char buffer[1024];
    ssize_t ignored = read(client, buffer, sizeof buffer);
    std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    ignored = write(client, reply.data(), reply.size());
    (void)ignored;
    close(client);
  });
  ProbePlan http;
  http.kind = ProbePlan::Kind::kHttpGet;
  http.port = port;
  http.path = "/healthz";
  EXPECT_TRUE(RunProbe(http, "127.0.0.1", {}).success);
  server.join();
  ProbePlan tcp;
  tcp.kind = ProbePlan::Kind::kTcpSocket;
  tcp.port = port;
  EXPECT_TRUE(RunProbe(tcp, "127.0.0.1", {}).success);
  close(fd);
  ProbeResult refused = RunProbe(tcp, "127.0.0.1", {});
  EXPECT_FALSE(refused.success);
  EXPECT_NE(refused.message.find("refused"), std::string::npos) << refused.message;
  http.port = port;
  EXPECT_FALSE(RunProbe(http, "127.0.0.1", {}).success);
}

TEST_F(PodRuntimeTest, LivenessFailureRestartsTheContainer) {
  json c = Shell("srv", "sleep 60");
  c["livenessProbe"] = {{"exec", {{"command", {"false"}}}}, {"periodSeconds", 1}, {"failureThreshold", 1}};
  Run({c}, "Always", {{"terminationGracePeriodSeconds", 1}});
  EXPECT_TRUE(WaitFor([](const PodObserved& o) { return o.containers[0].restart_count >= 1; }, 8s));
  ASSERT_TRUE(runtime_->Observe().containers[0].last_state.has_value());
  EXPECT_EQ(runtime_->Observe().containers[0].last_state->exit_code, 143);
}

}  // namespace
}  // namespace mlscale::nodeagent
