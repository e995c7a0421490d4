// Benchmarks of mlscale-operator's TrainingJob controller against a real control plane
// (run by run.sh, which starts one and sets MLSCALE_TEST_CLUSTER_DIR):
//   1. kubectl-apply-to-all-pods-created for a 64-worker job, beside a bare client that
//      creates the same objects (token Secret, Service, 64 pods from the same builders)
//      with the same client and the same QPS/burst: the ceiling. Completion is when a
//      watch has seen all 64 pods, for both. Alternating, 3 rounds each.
//   2. API requests per job: the operator's own request counter over one 4-worker job's
//      life (apply to Succeeded, pods run on a test node agent).
//   3. The operator's RSS idle and with 100 running jobs (1 worker each, `sleep`).
// Prints markdown.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bare_client.h"
#include "cluster_environment.h"
#include "mlscale/kube/client.h"
#include "mlscale/kube/config.h"
#include "mlscale/kube/watch.h"
#include "node_agent_process.h"
#include "operator_process.h"

namespace {

using namespace mlscale;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr double kQps = 50;  // the operator's default --kube-api-qps / burst
constexpr int kBurst = 100;

[[noreturn]] void Die(const std::string& what, const Status& status) {
  std::fprintf(stderr, "trainingjob_bench: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::exit(1);
}

kube::Resource TrainingJobs() { return {"mlscale.io", "v1alpha1", "trainingjobs", true, "TrainingJob"}; }

std::unique_ptr<kube::Client> MakeClient(const std::string& kubeconfig, double qps, int burst) {
  StatusOr<kube::ClientConfig> config = kube::LoadKubeconfig(kubeconfig);
  if (!config.ok()) Die("kubeconfig", config.status());
  config->qps = qps;
  config->burst = burst;
  StatusOr<std::unique_ptr<kube::Client>> client = kube::Client::Create(*config);
  if (!client.ok()) Die("client", client.status());
  return std::move(*client);
}

// Counts the distinct pods a watch has seen in a namespace.
class PodCounter {
 public:
  PodCounter(kube::Client& client, const std::string& ns) {
    kube::Watcher::Handlers handlers;
    handlers.on_list = [this](std::vector<json>&& items, const std::string&) {
      for (const json& item : items) Seen(item);
    };
    handlers.on_event = [this](kube::WatchEvent&& event) { Seen(event.object); };
    watcher_ = std::make_unique<kube::Watcher>(client, kube::resources::Pods(), ns, kube::WatcherOptions{}, handlers);
    watcher_->Start();
    while (!watcher_->HasSynced()) std::this_thread::sleep_for(10ms);
  }
  ~PodCounter() { watcher_->Stop(); }
  // Waits until `count` pods were seen; returns when (steady clock).
  Clock::time_point WaitFor(size_t count) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 300s, [&] { return names_.size() >= count; });
    return last_;
  }

