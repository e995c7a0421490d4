// sweep_bench: what one reconcile of a HyperparameterSweep costs its worker, and how big
// its status gets, over synthetic children (the TrainingJobs the informer cache would
// hold, built by the controller's own BuildTrial with finished statuses).
//
//   worker:     ObserveTrial for every child + SamplerHistory + the Suggester's
//               fingerprint and lookup + Decide (with the early-stopping rule): what the
//               reconcile does besides its API calls. Ceiling: 1 s (the issue's bound).
//   suggester:  hpo::Suggest (Bayesian GP) for the same history, which the Suggester runs
//               on its own thread; "inline" is what a worker would hold without it.
//   status:     bytes of the status we write, against a status that appends every trial
//               (the Katib-style layout the issue warns of) and etcd's 1.5 MiB limit.
//
// Usage: sweep_bench [--trials N ...] (default 500 and 10000); prints a Markdown table.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mlscale/controllers/sweep/suggester.h"
#include "mlscale/controllers/sweep/sweep_state.h"
#include "mlscale/controllers/sweep/trials.h"
#include "mlscale/hpo/json.h"
#include "mlscale/kube/objects.h"

namespace {

using namespace mlscale;
using namespace mlscale::controllers::sweep;
using Seconds = std::chrono::duration<double>;

const char* kSweep = R"(apiVersion: mlscale.io/v1alpha1
kind: HyperparameterSweep
metadata: {name: digits-bayesian, namespace: bench}
spec:
  objective: {metric: testAccuracy, direction: maximize}
  algorithm: {name: bayesian, seed: 7, settings: {startupTrials: 10}}
  parameters:
    - {name: lr, type: float, min: 0.0003, max: 0.3, scale: log}
    - {name: width, type: int, min: 16, max: 128, step: 16}
    - {name: optimizer, type: categorical, choices: [adam, sgd]}
  maxTrials: 100000
  parallelTrials: 4
  maxFailedTrials: 100000
  earlyStopping: {rule: asha, settings: {minResource: 50, reductionFactor: 3}}
  trialTemplate:
    spec:
      replicas: 1
      trainer:
        dataset: {name: digits}
        model: {hiddenLayers: ["${params.width}"]}
        optimizer: {name: "${params.optimizer}", learningRate: "${params.lr}"}
        epochs: 4
)";

double Objective(const hpo::Assignment& a) {
  const double lr = std::log10(std::get<double>(a.at("lr")));
  const double width = static_cast<double>(std::get<std::int64_t>(a.at("width")));
  return 0.98 - 0.02 * (lr + 2) * (lr + 2) - 0.0001 * std::abs(width - 64) -
         (std::get<std::string>(a.at("optimizer")) == "sgd" ? 0.01 : 0);
}

// `n` children: all but `running` finished (1 in 10 failed), each with recorded readings.
std::vector<Object> Children(const api::HyperparameterSweep& sweep, const Object& owner, int n, int running) {
  std::vector<Object> children;
  children.reserve(n);
  for (int i = 0; i < n; ++i) {
    const double u = (i * 0.6180339887498949) - std::floor(i * 0.6180339887498949);
    hpo::Assignment a = {{"lr", 0.0003 * std::pow(1000.0, u)},
                         {"width", std::int64_t{16} * (1 + i % 8)},
                         {"optimizer", std::string(i % 3 == 0 ? "sgd" : "adam")}};
    StatusOr<Object> job = BuildTrial(sweep, owner, i, a, nullptr);
    if (!job.ok()) {
      std::fprintf(stderr, "BuildTrial: %s\n", job.status().ToString().c_str());
      std::exit(1);
    }
    (*job)["metadata"]["uid"] = "uid-" + std::to_string(i);
    (*job)["metadata"]["annotations"][kIntermediateAnnotation] =
        "[[60,1.2],[160,0.6],[480," + std::to_string(0.3 + 0.1 * u) + "]]";
    if (i >= n - running) {
      (*job)["status"] = {{"state", "Running"},
                          {"progress", {{"step", 500}, {"totalSteps", 900}, {"loss", 0.35}, {"phase", "training"}}}};
    } else if (i % 10 == 9) {
      (*job)["status"] = {{"state", "Failed"}, {"reason", "PermanentFailure"}};
    } else {
      (*job)["status"] = {{"state", "Succeeded"}, {"result", {{"metrics", {{"testAccuracy", Objective(a)}}}}}};
    }
    children.push_back(std::move(*job));
  }
  return children;
}

struct Row {
  int trials = 0;
  double worker_best = 0, worker_worst = 0, suggest = 0;
  std::size_t status_bytes = 0, appended_bytes = 0;
};

