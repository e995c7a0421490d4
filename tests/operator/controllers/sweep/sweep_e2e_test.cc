// HyperparameterSweep end to end: the real control plane (the ctest `cluster` fixture),
// mlscale-operator as a process running the TrainingJob and HyperparameterSweep
// controllers, and a node agent whose pods run our real launcher and trainer on the
// bundled digits set. Trials train a few epochs only, so the suite stays short on 2 cores.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include "e2e_fixture.h"
#include "mlscale/api/sweep.h"
#include "mlscale/controllers/trainingjob/job_state.h"
#include "mlscale/hpo/json.h"
#include "mlscale/hpo/sampler.h"
#include "mlscale/kube/objects.h"

namespace mlscale::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

const kube::Resource kTrainingJobs{"mlscale.io", "v1alpha1", "trainingjobs", true, "TrainingJob"};

class SweepE2E : public TrainingJobE2E {
 protected:
  void SetUp() override {
    TrainingJobE2E::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    CommandResult crd = Kubectl({"apply", "--server-side", "--force-conflicts", "-f", MLSCALE_SWEEP_CRD_FILE});
    ASSERT_EQ(crd.exit_code, 0) << crd.output;
    CommandResult established = Kubectl(
        {"wait", "--for=condition=Established", "--timeout=30s", "crd/hyperparametersweeps.mlscale.io"});
    ASSERT_EQ(established.exit_code, 0) << established.output;
    StartNode();
    if (HasFatalFailure()) return;
    StartOperator({"--controllers", "TrainingJob", "HyperparameterSweep"});
  }

  // A digits TrainingJob spec placed on this test's node, `trainer` merged over a small
  // default (lr, width and optimizer are the sweep's placeholders).
  json TrialSpec(int epochs, const json& trainer = json::object()) const {
    json job = Job("template", {{"replicas", 1},
                                {"backend", "cpu"},
                                {"trainer",
                                 {{"dataset", {{"name", "digits"}}},
                                  {"model", {{"hiddenLayers", {"${params.width}"}}, {"activation", "relu"}}},
                                  {"optimizer", {{"name", "${params.optimizer}"}, {"learningRate", "${params.lr}"}}},
                                  {"batchSize", 64},
                                  {"epochs", epochs},
                                  {"seed", 1}}}});
    job["spec"]["trainer"].merge_patch(trainer);
    return job["spec"];
  }

  static json DigitsParameters() {
    return json::array({{{"name", "lr"}, {"type", "float"}, {"min", 0.0003}, {"max", 0.3}, {"scale", "log"}},
                        {{"name", "width"}, {"type", "int"}, {"min", 16}, {"max", 64}, {"step", 16}},
                        {{"name", "optimizer"}, {"type", "categorical"}, {"choices", {"adam", "sgd"}}}});
  }

  json Sweep(const std::string& name, const json& spec) const {
    json sweep = {{"apiVersion", "mlscale.io/v1alpha1"},
                  {"kind", "HyperparameterSweep"},
                  {"metadata", {{"name", name}, {"namespace", namespace_}}},
                  {"spec",
                   {{"objective", {{"metric", "testAccuracy"}, {"direction", "maximize"}}},
                    {"algorithm", {{"name", "random"}, {"seed", 1}}},
                    {"parameters", DigitsParameters()},
                    {"maxTrials", 4},
                    {"parallelTrials", 2},
                    {"trialTemplate", {{"spec", TrialSpec(3)}}}}}};
    if (spec.is_object()) sweep["spec"].merge_patch(spec);
    return sweep;
  }

  // Waits until status.state is terminal; returns the sweep as then.
  json WaitForEnd(const std::string& name, std::chrono::seconds limit) {
    json sweep;
    bool ended = WaitFor(
        [&] {
          sweep = Get("hyperparametersweep", name);
          const std::string state = sweep.is_object() ? sweep.value("status", json::object()).value("state", "") : "";
          return state == "Succeeded" || state == "Failed";
        },
        limit);
    EXPECT_TRUE(ended) << "sweep " << name << " did not end: " << sweep.dump(1).substr(0, 3000) << "\n"
                       << TrialsText(name);
    return sweep;
  }

