// One truth for validation: every manifest of the corpus gets the same verdict from the
// API server (`kubectl apply --dry-run=server` against the test control plane, with the
// CRD of crds/), from `mlscale validate -f` and from the parser called directly; an
// invalid one is refused with a message naming the field by each. For the valid ones,
// the object the API server defaulted parses to the same typed spec and trainer
// configuration as the manifest did: the CRD's defaults are the parser's. The corpus holds
// TrainingJobs, HyperparameterSweeps (files named *sweep*) and InferenceServices (files named
// *isvc*), each judged by its kind.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "cluster_environment.h"
#include "corpus.h"
#include "mlscale/api/inference_service.h"
#include "mlscale/api/manifest.h"
#include "mlscale/api/sweep.h"
#include "mlscale/hpo/json.h"
#include "mlscale/api/training_job.h"
#include "mlscale/worker/config.h"

namespace mlscale::api {
namespace {

using mlscale::testing::CommandResult;
using nlohmann::json;

Status ValidateTrainer(const json& trainer) { return worker::ParseTrainerConfig(trainer).status(); }

bool IsSweep(const testing::CorpusCase& c) { return c.name.find("sweep") != std::string::npos; }
bool IsInferenceService(const testing::CorpusCase& c) { return c.name.find("isvc") != std::string::npos; }

struct Verdicts {
  CommandResult kubectl;
  CommandResult cli;
  Status parser;
  StatusOr<json> defaulted = json();  // the API server's object, for a valid case
};

class CorpusTest : public ::testing::Test {
 protected:
  // Once for the suite: the CRD installed and established, a namespace. A failure here
  // fails every test (gtest would only skip them).
  static void SetUpTestSuite() {
    auto cluster = mlscale::testing::CurrentCluster();
    if (!cluster.ok()) {
      setup_error_ = cluster.status().ToString();
      return;
    }
    kubeconfig_ = cluster->admin_kubeconfig;
    for (const char* file : {MLSCALE_CRD_FILE, MLSCALE_SWEEP_CRD_FILE, MLSCALE_ISVC_CRD_FILE}) {
      CommandResult crd = Kubectl({"apply", "--server-side", "--force-conflicts", "-f", file});
      if (crd.exit_code != 0) {
        setup_error_ = "installing " + std::string(file) + ": " + crd.output;
        return;
      }
    }
    CommandResult established = Kubectl({"wait", "--for=condition=Established", "--timeout=60s",
                                          "crd/trainingjobs.mlscale.io", "crd/hyperparametersweeps.mlscale.io",
                                          "crd/inferenceservices.mlscale.io"});
    if (established.exit_code != 0) {
      setup_error_ = "waiting for the CRDs: " + established.output;
      return;
    }
    Kubectl({"create", "namespace", kNamespace});
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static CommandResult Kubectl(const std::vector<std::string>& args) {
    return mlscale::testing::Kubectl(kubeconfig_, args);
  }

  static Verdicts Judge(const testing::CorpusCase& c) {
    Verdicts verdicts;
    verdicts.kubectl = Kubectl({"apply", "--dry-run=server", "-n", kNamespace, "-o", "json", "-f", c.path.string()});
    verdicts.cli = mlscale::testing::RunCommand({MLSCALE_CLI, "validate", "-f", c.path.string()});
    verdicts.parser = IsInferenceService(c) ? LoadInferenceServiceFile(c.path.string()).status()
                      : IsSweep(c)           ? LoadSweepFile(c.path.string(), ValidateTrainer).status()
                                             : LoadTrainingJobFile(c.path.string(), ValidateTrainer).status();
    if (verdicts.kubectl.exit_code == 0) {
      // kubectl may print warnings before the object.
      std::size_t start = verdicts.kubectl.output.find('{');
      verdicts.defaulted = start == std::string::npos
                               ? StatusOr<json>(InvalidArgument("no object in kubectl's output"))
                               : ParseYamlDocument(verdicts.kubectl.output.substr(start));
    }
    return verdicts;
  }

  static constexpr const char* kNamespace = "api-corpus";
  static inline std::string kubeconfig_;
  static inline std::string setup_error_;
};

// A sweep's typed spec as comparable JSON (the hpo library's forms of its parts).
json SweepView(const SweepSpec& spec) {
  return {{"objective", {{"metric", spec.objective.metric},
                         {"direction", DirectionName(spec.objective.direction)},
                         {"goal", spec.objective.goal ? json(*spec.objective.goal) : json()}}},
          {"sampler", hpo::SamplerConfigToJson(spec.sampler)},
          {"space", hpo::SpaceToJson(spec.space)},
          {"trialTemplate", spec.trial_template},
          {"maxTrials", spec.max_trials},
          {"parallelTrials", spec.parallel_trials},
          {"maxFailedTrials", spec.max_failed_trials},
          {"earlyStopping", hpo::EarlyStoppingConfigToJson(spec.early_stopping)}};
}

// The typed spec without the record of which fields were written (defaulting adds some)
// and without spec.trainer as written (compared as the trainer reads it).
TrainingJobSpec Effective(TrainingJobSpec spec) {
  spec.given.clear();
  spec.trainer = json::object();
  return spec;
}

TEST_F(CorpusTest, ApiServerCliAndParserAgreeOnEveryManifest) {
  auto cases = testing::ReadCorpus(MLSCALE_CORPUS_DIR);
  ASSERT_GE(cases.size(), 100u);
  // A few kubectl processes at once: each spends most of its time starting up.
  std::map<std::string, Verdicts> verdicts;
  std::mutex mutex;
  std::size_t next = 0;
  auto work = [&] {
    for (;;) {
      std::size_t index;
      {
        std::lock_guard lock(mutex);
        if (next == cases.size()) return;
        index = next++;
      }
      Verdicts judged = Judge(cases[index]);
      std::lock_guard lock(mutex);
      verdicts.emplace(cases[index].name, std::move(judged));
    }
  };
  std::vector<std::future<void>> workers;
  for (int i = 0; i < 4; ++i) workers.push_back(std::async(std::launch::async, work));
  for (auto& w : workers) w.get();

  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Verdicts& v = verdicts.at(c.name);
    const std::string& server = v.kubectl.output;
    if (!c.api_server_differs.empty()) {
      // A known difference (the corpus file says why): kubectl accepts what we refuse.
      EXPECT_EQ(v.kubectl.exit_code, 0) << "the API server now refuses it too: drop api-server-differs\n" << server;
      EXPECT_FALSE(v.parser.ok());
      EXPECT_NE(v.cli.exit_code, 0);
      EXPECT_NE(v.parser.message().find(c.field), std::string::npos) << "parser: " << v.parser.message();
      continue;
    }
    EXPECT_EQ(v.kubectl.exit_code == 0, c.valid) << "API server: " << server;
    EXPECT_EQ(v.cli.exit_code == 0, c.valid) << "mlscale validate: " << v.cli.output;
    EXPECT_EQ(v.parser.ok(), c.valid) << "parser: " << v.parser.ToString();
    if (!c.valid) {
      const std::string& expected_server = c.kubectl_says.empty() ? c.field : c.kubectl_says;
      EXPECT_NE(server.find(expected_server), std::string::npos) << "API server: " << server;
      EXPECT_NE(v.cli.output.find(c.field), std::string::npos) << "mlscale validate: " << v.cli.output;
      EXPECT_NE(v.parser.message().find(c.field), std::string::npos) << "parser: " << v.parser.message();
      EXPECT_EQ(v.parser.code(), StatusCode::kInvalidArgument) << v.parser.ToString();
      continue;
    }
    ASSERT_TRUE(v.defaulted.ok()) << v.defaulted.status().ToString() << "\n" << server;
    if (IsInferenceService(c)) {
      auto written = LoadInferenceServiceFile(c.path.string());
      auto stored = InferenceServiceFromJson(*v.defaulted);
      ASSERT_TRUE(written.ok() && stored.ok()) << stored.status().ToString();
      EXPECT_TRUE(written->spec == stored->spec) << "defaulted by the API server: " << v.defaulted->dump();
      continue;
    }
    if (IsSweep(c)) {
      auto written = LoadSweepFile(c.path.string(), ValidateTrainer);
      auto stored = SweepFromJson(*v.defaulted, ValidateTrainer);
      ASSERT_TRUE(written.ok() && stored.ok()) << stored.status().ToString();
      EXPECT_EQ(SweepView(written->spec), SweepView(stored->spec)) << "defaulted by the API server: " << v.defaulted->dump();
      continue;
    }
    auto written = LoadTrainingJobFile(c.path.string(), ValidateTrainer);
    auto stored = TrainingJobFromJson(*v.defaulted, ValidateTrainer);
    ASSERT_TRUE(written.ok() && stored.ok()) << stored.status().ToString();
    EXPECT_EQ(Effective(written->spec), Effective(stored->spec)) << "defaulted by the API server: " << v.defaulted->dump();
    if (!written->spec.container) {
      auto written_trainer = worker::ParseTrainerConfig(written->spec.trainer);
      auto stored_trainer = worker::ParseTrainerConfig(stored->spec.trainer);
      ASSERT_TRUE(written_trainer.ok() && stored_trainer.ok());
      EXPECT_EQ(worker::TrainerConfigToJson(*written_trainer), worker::TrainerConfigToJson(*stored_trainer))
          << "spec.trainer defaulted by the API server: " << stored->spec.trainer.dump();
    }
  }
}

// Sizes and nesting the files of the corpus do not hold: generated, and sent through
// mlscale validate and the parser (the API server's own limits differ: its request
// limit is 3 MiB, etcd's 1.5 MiB, so it is not asked).
TEST_F(CorpusTest, CliRefusesOversizedManifestsNamingTheLimit) {
  std::string path = ::testing::TempDir() + "/oversized-trainingjob.yaml";
  {
    std::ofstream out(path, std::ios::binary);
    out << "apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: big\nspec:\n  template:\n"
        << "    annotations: {a: \"" << std::string(kMaxManifestBytes, 'x') << "\"}\n";
  }
  CommandResult cli = mlscale::testing::RunCommand({MLSCALE_CLI, "validate", "-f", path});
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_NE(cli.output.find("more than the limit of 1048576"), std::string::npos) << cli.output;
  EXPECT_LT(cli.output.size(), 300u);
  std::filesystem::remove(path);
}

// What only an update can show: fields that may not change once the job has started.
TEST_F(CorpusTest, ApiServerRefusesChangingTheWorkersOnceStarted) {
  const std::string manifest =
      "apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata: {name: immutable}\n"
      "spec: {replicas: 2, trainer: {epochs: 3}}\n";
  Kubectl({"delete", "trainingjob", "immutable", "-n", kNamespace, "--ignore-not-found"});
  ASSERT_EQ(mlscale::testing::Kubectl(kubeconfig_, {"create", "-n", kNamespace, "-f", "-"}, manifest).exit_code, 0);
  // Not started yet: anything may change.
  CommandResult before = Kubectl({"patch", "tj", "immutable", "-n", kNamespace, "--type=merge", "-p",
                                  R"({"spec": {"replicas": 3}})"});
  EXPECT_EQ(before.exit_code, 0) << before.output;
  CommandResult started = Kubectl({"patch", "tj", "immutable", "-n", kNamespace, "--subresource=status",
                                   "--type=merge", "-p", R"({"status": {"startTime": "2026-01-01T00:00:00Z"}})"});
  ASSERT_EQ(started.exit_code, 0) << started.output;
  for (const char* patch : {R"({"spec": {"replicas": 4}})", R"({"spec": {"launcher": "mpi"}})",
                                   R"({"spec": {"trainer": {"epochs": 4}}})", R"({"spec": {"image": "other"}})"}) {
    CommandResult refused = Kubectl({"patch", "tj", "immutable", "-n", kNamespace, "--type=merge", "-p", patch});
    EXPECT_NE(refused.exit_code, 0) << patch;
    EXPECT_NE(refused.output.find("cannot change once the job has started"), std::string::npos) << refused.output;
  }
  // What a running job may change: its run policy (suspend, deadline) and pod overlay.
  CommandResult allowed = Kubectl({"patch", "tj", "immutable", "-n", kNamespace, "--type=merge", "-p",
                                   R"({"spec": {"runPolicy": {"suspend": true}, "template": {"labels": {"a": "b"}}}})"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
  Kubectl({"delete", "trainingjob", "immutable", "-n", kNamespace});
}

// kubectl explain reads the structural schema: the trainer section is described. The API
// server publishes a new CRD's discovery and OpenAPI a little after it is Established (the
// first explain on a fresh cluster said 'the server doesn't have a resource type "tj"'), so
// this waits up to 30 s for it.
TEST_F(CorpusTest, KubectlExplainsTheTrainerSection) {
  CommandResult explained = Kubectl({"explain", "tj.spec.trainer.optimizer"});
  for (int i = 0; i < 60 && explained.exit_code != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    explained = Kubectl({"explain", "tj.spec.trainer.optimizer"});
  }
  ASSERT_EQ(explained.exit_code, 0) << explained.output;
  for (const char* text : {"learningRate", "momentum", "weightDecay", "adamw", "torch.optim.AdamW"}) {
    EXPECT_NE(explained.output.find(text), std::string::npos) << text << "\n" << explained.output;
  }
}

// kubectl get shows the status the controller writes, in the columns the CRD names.
TEST_F(CorpusTest, PrinterColumnsShowTheStatus) {
  const std::string manifest =
      "apiVersion: mlscale.io/v1alpha1\nkind: TrainingJob\nmetadata: {name: columns}\nspec: {replicas: 4}\n";
  Kubectl({"delete", "trainingjob", "columns", "-n", kNamespace, "--ignore-not-found"});
  ASSERT_EQ(mlscale::testing::Kubectl(kubeconfig_, {"create", "-n", kNamespace, "-f", "-"}, manifest).exit_code, 0);
  CommandResult status = Kubectl(
      {"patch", "trainingjob", "columns", "-n", kNamespace, "--subresource=status", "--type=merge", "-p",
       R"({"status": {"state": "Running", "workersReady": "3/4", "restarts": 1, "workers": {"total": 4, "ready": 3},
           "progress": {"step": 450, "totalSteps": 1000, "percent": 45, "loss": 0.25, "etaSeconds": 30,
                        "time": "2026-01-01T00:00:00Z"},
           "conditions": [{"type": "Running", "status": "True", "reason": "AllWorkersRunning",
                           "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})"});
  ASSERT_EQ(status.exit_code, 0) << status.output;
  // By short name and by category (which takes no name: it holds sweeps too).
  for (std::vector<std::string> get : {std::vector<std::string>{"get", "tj", "columns"},
                                       std::vector<std::string>{"get", "mlscale", "--field-selector",
                                                                "metadata.name=columns"}}) {
    get.insert(get.end(), {"-n", kNamespace});
    CommandResult table = Kubectl(get);
    ASSERT_EQ(table.exit_code, 0) << table.output;
    std::string header = table.output.substr(0, table.output.find('\n'));
    for (const char* column : {"NAME", "READY", "STATE", "PROGRESS", "LOSS", "RESTARTS", "AGE"}) {
      EXPECT_NE(header.find(column), std::string::npos) << column << "\n" << table.output;
    }
    for (const char* value : {"3/4", "Running", "45", "0.25"}) {
      EXPECT_NE(table.output.find(value), std::string::npos) << value << "\n" << table.output;
    }
  }
  CommandResult wide = Kubectl({"get", "tj", "columns", "-n", kNamespace, "-o", "wide"});
  EXPECT_NE(wide.output.find("ETA"), std::string::npos) << wide.output;
  Kubectl({"delete", "trainingjob", "columns", "-n", kNamespace});
}

// The sweep's columns: algorithm, trials done/max, running, best value, state, age.
TEST_F(CorpusTest, SweepPrinterColumnsShowTheStatus) {
  auto manifest = ReadManifestFile(std::string(MLSCALE_CORPUS_DIR) + "/valid-sweep-bayesian.yaml");
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  Kubectl({"delete", "sweep", "bayesian", "-n", kNamespace, "--ignore-not-found"});
  ASSERT_EQ(mlscale::testing::Kubectl(kubeconfig_, {"create", "-n", kNamespace, "-f", "-"}, *manifest).exit_code, 0);
  CommandResult status = Kubectl(
      {"patch", "sweep", "bayesian", "-n", kNamespace, "--subresource=status", "--type=merge", "-p",
       R"({"status": {"state": "Running", "trialsDone": "3/4", "trials": {"running": 1, "succeeded": 3},
           "bestTrial": {"name": "bayesian-2", "value": 0.9611, "assignment": {"lr": 0.01}}}})"});
  ASSERT_EQ(status.exit_code, 0) << status.output;
  CommandResult table = Kubectl({"get", "sweep", "bayesian", "-n", kNamespace});
  ASSERT_EQ(table.exit_code, 0) << table.output;
  std::string header = table.output.substr(0, table.output.find('\n'));
  for (const char* column : {"NAME", "ALGORITHM", "TRIALS", "RUNNING", "BEST", "STATE", "AGE"}) {
    EXPECT_NE(header.find(column), std::string::npos) << column << "\n" << table.output;
  }
  for (const char* value : {"bayesian", "3/4", "0.9611", "Running"}) {
    EXPECT_NE(table.output.find(value), std::string::npos) << value << "\n" << table.output;
  }
  Kubectl({"delete", "sweep", "bayesian", "-n", kNamespace});
}

}  // namespace
}  // namespace mlscale::api