Row Measure(const api::HyperparameterSweep& sweep, int n) {
  const Object owner = {{"apiVersion", "mlscale.io/v1alpha1"},
                        {"kind", "HyperparameterSweep"},
                        {"metadata", {{"name", sweep.name}, {"namespace", sweep.namespace_}, {"uid", "sweep-uid"}}}};
  const int running = 3;  // one slot free: the reconcile asks for one suggestion
  std::vector<Object> children = Children(sweep, owner, n, running);
  Row row;
  row.trials = n;
  Suggester suggester([](const std::string&) {}, nullptr);
  std::vector<double> worker;
  Plan plan;
  for (int repeat = 0; repeat < 5; ++repeat) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<Trial> trials;
    trials.reserve(children.size());
    for (const Object& child : children) trials.push_back(ObserveTrial(sweep.spec, child));
    plan = Decide(sweep.spec, {}, trials, false, std::chrono::system_clock::now());
    if (plan.create > 0) {
      (void)suggester.Get("bench/sweep", sweep.spec.sampler, sweep.spec.space, SamplerHistory(sweep.spec, trials, false),
                          static_cast<int>(plan.create));
    }
    worker.push_back(Seconds(std::chrono::steady_clock::now() - start).count());
  }
  row.worker_best = *std::min_element(worker.begin(), worker.end());
  row.worker_worst = *std::max_element(worker.begin(), worker.end());

  if (n <= 2000) {  // the GP's cost grows as n^2..n^3: the issue's bound is for 500 trials
    std::vector<Trial> trials;
    for (const Object& child : children) trials.push_back(ObserveTrial(sweep.spec, child));
    std::vector<hpo::Trial> history = SamplerHistory(sweep.spec, trials, false);
    const auto start = std::chrono::steady_clock::now();
    auto suggested = hpo::Suggest(sweep.spec.sampler, sweep.spec.space, history, 1);
    row.suggest = Seconds(std::chrono::steady_clock::now() - start).count();
    if (!suggested.ok()) std::fprintf(stderr, "Suggest: %s\n", suggested.status().ToString().c_str());
  }

  Object status;
  WriteStatus(plan.status, sweep.spec.max_trials, status);
  Object object = owner;
  object["status"] = status;
  for (const kube::Condition& condition : plan.conditions) (void)kube::SetCondition(object, condition);
  object["status"]["observedGeneration"] = 1;
  row.status_bytes = object["status"].dump().size();
  // The layout we do not use: every trial's name, assignment, state and value in status.
  Object appended = object["status"];
  appended["trials"] = Object::array();
  for (const Object& child : children) {
    appended["trials"].push_back({{"name", child["metadata"]["name"]},
                                  {"assignment", Object::parse(child["metadata"]["annotations"][kAssignmentAnnotation]
                                                                   .get<std::string>())},
                                  {"state", child["status"]["state"]},
                                  {"value", child["status"].value("result", Object::object())
                                                .value("metrics", Object::object())
                                                .value("testAccuracy", 0.0)}});
  }
  row.appended_bytes = appended.dump().size();
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--trials") sizes.push_back(std::atoi(argv[i + 1]));
  }
  if (sizes.empty()) sizes = {500, 10000};
  StatusOr<api::HyperparameterSweep> sweep = api::ParseSweep(kSweep, nullptr);
  if (!sweep.ok()) {
    std::fprintf(stderr, "%s\n", sweep.status().ToString().c_str());
    return 1;
  }
  std::printf("| trials | worker per reconcile, best / worst of 5 (ceiling 1 s) | GP Suggest, 1 suggestion (off the worker) | "
              "worker if Suggest ran inline | status bytes | status appending every trial |\n|---|---|---|---|---|---|\n");
  for (int n : sizes) {
    Row row = Measure(*sweep, n);
    char suggest[64] = "not run";
    char inline_total[64] = "-";
    if (row.suggest > 0) {
      std::snprintf(suggest, sizeof suggest, "%.1f ms", row.suggest * 1e3);
      std::snprintf(inline_total, sizeof inline_total, "%.1f ms", (row.worker_best + row.suggest) * 1e3);
    }
    std::printf("| %d | %.1f / %.1f ms | %s | %s | %zu | %zu (%.2fx etcd's 1.5 MiB) |\n", row.trials,
                row.worker_best * 1e3, row.worker_worst * 1e3, suggest, inline_total, row.status_bytes,
                row.appended_bytes, static_cast<double>(row.appended_bytes) / (1.5 * 1024 * 1024));
  }
  return 0;
}