 private:
  void Seen(const json& pod) {
    std::lock_guard lock(mutex_);
    if (names_.insert(kube::NameOf(pod)).second) last_ = Clock::now();
    changed_.notify_all();
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  std::set<std::string> names_;
  Clock::time_point last_;
  std::unique_ptr<kube::Watcher> watcher_;
};

void CreateNamespace(kube::Client& client, const std::string& ns) {
  StatusOr<json> created = client.Create(kube::resources::Namespaces(), "", {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                                                             {"metadata", {{"name", ns}}}});
  if (!created.ok()) Die("namespace " + ns, created.status());
  for (int i = 0; i < 100; ++i) {
    if (client.Get(kube::resources::ServiceAccounts(), ns, "default").ok()) return;
    std::this_thread::sleep_for(100ms);
  }
}

json WideJob(const std::string& name, const std::string& ns, int replicas, const std::string& script) {
  return {{"apiVersion", "mlscale.io/v1alpha1"},
          {"kind", "TrainingJob"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec",
           {{"replicas", replicas},
            {"container", {{"image", "busybox:bench"}, {"command", {"/bin/sh", "-c", script}}}},
            {"gang", {{"timeoutSeconds", 3600}}}}}};
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

double RssMiB(pid_t pid) {
  std::istringstream status(ReadFile("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1;
}

int HealthPort(const testing::OperatorProcess& process) {
  std::smatch match;
  const std::string log = ReadFile(process.log_file());
  static const std::regex port("on port ([0-9]+)");
  if (std::regex_search(log, match, port)) return std::stoi(match[1]);
  return 0;
}

// The operator's API requests by verb, from its /metrics.
std::map<std::string, double> RequestsByVerb(int port) {
  testing::CommandResult metrics = testing::RunCommand({"curl", "-s", "http://127.0.0.1:" + std::to_string(port) + "/metrics"});
  std::map<std::string, double> by_verb;
  static const std::regex line("mlscale_kube_api_requests_total\\{([^}]*)\\} ([0-9.e+]+)");
  static const std::regex verb("verb=\"([a-z]+)\"");
  for (std::sregex_iterator it(metrics.output.begin(), metrics.output.end(), line), end; it != end; ++it) {
    const std::string labels = (*it)[1];
    std::smatch v;
    if (std::regex_search(labels, v, verb)) by_verb[v[1]] += std::stod((*it)[2]);
  }
  return by_verb;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main() {
  StatusOr<testing::TestCluster> cluster = testing::CurrentCluster();
  if (!cluster.ok()) Die("cluster", cluster.status());
  const std::string kubeconfig = cluster->admin_kubeconfig;
  std::unique_ptr<kube::Client> admin = MakeClient(kubeconfig, 1000, 1000);
  const std::string dir = cluster->dir + "/bench";
  std::filesystem::create_directories(dir);
  testing::CommandResult crd = testing::Kubectl(kubeconfig, {"apply", "--server-side", "-f", MLSCALE_CRD_FILE});
  if (crd.exit_code != 0) Die("CRD", Internal(crd.output));
  testing::Kubectl(kubeconfig, {"wait", "--for=condition=Established", "crd/trainingjobs.mlscale.io"});

  // 1. 64 workers: operator vs bare client, alternating.
  constexpr int kWorkers = 64;
  std::vector<double> operator_seconds, bare_seconds;
  for (int round = 0; round < 3; ++round) {
    {
      const std::string ns = "bench-op-" + std::to_string(round);
      CreateNamespace(*admin, ns);
      StatusOr<std::unique_ptr<testing::OperatorProcess>> process =
          testing::OperatorProcess::Start({"--namespace", ns}, dir + "/operator-" + ns + ".log");
      if (!process.ok()) Die("operator", process.status());
      PodCounter pods(*admin, ns);
      const Clock::time_point start = Clock::now();
      StatusOr<json> job = admin->Create(TrainingJobs(), ns, WideJob("wide", ns, kWorkers, "sleep 600"));
      if (!job.ok()) Die("job", job.status());
      operator_seconds.push_back(std::chrono::duration<double>(pods.WaitFor(kWorkers) - start).count());
      (*process).reset();
      // Unbound pods go at once; no node may ever run them (section 2 starts one).
      testing::Kubectl(kubeconfig, {"delete", "namespace", ns, "--timeout=120s"});
    }
    {
      const std::string ns = "bench-bare-" + std::to_string(round);
      CreateNamespace(*admin, ns);
      std::unique_ptr<kube::Client> bare = MakeClient(kubeconfig, kQps, kBurst);
      json wide = WideJob("wide", ns, kWorkers, "sleep 600");
      PodCounter pods(*admin, ns);
      const Clock::time_point start = Clock::now();
      StatusOr<std::vector<json>> objects = bench::BareJobObjects(wide);
      if (!objects.ok()) Die("bare objects", objects.status());
      for (const json& object : *objects) {
        if (Status created = bench::CreateBareObject(*bare, ns, object); !created.ok()) Die("bare create", created);
      }
      bare_seconds.push_back(std::chrono::duration<double>(pods.WaitFor(kWorkers) - start).count());
      testing::Kubectl(kubeconfig, {"delete", "namespace", ns, "--timeout=120s"});
    }
  }
  std::printf("## apply to all pods created, %d-worker job\n\n", kWorkers);
  std::printf("Client-side limit %.0f QPS, burst %d for both; completion seen by a watch; 3 rounds, alternating.\n\n",
              kQps, kBurst);
  std::printf("| | median s | best s | rounds |\n|---|---|---|---|\n");
  auto row = [](const char* what, const std::vector<double>& values) {
    std::string all;
    for (double v : values) all += (all.empty() ? "" : ", ") + std::to_string(v).substr(0, 5);
    std::printf("| %s | %.3f | %.3f | %s |\n", what, Median(values), *std::min_element(values.begin(), values.end()),
                all.c_str());
  };
  row("mlscale-operator (kubectl apply -> 64 pods)", operator_seconds);
  row("bare client, same objects (ceiling)", bare_seconds);
  std::printf("\nRatio operator/ceiling (medians): %.2f\n\n", Median(operator_seconds) / Median(bare_seconds));

  // 2 and 3 share one operator and one node agent.
  const std::string ns = "bench-life";
  CreateNamespace(*admin, ns);
  testing::NodeAgentOptions node_options;
  node_options.name = testing::UniqueNodeName("bench");
  node_options.exclusive = false;
  node_options.capacity = {{"cpu", "256"}, {"memory", "256Gi"}, {"pods", "250"}};
  StatusOr<std::unique_ptr<testing::NodeAgentProcess>> node = testing::StartNodeAgent(node_options);
  if (!node.ok()) Die("node agent", node.status());
  StatusOr<std::unique_ptr<testing::OperatorProcess>> process =
      testing::OperatorProcess::Start({"--namespace", ns}, dir + "/operator-life.log");
  if (!process.ok()) Die("operator", process.status());
  std::this_thread::sleep_for(3s);
  const double idle_rss = RssMiB((*process)->pid());
  const int port = HealthPort(**process);
  const std::map<std::string, double> before = RequestsByVerb(port);
  if (!admin->Create(TrainingJobs(), ns, WideJob("life", ns, 4, "sleep 2")).ok()) Die("job", Internal("create"));
  testing::CommandResult waited = testing::Kubectl(
      kubeconfig, {"-n", ns, "wait", "--for=condition=Succeeded", "--timeout=120s", "trainingjob/life"});
  if (waited.exit_code != 0) Die("life job", Internal(waited.output));
  std::this_thread::sleep_for(3s);
  const std::map<std::string, double> after = RequestsByVerb(port);
  std::printf("## API requests per job (4 workers, apply to Succeeded)\n\n| verb | requests |\n|---|---|\n");
  double total = 0;
  for (const auto& [verb, count] : after) {
    const double delta = count - (before.contains(verb) ? before.at(verb) : 0.0);
    if (delta <= 0) continue;
    total += delta;
    std::printf("| %s | %.0f |\n", verb.c_str(), delta);
  }
  std::printf("| total | %.0f |\n\n", total);
  std::printf("(The watches the operator holds open are shared by all jobs and not counted per job.)\n\n");

  for (int i = 0; i < 100; ++i) {
    StatusOr<json> job = admin->Create(TrainingJobs(), ns, WideJob("idle-" + std::to_string(i), ns, 1, "sleep 600"));
    if (!job.ok()) Die("job", job.status());
  }
  const Clock::time_point deadline = Clock::now() + 300s;
  int running = 0;
  while (Clock::now() < deadline) {
    StatusOr<kube::ObjectList> jobs = admin->List(TrainingJobs(), ns);
    running = 0;
    if (jobs.ok()) {
      for (const json& job : jobs->items) {
        const bool has_status = job.contains("status") && job["status"].is_object();
        running += has_status && job["status"].value("state", "") == "Running" ? 1 : 0;
      }
    }
    if (running >= 100) break;
    std::this_thread::sleep_for(1s);
  }
  std::this_thread::sleep_for(5s);
  const double busy_rss = RssMiB((*process)->pid());
  std::printf("## operator RSS\n\n| | MiB |\n|---|---|\n| idle (caches synced, no jobs) | %.1f |\n", idle_rss);
  std::printf("| with %d running jobs (100 pods) | %.1f |\n", running, busy_rss);
  testing::Kubectl(kubeconfig, {"delete", "namespace", ns, "--wait=false"});
  return 0;
}
