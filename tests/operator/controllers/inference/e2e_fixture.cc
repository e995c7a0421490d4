#include "e2e_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "mlscale/worker/model_artifact.h"

namespace mlscale::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPodRange = "10.250.0.0/16";

// One keep-alive HTTP/1.1 connection to address:port; answers with a Content-Length body
// (what mlscale-router and mlscale-serve send).
class Connection {
 public:
  Connection(const std::string& address, int port, std::chrono::milliseconds timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, address.c_str(), &to.sin_addr);
    timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
  }
  ~Connection() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool closed() const { return closed_; }

  HttpAnswer Exchange(const std::string& method, const std::string& path, const std::string& body) {
    HttpAnswer answer;
    std::string request = method + " " + path + " HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n";
    if (method == "POST" || !body.empty()) request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    request += "\r\n" + body;
    for (std::string_view rest = request; !rest.empty();) {
      ssize_t sent = ::send(fd_, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (sent <= 0) {
        closed_ = true;
        return answer;
      }
      rest.remove_prefix(static_cast<std::size_t>(sent));
    }
    for (;;) {
      std::size_t end = pending_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::map<std::string, std::string> headers;
        std::size_t line = pending_.find("\r\n");
        const std::string status_line = pending_.substr(0, line);
        while (line < end) {
          std::size_t next = pending_.find("\r\n", line + 2);
          std::string header = pending_.substr(line + 2, next - line - 2);
          std::size_t colon = header.find(':');
          if (colon != std::string::npos) {
            std::string name = header.substr(0, colon);
            for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            std::size_t start = header.find_first_not_of(' ', colon + 1);
            headers[name] = start == std::string::npos ? "" : header.substr(start);
          }
          line = next;
        }
        std::size_t length = headers.contains("content-length") ? std::stoul(headers["content-length"]) : 0;
        if (pending_.size() >= end + 4 + length) {
          answer.status = status_line.size() >= 12 ? std::atoi(status_line.substr(9, 3).c_str()) : 0;
          answer.body = pending_.substr(end + 4, length);
          pending_.erase(0, end + 4 + length);
          if (headers["connection"] == "close") closed_ = true;
          answer.headers = std::move(headers);
          return answer;
        }
      }
      char chunk[16384];
      ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
      if (got <= 0) {
        closed_ = true;
        return HttpAnswer{};
      }
      pending_.append(chunk, static_cast<std::size_t>(got));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string pending_;
};

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

HttpAnswer HttpRequest(const std::string& address, int port, const std::string& method, const std::string& path,
                       const std::string& body, std::chrono::milliseconds timeout) {
  Connection connection(address, port, timeout);
  if (!connection.connected()) return {};
  return connection.Exchange(method, path, body);
}

LoadLoop::LoadLoop(std::string address, int port, std::string path, std::string body, int connections)
    : address_(std::move(address)), path_(std::move(path)), body_(std::move(body)), port_(port) {
  for (int i = 0; i < connections; ++i) threads_.emplace_back([this](std::stop_token stop) { Run(stop); });
}

LoadLoop::~LoadLoop() { Stop(); }

void LoadLoop::Stop() {
  for (auto& thread : threads_) thread.request_stop();
  threads_.clear();  // joins
}

void LoadLoop::Run(std::stop_token stop) {
  std::unique_ptr<Connection> connection;
  while (!stop.stop_requested()) {
    if (!connection || connection->closed()) {
      connection = std::make_unique<Connection>(address_, port_, 120s);
      if (!connection->connected()) {
        // Never reached the router: a failure the client sees (connection refused).
        std::lock_guard lock(mutex_);
        ++failed_;
        ++by_status_[0];
        if (failure_sample_.empty()) failure_sample_ = "connect to " + address_ + " failed";
        connection.reset();
        std::this_thread::sleep_for(10ms);
        continue;
      }
    }
    HttpAnswer answer = connection->Exchange("POST", path_, body_);
    std::lock_guard lock(mutex_);
    ++by_status_[answer.status];
    if (answer.status == 200) {
      ++ok_;
      ++by_revision_[answer.headers["x-mlscale-revision"]];
    } else {
      ++failed_;
      if (failure_sample_.empty()) failure_sample_ = std::to_string(answer.status) + ": " + answer.body.substr(0, 300);
    }
  }
}

std::map<int, std::int64_t> LoadLoop::ByStatus() const {
  std::lock_guard lock(mutex_);
  return by_status_;
}

std::map<std::string, std::int64_t> LoadLoop::ByRevision() const {
  std::lock_guard lock(mutex_);
  return by_revision_;
}

std::string LoadLoop::FailureSample() const {
  std::lock_guard lock(mutex_);
  return failure_sample_;
}

void InferenceE2E::SetUp() {
  if (geteuid() != 0) GTEST_SKIP() << "the node agent needs root (mount namespaces)";
  StatusOr<TestCluster> cluster = CurrentCluster();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  kubeconfig_ = cluster->admin_kubeconfig;
  static int counter = 0;
  namespace_ = "isvc-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  dir_ = cluster->dir + "/inference/" + namespace_;
  std::filesystem::create_directories(dir_ + "/models");

  // The CRDs and the router's ClusterRole (cluster-wide; parallel tests apply the same).
  for (const char* file : {MLSCALE_TJ_CRD_FILE, MLSCALE_ISVC_CRD_FILE, MLSCALE_ROUTER_ROLE_FILE}) {
    CommandResult result;
    for (int attempt = 0; attempt < 5; ++attempt) {
      result = Kubectl({"apply", "--server-side", "--force-conflicts", "-f", file});
      if (result.exit_code == 0) break;
      std::this_thread::sleep_for(500ms);
    }
    ASSERT_EQ(result.exit_code, 0) << file << ": " << result.output;
  }
  CommandResult established = Kubectl({"wait", "--for=condition=Established", "--timeout=30s",
                                       "crd/trainingjobs.mlscale.io", "crd/inferenceservices.mlscale.io"});
  ASSERT_EQ(established.exit_code, 0) << established.output;
  ASSERT_EQ(Kubectl({"create", "namespace", namespace_}).exit_code, 0);

  // The worker image of TrainingJobs: our launcher, the trainer on its PATH.
  const std::string worker = dir_ + "/worker-image";
  std::ofstream(worker) << "#!/bin/sh\nPATH=" << std::filesystem::path(TrainerBinary()).parent_path().string()
                        << ":$PATH exec " << LauncherBinary() << " \"$@\"\n";
  std::filesystem::permissions(worker, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                          std::filesystem::perms::others_read);
  // Pod addresses outside the loopback range, which EndpointSlices refuse (and the router
  // learns pods from EndpointSlices): the host routes 10.250.0.0/16 to itself.
  CommandResult route = RunCommand({"ip", "route", "replace", "local", kPodRange, "dev", "lo", "table", "local"});
  ASSERT_EQ(route.exit_code, 0) << route.output;
  NodeAgentOptions options;
  options.name = UniqueNodeName("isvc");
  options.extra_args = {"--address-range", "10.250.0.1-10.250.255.254"};
  options.images = {{"ghcr.io/mlscale/worker:v1alpha1", worker}};
  options.capacity = {{"cpu", "64"}, {"memory", "64Gi"}};
  StatusOr<std::unique_ptr<NodeAgentProcess>> node = StartNodeAgent(options);
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  node_ = std::move(*node);
  StatusOr<std::unique_ptr<OperatorProcess>> process = OperatorProcess::Start(
      {"--namespace", namespace_, "--controllers", "TrainingJob", "InferenceService", "--serve-command",
       MLSCALE_SERVE_BINARY, "--router-command", MLSCALE_ROUTER_BINARY, "--restart-backoff", "1", "--progress-interval", "0.3"},
      dir_ + "/operator.log");
  ASSERT_TRUE(process.ok()) << process.status().ToString();
  operator_ = std::move(*process);
}

void InferenceE2E::TearDown() {
  if (HasFailure() && operator_) std::cerr << "operator log (tail):\n" << operator_->LogTail(6000) << "\n";
  operator_.reset();
  if (!namespace_.empty()) Kubectl({"delete", "namespace", namespace_, "--wait=false"});
  node_.reset();
}

json InferenceE2E::Service(const std::string& name, json spec) const {
  json placement = json::object();
  node_->PlaceHere(placement);
  json overlay = {{"nodeSelector", placement["nodeSelector"]},
                  {"tolerations", placement["tolerations"]},
                  {"env", {{{"name", "OMP_NUM_THREADS"}, {"value", "1"}}}},
                  {"volumes", {{{"name", "models"}, {"hostPath", {{"path", ModelsDir()}}}}}}};
  if (spec.contains("template")) overlay.merge_patch(spec["template"]);
  spec["template"] = overlay;
  if (!spec.contains("rollout")) spec["rollout"] = {{"drainSeconds", 3}, {"oldRevisionGraceSeconds", 3}};
  return {{"apiVersion", "mlscale.io/v1alpha1"},
          {"kind", "InferenceService"},
          {"metadata", {{"name", name}, {"namespace", namespace_}}},
          {"spec", spec}};
}

std::string InferenceE2E::WriteModel(const std::string& relative, std::uint64_t seed) const {
  worker::ModelArtifact artifact;
  artifact.spec.inputs = 64;
  artifact.spec.hidden = {16};
  artifact.spec.classes = 10;
  artifact.parameters = worker::InitialParameters(worker::ParameterLayout::For(artifact.spec), seed);
  for (int i = 0; i < 64; ++i) {
    artifact.standardization.mean.push_back(0.5f);
    artifact.standardization.stddev.push_back(1.0f);
  }
  artifact.metadata = {{"dataset", "e2e"}, {"seed", seed}};
  Status written = worker::WriteModelArtifact(ModelsDir() + "/" + relative, artifact);
  EXPECT_TRUE(written.ok()) << written.ToString();
  return relative;
}

std::string InferenceE2E::InferBody(int rows, int seed) {
  std::string data;
  for (int r = 0; r < rows; ++r) {
    for (int i = 0; i < 64; ++i) data += (data.empty() ? "" : ",") + std::to_string((r + i + seed) % 17);
  }
  return R"({"inputs":[{"name":"input","shape":[)" + std::to_string(rows) + R"(,64],"datatype":"FP32","data":[)" + data +
         "]}]}";
}

CommandResult InferenceE2E::Kubectl(const std::vector<std::string>& args, const std::string& input) const {
  return testing::Kubectl(kubeconfig_, args, input);
}

void InferenceE2E::Apply(const json& object) const {
  CommandResult result = Kubectl({"-n", namespace_, "apply", "-f", "-"}, object.dump());
  ASSERT_EQ(result.exit_code, 0) << result.output;
}

json InferenceE2E::Get(const std::string& kind, const std::string& name) const {
  CommandResult result = Kubectl({"-n", namespace_, "get", kind, name, "-o", "json"});
  if (result.exit_code != 0) return json();
  return json::parse(result.output, nullptr, false);
}

json InferenceE2E::WaitForCondition(const std::string& name, const std::string& condition, int seconds,
                                    const std::string& status) const {
  CommandResult result = Kubectl({"-n", namespace_, "wait", "isvc/" + name, "--for=condition=" + condition + "=" + status,
                                  "--timeout=" + std::to_string(seconds) + "s"});
  if (result.exit_code != 0) return json();
  return Get("isvc", name);
}

std::vector<json> InferenceE2E::Pods(const std::string& service, const std::string& component) const {
  CommandResult result = Kubectl({"-n", namespace_, "get", "pods", "-l",
                                  "mlscale.io/inference-service=" + service + ",mlscale.io/component=" + component, "-o",
                                  "json"});
  json list = json::parse(result.output, nullptr, false);
  if (!list.is_object()) return {};
  return list.value("items", json::array()).get<std::vector<json>>();
}

namespace {
bool Ready(const json& pod) {
  if (pod.contains("metadata") && pod["metadata"].contains("deletionTimestamp")) return false;
  for (const auto& condition : pod.value("status", json::object()).value("conditions", json::array())) {
    if (condition.value("type", "") == "Ready") return condition.value("status", "") == "True";
  }
  return false;
}
}  // namespace

std::string InferenceE2E::RouterAddress(const std::string& service, int seconds) const {
  std::string address;
  WaitFor(
      [&] {
        for (const json& pod : Pods(service, "router")) {
          if (Ready(pod)) address = pod["status"].value("podIP", "");
        }
        return !address.empty();
      },
      std::chrono::seconds(seconds));
  return address;
}

int InferenceE2E::ReadyServers(const std::string& service) const {
  int ready = 0;
  for (const json& pod : Pods(service, "predictor")) ready += Ready(pod) ? 1 : 0;
  return ready;
}

std::string InferenceE2E::Diagnostics(const std::string& service) const {
  std::string text = "isvc: " + Get("isvc", service).dump(1).substr(0, 6000) + "\n";
  text += Kubectl({"-n", namespace_, "get", "deploy,pods,endpointslices", "-o", "wide"}).output;
  for (const char* component : {"router", "predictor"}) {
    for (const json& pod : Pods(service, component)) {
      const std::string dir = node_->PodDir(namespace_, pod["metadata"].value("name", ""));
      for (const char* container : {"router", "server"}) {
        std::string log = ReadText(dir + "/" + container + ".log");
        if (!log.empty()) {
          text += "--- " + pod["metadata"].value("name", "") + " " + container + ":\n" +
                  log.substr(log.size() > 3000 ? log.size() - 3000 : 0);
        }
      }
    }
  }
  return text;
}

}  // namespace mlscale::testing