  // The sweep's status writes are conflict-free by design (own_writes.h): no reconcile
  // of a sweep failed on a 409 during the test, whatever its trials did meanwhile.
  void ExpectNoConflictWarnings() const {
    std::ifstream log(operator_->log_file());
    ASSERT_TRUE(log) << operator_->log_file();
    std::string line;
    while (std::getline(log, line)) {
      EXPECT_FALSE(line.find("hyperparametersweep: reconcile") != std::string::npos &&
                   line.find("Conflict") != std::string::npos)
          << line;
    }
  }

  std::vector<json> Trials(const std::string& sweep) const {
    CommandResult result =
        Kubectl({"-n", namespace_, "get", "trainingjobs", "-l", "mlscale.io/sweep-name=" + sweep, "-o", "json"});
    json list = json::parse(result.output, nullptr, false);
    if (!list.is_object()) return {};
    return list.value("items", json::array()).get<std::vector<json>>();
  }

  std::string TrialsText(const std::string& sweep) const {
    std::string text;
    for (const json& trial : Trials(sweep)) {
      text += kube::NameOf(trial) + " " + trial["metadata"].value("annotations", json::object()).dump() + " " +
              trial.value("status", json::object()).dump().substr(0, 600) + "\n";
    }
    return text;
  }

  static std::string State(const json& object) {
    return object.value("status", json::object()).value("state", std::string());
  }
};

// Trials ever unfinished at once, in the order the watch delivered: a trial counts from
// its creation until its state is first seen terminal (stricter than running pods).
int MaxUnfinishedAtOnce(const std::vector<json>& states, const std::string& sweep) {
  std::set<std::string> open, closed;
  int most = 0;
  for (const json& state : states) {
    const std::string name = kube::NameOf(state);
    if (state["metadata"].value("labels", json::object()).value("mlscale.io/sweep-name", "") != sweep) continue;
    const std::string s = state.value("status", json::object()).value("state", "");
    const bool finished = s == "Succeeded" || s == "Failed" || s == "Suspended";
    if (!finished && !closed.contains(name)) open.insert(name);
    if (finished && open.erase(name) > 0) closed.insert(name);
    most = std::max<int>(most, static_cast<int>(open.size()));
  }
  return most;
}

void Note(const std::string& line) {
  std::cout << "[ figures ] " << line << std::endl;
  if (const char* file = std::getenv("MLSCALE_SWEEP_FIGURES")) std::ofstream(file, std::ios::app) << line << "\n";
}

// Issue test 1: 8 trials, 2 at a time, over the bundled trainer (lr log scale, width int,
// optimizer categorical) with the Bayesian sampler; the best equals its trial's result.
TEST_F(SweepE2E, EightTrialsTwoAtATimeReachTheBest) {
  EventLog log(*client_, kTrainingJobs, namespace_);
  json sweep = Sweep("digits", {{"algorithm", {{"name", "bayesian"}, {"seed", 7}, {"settings", {{"startupTrials", 4}}}}},
                                {"maxTrials", 8},
                                {"parallelTrials", 2}});
  Apply(sweep);
  json done = WaitForEnd("digits", 300s);
  ASSERT_EQ(State(done), "Succeeded") << done.dump(1);
  EXPECT_EQ(done["status"]["reason"], "MaxTrialsReached");
  EXPECT_EQ(done["status"]["trials"]["created"], 8);
  EXPECT_EQ(done["status"]["trials"]["succeeded"], 8);
  EXPECT_EQ(done["status"]["trialsDone"], "8/8");
  EXPECT_TRUE(kube::FindCondition(done, "Succeeded"));

  std::vector<json> trials = Trials("digits");
  ASSERT_EQ(trials.size(), 8u) << TrialsText("digits");
  std::set<std::string> names, assignments;
  double best = -1;
  std::string best_name;
  std::vector<std::pair<controllers::trainingjob::TimePoint, controllers::trainingjob::TimePoint>> spans;
  for (const json& trial : trials) {
    names.insert(kube::NameOf(trial));
    assignments.insert(trial["metadata"]["annotations"]["mlscale.io/assignment"].get<std::string>());
    ASSERT_EQ(State(trial), "Succeeded") << trial.dump(1);
    const double value = trial["status"]["result"]["metrics"]["testAccuracy"].get<double>();
    if (value > best) {
      best = value;
      best_name = kube::NameOf(trial);
    }
    auto start = controllers::trainingjob::ParseTime(trial["status"].value("startTime", ""));
    auto end = controllers::trainingjob::ParseTime(trial["status"].value("completionTime", ""));
    ASSERT_TRUE(start && end) << trial["status"].dump();
    spans.push_back({*start, *end});
  }
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(names.contains("digits-" + std::to_string(i))) << i;
  EXPECT_EQ(assignments.size(), 8u) << "an assignment was suggested twice";
  // The best trial's value is its TrainingJob's result.
  const std::string reported = done["status"]["bestTrial"]["name"];
  EXPECT_DOUBLE_EQ(done["status"]["bestTrial"]["value"].get<double>(), best);
  json best_trial = Get("trainingjob", reported);
  EXPECT_DOUBLE_EQ(best_trial["status"]["result"]["metrics"]["testAccuracy"].get<double>(),
                   done["status"]["bestTrial"]["value"].get<double>());
  EXPECT_EQ(done["status"]["bestTrial"]["assignment"].dump(),
            json::parse(best_trial["metadata"]["annotations"]["mlscale.io/assignment"].get<std::string>()).dump());
  // Never more than 2 at once: from the trials' start and end times (1 s resolution, so
  // intervals are half-open) and, stricter, from creation to end in watch order.
  for (const auto& [start, end] : spans) {
    int overlapping = 0;
    for (const auto& [other_start, other_end] : spans) overlapping += other_start <= start && start < other_end;
    EXPECT_LE(overlapping, 2);
  }
  EXPECT_LE(MaxUnfinishedAtOnce(log.States(), "digits"), 2);
  ExpectNoConflictWarnings();

  // Figure for the note: the size of the sweep's status and whole object.
  Note("status bytes of an 8-trial sweep: " + std::to_string(done["status"].dump().size()) + " (object " +
       std::to_string(done.dump().size()) + ")");
}

