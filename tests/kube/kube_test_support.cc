#include "kube_test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <random>
#include <thread>

#include "command.h"
#include "loopback_listener.h"

extern char** environ;

namespace mlscale::kube::testing {
namespace {

std::string RandomSuffix() {
  static std::mt19937 random(std::random_device{}());
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  return std::to_string(random() % 1000000);
}

}  // namespace

std::unique_ptr<Client> AdminClient(double qps, int burst, const std::string& kubeconfig) {
  std::string path = kubeconfig;
  if (path.empty()) {
    StatusOr<mlscale::testing::TestCluster> cluster = mlscale::testing::CurrentCluster();
    if (!cluster.ok()) {
      ADD_FAILURE() << cluster.status().ToString();
      return nullptr;
    }
    path = cluster->admin_kubeconfig;
  }
  StatusOr<ClientConfig> config = LoadKubeconfig(path);
  if (!config.ok()) {
    ADD_FAILURE() << config.status().ToString();
    return nullptr;
  }
  config->qps = qps;
  config->burst = burst;
  StatusOr<std::unique_ptr<Client>> client = Client::Create(*config);
  if (!client.ok()) {
    ADD_FAILURE() << client.status().ToString();
    return nullptr;
  }
  return std::move(*client);
}

ScopedNamespace::ScopedNamespace(Client& client, const std::string& prefix) : client_(client) {
  name_ = prefix + "-" + RandomSuffix();
  StatusOr<Object> created =
      client_.Create(resources::Namespaces(), "", {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                                   {"metadata", {{"name", name_}}}});
  EXPECT_TRUE(created.ok()) << created.status().ToString();
}

ScopedNamespace::~ScopedNamespace() {
  Status deleted = client_.Delete(resources::Namespaces(), "", name_);
  EXPECT_TRUE(deleted.ok()) << deleted.ToString();
}

Object ConfigMap(const std::string& namespace_name, const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", namespace_name}}},
          {"data", {{"key", value}}}};
}

