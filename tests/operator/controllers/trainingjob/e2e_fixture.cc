#include "e2e_fixture.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "mlscale/api/manifest.h"
#include "mlscale/api/training_job.h"
#include "mlscale/kube/config.h"

namespace mlscale::testing {
namespace {

using namespace std::chrono_literals;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

EventLog::EventLog(kube::Client& client, const kube::Resource& resource, const std::string& namespace_name) {
  kube::Watcher::Handlers handlers;
  handlers.on_list = [this](std::vector<json>&& items, const std::string&) {
    for (const json& item : items) Record(item);
  };
  handlers.on_event = [this](kube::WatchEvent&& event) { Record(event.object); };
  watcher_ = std::make_unique<kube::Watcher>(client, resource, namespace_name, kube::WatcherOptions{}, handlers);
  watcher_->Start();
  for (int i = 0; i < 200 && !watcher_->HasSynced(); ++i) std::this_thread::sleep_for(25ms);
}

EventLog::~EventLog() { watcher_->Stop(); }

void EventLog::Record(const json& object) {
  std::lock_guard lock(mutex_);
  states_.push_back(object);
  uids_[kube::NameOf(object)].insert(kube::UidOf(object));
}

std::vector<json> EventLog::States() const {
  std::lock_guard lock(mutex_);
  return states_;
}

std::map<std::string, std::set<std::string>> EventLog::UidsByName() const {
  std::lock_guard lock(mutex_);
  return uids_;
}

void TrainingJobE2E::SetUp() {
  if (geteuid() != 0) GTEST_SKIP() << "the node agent needs root (mount namespaces)";
  StatusOr<TestCluster> cluster = CurrentCluster();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  kubeconfig_ = cluster->admin_kubeconfig;
  static int counter = 0;
  namespace_ = "tj-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  dir_ = cluster->dir + "/trainingjob/" + namespace_;
  std::filesystem::create_directories(dir_);
  StatusOr<kube::ClientConfig> config = kube::LoadKubeconfig(kubeconfig_);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  StatusOr<std::unique_ptr<kube::Client>> client = kube::Client::Create(*config);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  client_ = std::move(*client);

  // The CRD (cluster-wide; tests running in parallel apply the same one).
  bool installed = false;
  std::string output;
  for (int attempt = 0; attempt < 5 && !installed; ++attempt) {
    CommandResult result = Kubectl({"apply", "--server-side", "--force-conflicts", "-f", MLSCALE_CRD_FILE});
    installed = result.exit_code == 0;
    output = result.output;
    if (!installed) std::this_thread::sleep_for(500ms);
  }
  ASSERT_TRUE(installed) << output;
  CommandResult established =
      Kubectl({"wait", "--for=condition=Established", "--timeout=30s", "crd/trainingjobs.mlscale.io"});
  ASSERT_EQ(established.exit_code, 0) << established.output;
  ASSERT_EQ(Kubectl({"create", "namespace", namespace_}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return Kubectl({"-n", namespace_, "get", "serviceaccount", "default"}).exit_code == 0; }, 30s));
}

void TrainingJobE2E::TearDown() {
  if (HasFailure() && operator_) std::cerr << "operator log (tail):\n" << operator_->LogTail(6000) << "\n";
  operator_.reset();
  if (!namespace_.empty() && client_) Kubectl({"delete", "namespace", namespace_, "--wait=false"});
  node_.reset();
}

void TrainingJobE2E::StartNode(int gpus) {
  // The worker image: our launcher as the entrypoint, the trainer on its PATH (as in the
  // real image, whose PATH has /opt/mlscale/bin).
  const std::string image = dir_ + "/worker-image";
  {
    std::ofstream script(image);
    script << "#!/bin/sh\nPATH=" << std::filesystem::path(TrainerBinary()).parent_path().string()
           << ":$PATH exec " << LauncherBinary() << " \"$@\"\n";
  }
  std::filesystem::permissions(image, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                          std::filesystem::perms::others_read);
  NodeAgentOptions options;
  options.name = UniqueNodeName("tj");
  options.images = {{std::string(api::kDefaultWorkerImage), image}};
  options.capacity = {{"cpu", "64"}, {"memory", "64Gi"}};
  if (gpus > 0) options.capacity["nvidia.com/gpu"] = std::to_string(gpus);
  StatusOr<std::unique_ptr<NodeAgentProcess>> node = StartNodeAgent(options);
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  node_ = std::move(*node);
}

void TrainingJobE2E::StartOperator(std::vector<std::string> extra_flags) {
  // Test defaults (fast restarts and bounded waits); a flag in `extra_flags` replaces its default.
  std::vector<std::string> flags = {"--namespace", namespace_};
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--restart-backoff", "1"}, {"--start-timeout", "10"}, {"--progress-interval", "0.3"}}) {
    if (std::find(extra_flags.begin(), extra_flags.end(), flag) == extra_flags.end()) flags.insert(flags.end(), {flag, value});
  }
  flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
  StatusOr<std::unique_ptr<OperatorProcess>> process = OperatorProcess::Start(flags, dir_ + "/operator.log");
  ASSERT_TRUE(process.ok()) << process.status().ToString();
  operator_ = std::move(*process);
}