// The time from a trial's end to the next trial's creation. The trials' own timestamps
// have 1 s resolution, so this uses the arrival times of a watch: when the trial's
// terminal state and the next trial's creation reached a client like the controller.
TEST_F(SweepE2E, OneAtATimeTheNextTrialFollowsTheLastQuickly) {
  std::mutex mutex;
  std::map<std::string, Clock::time_point> created, ended;
  kube::Watcher::Handlers handlers;
  auto record = [&](const json& job) {
    std::lock_guard lock(mutex);
    const std::string name = kube::NameOf(job);
    created.try_emplace(name, Clock::now());
    const std::string state = job.value("status", json::object()).value("state", "");
    if (state == "Succeeded" || state == "Failed") ended.try_emplace(name, Clock::now());
  };
  handlers.on_list = [&](std::vector<json>&& items, const std::string&) {
    for (const json& item : items) record(item);
  };
  handlers.on_event = [&](kube::WatchEvent&& event) { record(event.object); };
  kube::Watcher watcher(*client_, kTrainingJobs, namespace_, kube::WatcherOptions{}, handlers);
  watcher.Start();
  ASSERT_TRUE(WaitFor([&] { return watcher.HasSynced(); }, 10s));
  Apply(Sweep("serial", {{"maxTrials", 4}, {"parallelTrials", 1}}));
  json done = WaitForEnd("serial", 240s);
  ASSERT_EQ(State(done), "Succeeded") << done.dump(1);
  watcher.Stop();
  std::vector<double> gaps;
  for (int i = 1; i < 4; ++i) {
    const std::string previous = "serial-" + std::to_string(i - 1), next = "serial-" + std::to_string(i);
    ASSERT_TRUE(ended.contains(previous) && created.contains(next));
    const double gap = std::chrono::duration<double>(created[next] - ended[previous]).count();
    EXPECT_GE(gap, 0) << "trial " << next << " was created before " << previous << " ended";
    gaps.push_back(gap);
  }
  std::sort(gaps.begin(), gaps.end());
  Note("trial end -> next trial created (watch arrival, parallelTrials 1, 3 gaps): min " + std::to_string(gaps.front()) +
       " s, median " + std::to_string(gaps[1]) + " s, max " + std::to_string(gaps.back()) + " s");
}

