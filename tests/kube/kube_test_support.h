// Shared helpers for the operator/kube tests: an admin client for the shared test
// control plane, a namespace per test, a control plane of a test's own (for tests that
// restart components), child processes and a plain HTTP GET.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "cluster_environment.h"
#include "mlscale/kube/client.h"
#include "wait_for.h"

namespace mlscale::testing {
class LoopbackListener;
}  // namespace mlscale::testing

namespace mlscale::kube::testing {

// A client with the given kubeconfig (default: the shared cluster's admin); fails the
// test and returns nullptr when there is none. `qps` high so tests are not slowed.
std::unique_ptr<Client> AdminClient(double qps = 1000, int burst = 1000, const std::string& kubeconfig = "");

// A fresh namespace "<prefix>-<random>" created on construction and deleted (in the
// background) on destruction.
class ScopedNamespace {
 public:
  ScopedNamespace(Client& client, const std::string& prefix);
  ~ScopedNamespace();
  ScopedNamespace(const ScopedNamespace&) = delete;
  ScopedNamespace& operator=(const ScopedNamespace&) = delete;
  const std::string& name() const { return name_; }

 private:
  Client& client_;
  std::string name_;
};

// A ConfigMap named `name` with data {key: value}.
Object ConfigMap(const std::string& namespace_name, const std::string& name, const std::string& value = "v");

// The custom resource "widgets.kubetest.mlscale.io/v1" (namespaced, kind Widget, with
// status and scale subresources; status keeps any field), created once and served.
StatusOr<Resource> EnsureWidgetResource(Client& client);

// A control plane of the test's own (tests/cluster/testcluster.py up/down), for tests
// that restart the API server or compact etcd and so must not disturb other tests.
class OwnCluster {
 public:
  static StatusOr<std::unique_ptr<OwnCluster>> Up();
  ~OwnCluster();  // down
  const std::string& kubeconfig() const { return kubeconfig_; }
  // "restart", "stop" or "start" of a component (e.g. "kube-apiserver").
  Status Control(const std::string& verb, const std::string& component);
  // Compacts etcd at its current revision: older resourceVersions are gone (410).
  Status Compact();

 private:
  explicit OwnCluster(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  std::string kubeconfig_;
};

// A child process whose stdout+stderr lines the test can read; SIGKILLed and reaped on
// destruction if still running.
class ChildProcess {
 public:
  static StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv);
  ~ChildProcess();
  // The next line that starts with `prefix` (without the prefix), waiting up to `timeout`.
  StatusOr<std::string> WaitForLine(const std::string& prefix, std::chrono::milliseconds timeout);
  void Signal(int signal);
  // Waits for exit; returns the exit code (128+N when killed by signal N), -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }

 private:
  ChildProcess(pid_t pid, int output_fd) : pid_(pid), output_fd_(output_fd) {}
  pid_t pid_;
  int output_fd_;
  std::string buffered_;
  bool exited_ = false;
  int exit_code_ = -1;
};

struct HttpResult {
  int status = 0;  // 0: no answer
  std::string body;
};
// GET http://127.0.0.1:<port><path>, bounded by `timeout`.
HttpResult HttpGet(int port, const std::string& path, std::chrono::milliseconds timeout = std::chrono::seconds(2));

// A fault injector: a TCP proxy on 127.0.0.1 in front of `upstream_port` (the API
// server) that forwards bytes unchanged (TLS passes through) and, once SetDelay is
// called, holds every chunk it reads for that long before passing it on, in both
// directions, on open and new connections alike. For a client whose traffic must be
// slow while everybody else's is not (a real network cannot be slowed per process here).
class DelayingProxy {
 public:
  static StatusOr<std::unique_ptr<DelayingProxy>> Start(int upstream_port);
  ~DelayingProxy();  // closes everything and joins
  DelayingProxy(const DelayingProxy&) = delete;
  DelayingProxy& operator=(const DelayingProxy&) = delete;
  int port() const;
  void SetDelay(std::chrono::milliseconds delay) { delay_ms_ = delay.count(); }

 private:
  DelayingProxy(std::unique_ptr<mlscale::testing::LoopbackListener> listener, int upstream_port);
  void Accept(std::stop_token stop);
  void Pump(int from, int to, std::stop_token stop);

  std::unique_ptr<mlscale::testing::LoopbackListener> listener_;
  int upstream_port_;
  std::atomic<int64_t> delay_ms_{0};
  std::mutex mutex_;
  std::vector<int> sockets_;
  std::vector<std::jthread> pumps_;
  std::jthread acceptor_;
};

// Writes a copy of `kubeconfig` whose server is https://127.0.0.1:<port>; returns its path.
StatusOr<std::string> KubeconfigThrough(const std::string& kubeconfig, int port, const std::string& out_path);

}  // namespace mlscale::kube::testing