StatusOr<Resource> EnsureWidgetResource(Client& client) {
  const Resource crds{"apiextensions.k8s.io", "v1", "customresourcedefinitions", false, "CustomResourceDefinition"};
  Object crd = Object::parse(R"({
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.kubetest.mlscale.io"},
    "spec": {"group": "kubetest.mlscale.io", "scope": "Namespaced",
      "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
      "versions": [{"name": "v1", "served": true, "storage": true,
        "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                 "statusReplicasPath": ".status.replicas"}},
        "schema": {"openAPIV3Schema": {"type": "object", "properties": {
          "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
          "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}})");
  StatusOr<Object> created = client.Create(crds, "", crd);
  if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists) return created.status();
  const Resource widgets{"kubetest.mlscale.io", "v1", "widgets", true, "Widget"};
  // Served once the CRD is established: listing stops answering NotFound.
  for (int i = 0; i < 200; ++i) {
    StatusOr<ObjectList> list = client.List(widgets, "default");
    if (list.ok()) return widgets;
    if (list.status().code() != StatusCode::kNotFound) return list.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return DeadlineExceeded("the Widget resource was not served within 10 s");
}

StatusOr<std::unique_ptr<OwnCluster>> OwnCluster::Up() {
  std::string dir = (std::filesystem::temp_directory_path() / ("mlscale-kube-cluster-" + RandomSuffix())).string();
  std::unique_ptr<OwnCluster> cluster(new OwnCluster(dir));
  mlscale::testing::CommandResult up =
      mlscale::testing::RunCommand({"python3", MLSCALE_TESTCLUSTER_TOOL, "up", "--dir", dir});
  if (up.exit_code != 0) return Internal("testcluster up failed: " + up.output);
  cluster->kubeconfig_ = dir + "/admin.kubeconfig";
  return cluster;
}

OwnCluster::~OwnCluster() {
  mlscale::testing::RunCommand({"python3", MLSCALE_TESTCLUSTER_TOOL, "down", "--dir", dir_});
  std::filesystem::remove_all(dir_);
}

Status OwnCluster::Control(const std::string& verb, const std::string& component) {
  mlscale::testing::CommandResult result = mlscale::testing::RunCommand(
      {"python3", MLSCALE_TESTCLUSTER_TOOL, verb, "--dir", dir_, "--component", component});
  if (result.exit_code != 0) return Internal(verb + " " + component + " failed: " + result.output);
  return Status::Ok();
}

Status OwnCluster::Compact() {
  mlscale::testing::CommandResult result =
      mlscale::testing::RunCommand({"python3", MLSCALE_TESTCLUSTER_TOOL, "compact", "--dir", dir_});
  if (result.exit_code != 0) return Internal("compact failed: " + result.output);
  return Status::Ok();
}

StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(const std::vector<std::string>& argv) {
  int output[2];
  if (argv.empty() || pipe2(output, O_CLOEXEC) != 0) return Internal("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, output[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, output[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int error = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(output[1]);
  if (error != 0) {
    close(output[0]);
    return Internal("cannot start " + argv[0]);
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, output[0]));
}

ChildProcess::~ChildProcess() {
  if (!exited_) {
    kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
  close(output_fd_);
}

StatusOr<std::string> ChildProcess::WaitForLine(const std::string& prefix, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    size_t newline;
    while ((newline = buffered_.find('\n')) != std::string::npos) {
      std::string line = buffered_.substr(0, newline);
      buffered_.erase(0, newline + 1);
      if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return DeadlineExceeded("no line starting with '" + prefix + "'");
    pollfd fd = {output_fd_, POLLIN, 0};
    if (poll(&fd, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[4096];
    ssize_t n = read(output_fd_, chunk, sizeof chunk);
    if (n <= 0) return Unavailable("the process closed its output before '" + prefix + "'");
    buffered_.append(chunk, static_cast<size_t>(n));
  }
}

void ChildProcess::Signal(int signal) {
  if (!exited_) kill(pid_, signal);
}

int ChildProcess::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exited_) {
    int status = 0;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exited_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_code_;
}

HttpResult HttpGet(int port, const std::string& path, std::chrono::milliseconds timeout) {
  HttpResult result;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return result;
  timeval limit{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return result;
  }
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
    close(fd);
    return result;
  }
  std::string response;
  char chunk[4096];
  ssize_t n;
  while ((n = recv(fd, chunk, sizeof chunk, 0)) > 0) response.append(chunk, static_cast<size_t>(n));
  close(fd);
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return result;
  result.status = std::atoi(response.c_str() + 9);
  size_t body = response.find("\r\n\r\n");
  if (body != std::string::npos) result.body = response.substr(body + 4);
  return result;
}

StatusOr<std::unique_ptr<DelayingProxy>> DelayingProxy::Start(int upstream_port) {
  auto listener = std::make_unique<mlscale::testing::LoopbackListener>(64);
  if (!listener->ok()) return Unavailable("proxy: cannot listen on 127.0.0.1");
  return std::unique_ptr<DelayingProxy>(new DelayingProxy(std::move(listener), upstream_port));
}

DelayingProxy::DelayingProxy(std::unique_ptr<mlscale::testing::LoopbackListener> listener, int upstream_port)
    : listener_(std::move(listener)), upstream_port_(upstream_port) {
  acceptor_ = std::jthread([this](std::stop_token stop) { Accept(stop); });
}

int DelayingProxy::port() const { return listener_->port(); }

DelayingProxy::~DelayingProxy() {
  acceptor_.request_stop();
  acceptor_.join();
  std::lock_guard lock(mutex_);
  for (std::jthread& pump : pumps_) pump.request_stop();
  for (int fd : sockets_) shutdown(fd, SHUT_RDWR);
  pumps_.clear();  // joins
  for (int fd : sockets_) close(fd);
}

void DelayingProxy::Accept(std::stop_token stop) {
  while (!stop.stop_requested()) {
    pollfd ready = {listener_->fd(), POLLIN, 0};
    if (poll(&ready, 1, 100) <= 0) continue;
    int client = accept4(listener_->fd(), nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    int upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(upstream_port_));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (upstream < 0 || connect(upstream, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      close(client);
      if (upstream >= 0) close(upstream);
      continue;
    }
    std::lock_guard lock(mutex_);
    sockets_.push_back(client);
    sockets_.push_back(upstream);
    pumps_.emplace_back([this, client, upstream](std::stop_token s) { Pump(client, upstream, s); });
    pumps_.emplace_back([this, client, upstream](std::stop_token s) { Pump(upstream, client, s); });
  }
}

void DelayingProxy::Pump(int from, int to, std::stop_token stop) {
  char chunk[16384];
  while (!stop.stop_requested()) {
    pollfd ready = {from, POLLIN, 0};
    if (poll(&ready, 1, 100) <= 0) continue;
    ssize_t n = recv(from, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    // Hold the chunk (interruptibly) before passing it on.
    auto release_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms_.load());
    while (!stop.stop_requested() && std::chrono::steady_clock::now() < release_at) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (send(to, chunk, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
  }
  shutdown(to, SHUT_WR);
}

StatusOr<std::string> KubeconfigThrough(const std::string& kubeconfig, int port, const std::string& out_path) {
  StatusOr<ClientConfig> config = LoadKubeconfig(kubeconfig);
  if (!config.ok()) return config.status();
  std::ifstream in(kubeconfig);
  std::stringstream text;
  text << in.rdbuf();
  std::string yaml = text.str();
  size_t at = yaml.find(config->server);
  if (at == std::string::npos) return NotFound("the server URL is not in " + kubeconfig);
  yaml.replace(at, config->server.size(), "https://127.0.0.1:" + std::to_string(port));
  std::ofstream out(out_path);
  out << yaml;
  if (!out) return Unavailable("cannot write " + out_path);
  return out_path;
}

}  // namespace mlscale::kube::testing