json TrainingJobE2E::Job(const std::string& name, const json& spec) const {
  json pod_spec = json::object();
  node_->PlaceHere(pod_spec);
  json job = {{"apiVersion", "mlscale.io/v1alpha1"},
              {"kind", "TrainingJob"},
              {"metadata", {{"name", name}, {"namespace", namespace_}}},
              {"spec",
               {{"template",
                 {{"nodeSelector", pod_spec["nodeSelector"]},
                  {"tolerations", pod_spec["tolerations"]},
                  {"env", {{{"name", "OMP_NUM_THREADS"}, {"value", "1"}}}}}}}}};
  job["spec"].merge_patch(spec);
  return job;
}

json TrainingJobE2E::DigitsJob(const std::string& name, int replicas, int epochs) const {
  return Job(name, {{"replicas", replicas},
                    {"backend", "cpu"},
                    {"trainer",
                     {{"dataset", {{"name", "digits"}}},
                      {"model", {{"hiddenLayers", {128, 64}}, {"activation", "relu"}}},
                      {"optimizer", {{"name", "adam"}, {"learningRate", 0.003}}},
                      {"batchSize", 64},
                      {"epochs", epochs},
                      {"seed", 7},
                      {"checkpoint", {{"everySteps", 20}}}}}});
}

json TrainingJobE2E::ShellJob(const std::string& name, int replicas, const std::string& script, const json& extra) const {
  json spec = {{"replicas", replicas},
               {"container", {{"image", "busybox:e2e"}, {"command", {"/bin/sh", "-c", script}}}}};
  spec.merge_patch(extra);
  return Job(name, spec);
}

json TrainingJobE2E::WithCheckpointVolume(json job, const std::string& folder) const {
  const std::string path = dir_ + "/" + folder;
  std::filesystem::create_directories(path);
  job["spec"]["template"]["volumes"] = {{{"name", "ckpt"}, {"hostPath", {{"path", path}}}}};
  job["spec"]["checkpoint"] = {{"volume", "ckpt"}, {"path", "/ckpt"}};
  return job;
}

json TrainingJobE2E::ReadExample(const std::string& file) {
  StatusOr<json> document = api::ParseYamlDocument(ReadFile(std::string(MLSCALE_EXAMPLES_DIR) + "/" + file));
  return document.ok() ? *document : json();
}

CommandResult TrainingJobE2E::Kubectl(const std::vector<std::string>& args, const std::string& input) const {
  return testing::Kubectl(kubeconfig_, args, input);
}

void TrainingJobE2E::Apply(const json& object) {
  CommandResult result = Kubectl({"-n", namespace_, "apply", "-f", "-"}, object.dump());
  ASSERT_EQ(result.exit_code, 0) << result.output;
}

json TrainingJobE2E::Get(const std::string& kind, const std::string& name) const {
  CommandResult result = Kubectl({"-n", namespace_, "get", kind, name, "-o", "json"});
  if (result.exit_code != 0) return json();
  return json::parse(result.output, nullptr, false);
}

std::vector<json> TrainingJobE2E::Pods(const std::string& job) const {
  CommandResult result = Kubectl({"-n", namespace_, "get", "pods", "-l", "mlscale.io/job-name=" + job, "-o", "json"});
  json list = json::parse(result.output, nullptr, false);
  if (!list.is_object()) return {};
  return list.value("items", json::array()).get<std::vector<json>>();
}

json TrainingJobE2E::WaitForCondition(const std::string& job, const std::string& condition, int seconds) {
  CommandResult result = Kubectl({"-n", namespace_, "wait", "--for=condition=" + condition,
                                  "--timeout=" + std::to_string(seconds) + "s", "trainingjob/" + job});
  EXPECT_EQ(result.exit_code, 0) << result.output << "\n" << Diagnostics(job);
  return Get("trainingjob", job);
}

bool TrainingJobE2E::WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds limit) const {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return condition();
}

bool TrainingJobE2E::KillPodProcess(const std::string& pod, const std::string& comm) const {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string name = ReadFile(entry.path().string() + "/comm");
    if (!name.empty() && name.back() == '\n') name.pop_back();
    if (name != comm) continue;
    const std::string environment = ReadFile(entry.path().string() + "/environ");
    if (environment.find(std::string("HOSTNAME=") + pod + '\0') == std::string::npos) continue;
    return ::kill(std::stoi(pid), SIGKILL) == 0;
  }
  return false;
}

std::string TrainingJobE2E::Diagnostics(const std::string& job) const {
  std::string text = "job: " + Get("trainingjob", job).dump(1).substr(0, 6000) + "\npods:\n";
  for (const json& pod : Pods(job)) {
    text += kube::NameOf(pod) + " " + pod["status"].dump().substr(0, 800) + "\n";
    const std::string dir = node_ ? node_->PodDir(namespace_, kube::NameOf(pod)) : "";
    if (!dir.empty()) {
      std::string log = ReadFile(dir + "/worker.log");
      text += "  log: " + (log.size() > 1500 ? log.substr(log.size() - 1500) : log) + "\n";
    }
  }
  return text;
}

}  // namespace mlscale::testing