// Issue test 2: the operator SIGKILLed twice mid-sweep: exactly maxTrials trials, no
// index created twice (counted from a watch), and the sweep completes.
TEST_F(SweepE2E, OperatorKilledTwiceRepeatsNothing) {
  EventLog log(*client_, kTrainingJobs, namespace_);
  Apply(Sweep("crash", {{"maxTrials", 6}, {"parallelTrials", 3}}));
  auto created = [&] { return log.UidsByName().size(); };
  ASSERT_TRUE(WaitFor([&] { return created() >= 1; }, 60s)) << operator_->LogTail();
  operator_->Kill();
  ASSERT_TRUE(operator_->Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return created() >= 4; }, 120s)) << TrialsText("crash");
  operator_->Kill();
  ASSERT_TRUE(operator_->Restart().ok());
  json done = WaitForEnd("crash", 240s);
  EXPECT_EQ(State(done), "Succeeded") << done.dump(1);
  EXPECT_EQ(done["status"]["trials"]["created"], 6);
  std::map<std::string, std::set<std::string>> uids = log.UidsByName();
  EXPECT_EQ(uids.size(), 6u);
  for (const auto& [name, ids] : uids) EXPECT_EQ(ids.size(), 1u) << name << " was created " << ids.size() << " times";
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(uids.contains("crash-" + std::to_string(i))) << i;
  std::set<std::string> assignments;
  for (const json& trial : Trials("crash")) {
    assignments.insert(trial["metadata"]["annotations"]["mlscale.io/assignment"].get<std::string>());
  }
  EXPECT_EQ(assignments.size(), 6u);
}

// Issue test 3a: a goal value ends the sweep with GoalReached before maxTrials.
TEST_F(SweepE2E, AGoalEndsTheSweepEarly) {
  Apply(Sweep("goal", {{"objective", {{"metric", "testAccuracy"}, {"direction", "maximize"}, {"goal", 0.3}}},
                       {"maxTrials", 6},
                       {"parallelTrials", 1},
                       {"parameters", json::array({{{"name", "lr"}, {"type", "float"}, {"min", 0.003}, {"max", 0.01}},
                                                   {{"name", "width"}, {"type", "int"}, {"min", 32}, {"max", 64}},
                                                   {{"name", "optimizer"}, {"type", "categorical"}, {"choices", {"adam"}}}})}}));
  json done = WaitForEnd("goal", 120s);
  EXPECT_EQ(State(done), "Succeeded");
  EXPECT_EQ(done["status"]["reason"], "GoalReached") << done.dump(1);
  EXPECT_LT(done["status"]["trials"]["created"].get<int>(), 6);
  EXPECT_GE(done["status"]["bestTrial"]["value"].get<double>(), 0.3);
}

// Issue test 3b: more failed trials than maxFailedTrials fail the sweep.
TEST_F(SweepE2E, FailedTrialsBeyondTheLimitFailTheSweep) {
  json spec = Job("template", {{"replicas", 1},
                               {"container",
                                {{"image", "busybox:e2e"},
                                 {"command", {"/bin/sh", "-c", "echo width ${params.width}; exit 3"}}}}})["spec"];
  json sweep = Sweep("failing", {{"maxTrials", 5}, {"parallelTrials", 1}, {"maxFailedTrials", 1}});
  sweep["spec"]["trialTemplate"]["spec"] = spec;  // replaces the trainer template, not merged into it
  Apply(sweep);
  json done = WaitForEnd("failing", 120s);
  EXPECT_EQ(State(done), "Failed");
  EXPECT_EQ(done["status"]["reason"], "TooManyFailedTrials") << done.dump(1);
  EXPECT_EQ(done["status"]["trials"]["failed"], 2);
  EXPECT_EQ(Trials("failing").size(), 2u);
  EXPECT_TRUE(kube::FindCondition(done, "Failed"));
}

// Issue test 3c: ASHA stops a clearly bad trial (a weight decay of 3 keeps the weights
// near zero, so the loss stays near ln 10) judged against a good one. The grid's order
// depends on the seed, so the test picks a seed whose first suggestion is the good trial
// (Suggest is deterministic: this is the controller's own computation).
TEST_F(SweepE2E, AshaStopsAClearlyBadTrial) {
  json parameters = json::array({{{"name", "decay"}, {"type", "float"}, {"min", 0}, {"max", 3}}});
  StatusOr<hpo::SearchSpace> space = hpo::SpaceFromJson(
      {{"parameters", json::array({{{"name", "decay"}, {"type", "float"}, {"low", 0}, {"high", 3}}})}});
  ASSERT_TRUE(space.ok()) << space.status().ToString();
  int seed = 0;
  for (; seed < 50; ++seed) {
    hpo::SamplerConfig config;
    config.algorithm = hpo::Algorithm::kGrid;
    config.seed = seed;
    config.grid.points_per_float = 2;
    auto first = hpo::Suggest(config, *space, {}, 1);
    ASSERT_TRUE(first.ok());
    if (std::get<double>(first->front().at("decay")) == 0) break;
  }
  ASSERT_LT(seed, 50);
  // Long enough (2000 epochs: the good trial several seconds on 2 busy cores with oneDNN
  // products and the compute-thread AllReduce; 300 ended too soon for any reading) for the
  // trainer's once-a-second progress to show the bad trial's loss past the first rung.
  json template_spec = TrialSpec(2000, {{"model", {{"hiddenLayers", {128, 64}}}},
                                      {"optimizer", {{"name", "adam"}, {"learningRate", 0.003},
                                                     {"weightDecay", "${params.decay}"}}}});
  Apply(Sweep("asha", {{"algorithm", {{"name", "grid"}, {"seed", seed}, {"settings", {{"pointsPerFloat", 2}}}}},
                       {"parameters", parameters},
                       {"maxTrials", 2},
                       {"parallelTrials", 1},
                       {"earlyStopping", {{"rule", "asha"}, {"settings", {{"minResource", 50}, {"reductionFactor", 3}}}}},
                       {"trialTemplate", {{"spec", template_spec}}}}));
  json done = WaitForEnd("asha", 180s);
  EXPECT_EQ(State(done), "Succeeded") << done.dump(1);
  EXPECT_EQ(done["status"]["trials"]["earlyStopped"], 1) << TrialsText("asha");
  json bad = Get("trainingjob", "asha-1");
  EXPECT_DOUBLE_EQ(json::parse(bad["metadata"]["annotations"]["mlscale.io/assignment"].get<std::string>())["decay"].get<double>(), 3);
  const std::string reason = bad["metadata"]["annotations"].value("mlscale.io/early-stopped", "");
  EXPECT_NE(reason.find("asha rule"), std::string::npos) << bad.dump(1);
  // Stopped cleanly: suspended (pods gone, status kept), not failed.
  EXPECT_EQ(State(bad), "Suspended") << bad.dump(1);
  EXPECT_TRUE(bad["spec"]["runPolicy"]["suspend"].get<bool>());
  EXPECT_EQ(State(Get("trainingjob", "asha-0")), "Succeeded");
  EXPECT_EQ(done["status"]["bestTrial"]["name"], "asha-0");
  ExpectNoConflictWarnings();
}

// Issue test 4: malformed sweeps are refused at apply (schema, CEL) or, for what only the
// parser can judge, failed with InvalidSpec naming the field.
TEST_F(SweepE2E, MalformedSweepsAreRefusedOrFailNamingTheField) {
  CommandResult refused = Kubectl({"-n", namespace_, "apply", "-f", "-"},
                                  Sweep("too-parallel", {{"maxTrials", 2}, {"parallelTrials", 3}}).dump());
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("spec.parallelTrials"), std::string::npos) << refused.output;
  refused = Kubectl({"-n", namespace_, "apply", "-f", "-"},
                    Sweep("bad-range", {{"parameters", json::array({{{"name", "lr"}, {"type", "float"}, {"min", 1}, {"max", 0.5}}})}})
                        .dump());
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("spec.parameters"), std::string::npos) << refused.output;

  json unknown = Sweep("unknown-param", json::object());
  unknown["spec"]["trialTemplate"]["spec"]["trainer"]["epochs"] = "${params.epochs}";
  Apply(unknown);
  json wrong_type = Sweep("wrong-type", json::object());
  wrong_type["spec"]["trialTemplate"]["spec"]["replicas"] = "${params.optimizer}";
  Apply(wrong_type);
  for (const auto& [name, field] : {std::pair{"unknown-param", "spec.trialTemplate.spec.trainer.epochs"},
                                    std::pair{"wrong-type", "spec.trialTemplate.spec.replicas"}}) {
    json done = WaitForEnd(name, 60s);
    EXPECT_EQ(State(done), "Failed") << done.dump(1);
    EXPECT_EQ(done["status"]["reason"], "InvalidSpec");
    EXPECT_NE(done["status"].value("message", "").find(field), std::string::npos) << done["status"].dump();
    std::optional<kube::Condition> failed = kube::FindCondition(done, "Failed");
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->reason, "InvalidSpec");
    EXPECT_TRUE(Trials(name).empty()) << "a trial of an invalid sweep was created";
  }
}

}  // namespace
}  // namespace mlscale::testing
