#include "mlscale/launcher/local_sweep.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "mlscale/hpo/json.h"
#include "mlscale/launcher/plot.h"
#include "mlscale/launcher/process.h"
#include "mlscale/launcher/progress.h"

namespace mlscale::launcher {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kTick{200};
constexpr int kExitInterrupted = 130;
// What a trial's files may hold at most (ours are a few KiB).
constexpr std::uintmax_t kMaxStateBytes = 1 << 20;
// Rows of the live table: the running trials and the latest finished ones.
constexpr std::size_t kTableRows = 16;

enum class TrialState { kPending, kRunning, kSucceeded, kFailed, kEarlyStopped };

constexpr std::pair<TrialState, const char*> kStateNames[] = {{TrialState::kPending, "Pending"},
                                                              {TrialState::kRunning, "Running"},
                                                              {TrialState::kSucceeded, "Succeeded"},
                                                              {TrialState::kFailed, "Failed"},
                                                              {TrialState::kEarlyStopped, "EarlyStopped"}};

const char* StateName(TrialState state) {
  for (auto [s, name] : kStateNames) {
    if (s == state) return name;
  }
  return "Pending";
}

bool Finished(TrialState state) {
  return state == TrialState::kSucceeded || state == TrialState::kFailed || state == TrialState::kEarlyStopped;
}

std::int64_t NowMilliseconds() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A small file read whole; nullopt when absent, unreadable or larger than kMaxStateBytes.
std::optional<std::string> ReadSmallFile(const fs::path& path) {
  std::error_code error;
  auto size = fs::file_size(path, error);
  if (error || size > kMaxStateBytes) return std::nullopt;
  std::ifstream file(path, std::ios::binary);
  if (!file) return std::nullopt;
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

Status WriteAtomically(const fs::path& path, const std::string& text) {
  fs::path temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) return Internal("cannot write " + temporary.string());
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) return Internal("cannot rename " + temporary.string() + ": " + error.message());
  return Status::Ok();
}

std::string ValueText(const hpo::ParameterValue& value) {
  char text[32];
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  if (const auto* i = std::get_if<std::int64_t>(&value)) return std::to_string(*i);
  std::snprintf(text, sizeof text, "%.4g", std::get<double>(value));
  return text;
}

std::string AssignmentText(const hpo::Assignment& assignment) {
  std::string text;
  for (const auto& [name, value] : assignment) text += (text.empty() ? "" : " ") + name + "=" + ValueText(value);
  return text;
}

std::string Fixed(double value, int digits) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

struct Trial {
  std::int64_t index = 0;
  std::string name;
  hpo::Assignment assignment;
  TrialState state = TrialState::kPending;
  std::optional<double> value;
  std::vector<hpo::IntermediateValue> intermediate;
  std::vector<std::pair<std::int64_t, std::int64_t>> runs;  // [start, end) in ms since the epoch; end 0: running
  std::optional<int> exit_code;
  std::string reason;
  // This run only:
  std::optional<ChildProcess> process;
  std::optional<Progress> progress;
  bool stop_requested = false;     // SIGTERM sent by the sweep (early stop or the sweep's end)
  std::string stop_reason;         // why, when the trial then ends as EarlyStopped
  Clock::time_point kill_at = Clock::time_point::max();

  std::string Id() const { return std::to_string(index); }

  json ToJson() const {
    json j = {{"index", index}, {"name", name}, {"assignment", hpo::AssignmentToJson(assignment)},
              {"state", StateName(state)}};
    if (value) j["value"] = *value;
    json steps = json::array();
    for (const auto& iv : intermediate) steps.push_back({{"step", iv.step}, {"value", iv.value}});
    j["intermediate"] = std::move(steps);
    json spans = json::array();
    for (auto [start, end] : runs) spans.push_back({{"start", start}, {"end", end}});
    j["runs"] = std::move(spans);
    if (exit_code) j["exitCode"] = *exit_code;
    if (!reason.empty()) j["reason"] = reason;
    return j;
  }

  hpo::Trial ForSampler() const {
    hpo::Trial t{Id(), assignment, hpo::TrialState::kPending, std::nullopt, intermediate};
    if (state == TrialState::kSucceeded) {
      t.state = hpo::TrialState::kCompleted;
      t.value = value;
    } else if (state == TrialState::kFailed) {
      t.state = hpo::TrialState::kFailed;
    } else if (state == TrialState::kEarlyStopped) {
      t.state = hpo::TrialState::kStopped;
    }
    return t;
  }
};

// A trial's state file read back (on resume); errors name the file and the field.
StatusOr<Trial> TrialFromJson(const hpo::SearchSpace& space, const json& j) {
  if (!j.is_object()) return DataLoss("not a JSON object");
  Trial trial;
  auto index = j.find("index");
  auto name = j.find("name");
  auto state = j.find("state");
  if (index == j.end() || !index->is_number_integer() || name == j.end() || !name->is_string() ||
      state == j.end() || !state->is_string() || !j.contains("assignment")) {
    return DataLoss("needs index, name, assignment and state");
  }
  trial.index = index->get<std::int64_t>();
  trial.name = name->get<std::string>();
  auto assignment = hpo::AssignmentFromJson(space, j["assignment"]);
  if (!assignment.ok()) return DataLoss(assignment.status().message());
  trial.assignment = std::move(*assignment);
  bool known = false;
  for (auto [s, label] : kStateNames) {
    if (*state == label) trial.state = s, known = true;
  }
  if (!known) return DataLoss("state: unknown " + state->dump());
  // A trial that was running when the sweep stopped runs again (from its checkpoint).
  if (trial.state == TrialState::kRunning) trial.state = TrialState::kPending;
  if (auto v = j.find("value"); v != j.end() && v->is_number()) trial.value = v->get<double>();
  if (trial.state == TrialState::kSucceeded && (!trial.value || !std::isfinite(*trial.value))) {
    return DataLoss("value: a Succeeded trial needs a finite value");
  }
  if (auto it = j.find("intermediate"); it != j.end() && it->is_array()) {
    for (const auto& iv : *it) {
      if (!iv.is_object() || !iv.contains("step") || !iv["step"].is_number_integer() || !iv.contains("value") ||
          !iv["value"].is_number()) {
        return DataLoss("intermediate: each item needs an integer step and a number value");
      }
      std::int64_t step = iv["step"].get<std::int64_t>();
      if (!trial.intermediate.empty() && step <= trial.intermediate.back().step) {
        return DataLoss("intermediate: steps must increase");
      }
      trial.intermediate.push_back({step, iv["value"].get<double>()});
    }
  }
  if (auto it = j.find("runs"); it != j.end() && it->is_array()) {
    for (const auto& run : *it) {
      if (run.is_object() && run.contains("start") && run["start"].is_number_integer() && run.contains("end") &&
          run["end"].is_number_integer()) {
        trial.runs.emplace_back(run["start"].get<std::int64_t>(), run["end"].get<std::int64_t>());
      }
    }
  }
  if (auto it = j.find("exitCode"); it != j.end() && it->is_number_integer()) trial.exit_code = it->get<int>();
  if (auto it = j.find("reason"); it != j.end() && it->is_string()) trial.reason = it->get<std::string>();
  return trial;
}

class LocalSweep {
 public:
  LocalSweep(const api::HyperparameterSweep& sweep, const LocalSweepOptions& options)
      : sweep_(sweep), spec_(sweep.spec), options_(options), root_(options.sweep_directory),
        trials_dir_(root_ / "trials") {}

  int Run() {
    const std::optional<sigset_t> signals = StartSupervision([this] { return Prepare(); });
    if (!signals) return 1;
    Status supervised = Supervise(*signals);
    ClearTable();
    Status written = WriteOutputs();
    if (!supervised.ok()) {
      std::fprintf(stderr, "mlscale: %s\n", supervised.message().c_str());
      return 1;
    }
    if (!written.ok()) std::fprintf(stderr, "mlscale: %s\n", written.message().c_str());
    return Report();
  }

 private:
  // What the history depends on: a changed spec would make the stored trials another sweep's.
  json Fingerprint() const {
    return {{"metric", spec_.objective.metric},
            {"direction", api::DirectionName(spec_.objective.direction)},
            {"sampler", hpo::SamplerConfigToJson(spec_.sampler)},
            {"space", hpo::SpaceToJson(spec_.space)},
            {"trialTemplate", spec_.trial_template}};
  }

  Status Prepare() {
    std::error_code error;
    fs::create_directories(trials_dir_, error);
    if (error) return Internal("cannot create " + trials_dir_.string() + ": " + error.message());
    fs::path fingerprint_file = root_ / "sweep.json";
    json fingerprint = Fingerprint();
    if (auto stored = ReadSmallFile(fingerprint_file)) {
      json previous = json::parse(*stored, nullptr, /*allow_exceptions=*/false);
      if (previous != fingerprint) {
        return FailedPrecondition(root_.string() + " holds a sweep with another objective, algorithm, parameters or "
                                  "trial template: use another --dir, or remove it to start over");
      }
    } else {
      MLSCALE_RETURN_IF_ERROR(WriteAtomically(fingerprint_file, fingerprint.dump(2) + "\n"));
    }
    for (const auto& entry : fs::directory_iterator(trials_dir_, error)) {
      fs::path file = entry.path() / "state.json";
      auto text = ReadSmallFile(file);
      if (!text) continue;  // a trial folder made just before an interruption: it is suggested again
      json parsed = json::parse(*text, nullptr, /*allow_exceptions=*/false);
      auto trial = TrialFromJson(spec_.space, parsed);
      if (!trial.ok()) return DataLoss("cannot resume from " + file.string() + ": " + trial.status().message());
      if (entry.path().filename() != trial->Id()) {
        return DataLoss("cannot resume from " + file.string() + ": index " + trial->Id() + " is not its folder's");
      }
      trials_.push_back(std::move(*trial));
    }
    std::sort(trials_.begin(), trials_.end(), [](const Trial& a, const Trial& b) { return a.index < b.index; });
    for (std::size_t i = 0; i < trials_.size(); ++i) {
      if (trials_[i].index != static_cast<std::int64_t>(i)) {
        return DataLoss("cannot resume from " + trials_dir_.string() + ": trial " + std::to_string(i) + " is missing");
      }
    }
    std::printf("HyperparameterSweep %s: %s %s, %s search over %zu parameter%s, %lld trials (%lld at a time), "
                "folder %s\n",
                sweep_.name.c_str(), std::string(api::DirectionName(spec_.objective.direction)).c_str(),
                spec_.objective.metric.c_str(), std::string(api::AlgorithmName(spec_.sampler.algorithm)).c_str(),
                spec_.space.parameters.size(), spec_.space.parameters.size() == 1 ? "" : "s",
                static_cast<long long>(spec_.max_trials), static_cast<long long>(spec_.parallel_trials),
                root_.string().c_str());
    std::size_t done = std::count_if(trials_.begin(), trials_.end(), [](const Trial& t) { return Finished(t.state); });
    if (!trials_.empty()) {
      std::printf("resuming: %zu trial%s finished (not run again), %zu to continue from their checkpoints\n", done,
                  done == 1 ? "" : "s", trials_.size() - done);
    }
    std::fflush(stdout);
    return Status::Ok();
  }

  fs::path TrialDir(const Trial& trial) const { return trials_dir_ / trial.Id(); }

  Status Persist(const Trial& trial) const {
    return WriteAtomically(TrialDir(trial) / "state.json", trial.ToJson().dump(2) + "\n");
  }

  std::vector<hpo::Trial> SamplerHistory() const {
    std::vector<hpo::Trial> history;
    history.reserve(trials_.size());
    for (const auto& trial : trials_) history.push_back(trial.ForSampler());
    return history;
  }

  std::size_t Count(TrialState state) const {
    return std::count_if(trials_.begin(), trials_.end(), [&](const Trial& t) { return t.state == state; });
  }

  // The trial's manifest, written for `mlscale run -f`; a template that cannot make a
  // valid TrainingJob for this assignment fails the trial, with the parser's message.
  Status WriteTrialManifest(const Trial& trial) const {
    auto spec = api::SubstituteTemplate(spec_.trial_template, trial.assignment);
    if (!spec.ok()) return spec.status();
    json manifest = {{"apiVersion", api::kApiVersion},
                     {"kind", api::kTrainingJobKind},
                     {"metadata",
                      {{"name", trial.name},
                       {"labels", {{"mlscale.io/sweep", sweep_.name}}},
                       {"annotations", {{"mlscale.io/assignment", hpo::AssignmentToJson(trial.assignment).dump()}}}}},
                     {"spec", *spec}};
    auto parsed = api::TrainingJobFromJson(manifest, nullptr);
    if (!parsed.ok()) return parsed.status();
    return WriteAtomically(TrialDir(trial) / "trial.json", manifest.dump(2) + "\n");
  }

  Status StartTrial(Trial& trial) {
    std::error_code error;
    fs::create_directories(TrialDir(trial), error);
    if (error) return Internal("cannot create " + TrialDir(trial).string() + ": " + error.message());
    trial.stop_requested = false;
    trial.progress.reset();
    Status manifest = WriteTrialManifest(trial);
    if (!manifest.ok()) {
      trial.state = TrialState::kFailed;
      trial.reason = manifest.message();
      Announce(trial);
      return Persist(trial);
    }
    double timeout = std::chrono::duration<double>(options_.rendezvous_timeout).count();
    CommandSpec command{{options_.cli_program, "run", "-f", (TrialDir(trial) / "trial.json").string(), "--dir",
                         TrialDir(trial).string(), "--trainer", options_.trainer_program, "--timeout",
                         std::to_string(timeout)},
                        {},
                        (TrialDir(trial) / "run.log").string(),
                        /*process_group=*/0,
                        SIGTERM};
    auto process = ChildProcess::Start(command);
    if (!process.ok()) return process.status().WithContext("starting trial " + trial.Id());
    trial.process = std::move(*process);
    trial.state = TrialState::kRunning;
    trial.runs.emplace_back(NowMilliseconds(), 0);
    Announce(trial);
    return Persist(trial);
  }

  // Asks a running trial to stop: its trainers checkpoint and exit; killed after the grace.
  void StopTrial(Trial& trial, const std::string& why) {
    if (!trial.process || trial.stop_requested) return;
    trial.stop_requested = true;
    trial.stop_reason = why;
    trial.process->Signal(SIGTERM);
    trial.kill_at = Clock::now() + options_.stop_grace;
  }

  void TrialEnded(Trial& trial, int exit_code) {
    trial.process.reset();
    trial.runs.back().second = NowMilliseconds();
    ReadProgress(trial);
    if (interrupted_ && exit_code != 0) {
      trial.state = TrialState::kPending;  // resumes from its checkpoint next time
    } else if (exit_code == 0) {
      ReadObjective(trial);
    } else if (trial.stop_requested) {
      trial.state = TrialState::kEarlyStopped;
      trial.reason = trial.stop_reason;
    } else {
      trial.state = TrialState::kFailed;
      trial.reason = DescribeExitCode(exit_code) + "; see " + (TrialDir(trial) / "run.log").string();
    }
    trial.exit_code = exit_code;
    Announce(trial);
    Status persisted = Persist(trial);
    if (!persisted.ok()) std::fprintf(stderr, "mlscale: %s\n", persisted.message().c_str());
  }

  void ReadObjective(Trial& trial) {
    auto text = ReadSmallFile(TrialDir(trial) / "result.json");
    json result = text ? json::parse(*text, nullptr, /*allow_exceptions=*/false) : json();
    const json* metric = nullptr;
    if (result.is_object()) {
      auto metrics = result.find("metrics");
      if (metrics != result.end() && metrics->is_object()) {
        auto it = metrics->find(spec_.objective.metric);
        if (it != metrics->end() && it->is_number()) metric = &*it;
      }
    }
    if (metric == nullptr || !std::isfinite(metric->get<double>())) {
      trial.state = TrialState::kFailed;
      trial.reason = "its result has no number metrics." + spec_.objective.metric;
      return;
    }
    trial.state = TrialState::kSucceeded;
    trial.value = metric->get<double>();
  }

  // Reads the trial's progress; true when it gave a new intermediate value (the objective
  // at its latest evaluation, as the sweep controller reads it).
  bool ReadProgress(Trial& trial) {
    auto text = ReadSmallFile(TrialDir(trial) / "progress.json");
    if (!text) return false;
    const json written = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    auto progress = ParseProgress(written);
    if (!progress.ok()) return false;  // half a file or another writer's: the next tick reads it again
    trial.progress = *progress;
    std::optional<hpo::IntermediateValue> reading = api::ObjectiveReading(spec_.objective, written);
    if (!reading || (!trial.intermediate.empty() && reading->step <= trial.intermediate.back().step)) return false;
    trial.intermediate.push_back(*reading);
    return true;
  }

  void ConsiderEarlyStop(Trial& trial) {
    if (spec_.early_stopping.rule == hpo::EarlyStoppingRule::kNone || trial.stop_requested) return;
    auto decision =
        hpo::DecideEarlyStop(spec_.early_stopping, spec_.objective.direction, SamplerHistory(), trial.Id());
    if (decision.ok() && *decision == hpo::StopDecision::kStop) {
      StopTrial(trial, std::string(api::EarlyStoppingRuleName(spec_.early_stopping.rule)) + " rule at step " +
                           std::to_string(trial.intermediate.back().step) + " (" + spec_.objective.metric + " " +
                           Fixed(trial.intermediate.back().value, 4) + ")");
    }
  }

  std::optional<std::size_t> Best() const {
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < trials_.size(); ++i) {
      const Trial& t = trials_[i];
      if (t.state != TrialState::kSucceeded) continue;
      bool better = !best || (spec_.objective.direction == hpo::Direction::kMaximize ? *t.value > *trials_[*best].value
                                                                                     : *t.value < *trials_[*best].value);
      if (better) best = i;
    }
    return best;
  }

  // Starts trials while there is room: interrupted ones first, then new suggestions.
  Status Fill() {
    std::int64_t running = static_cast<std::int64_t>(Count(TrialState::kRunning));
    for (auto& trial : trials_) {
      if (running >= spec_.parallel_trials) return Status::Ok();
      if (trial.state == TrialState::kPending) {
        MLSCALE_RETURN_IF_ERROR(StartTrial(trial));
        if (trial.state == TrialState::kRunning) ++running;
      }
    }
    while (running < spec_.parallel_trials && static_cast<std::int64_t>(trials_.size()) < spec_.max_trials &&
           !exhausted_) {
      auto suggestions = hpo::Suggest(spec_.sampler, spec_.space, SamplerHistory(), 1);
      if (!suggestions.ok()) return suggestions.status().WithContext("suggesting a trial");
      if (suggestions->empty()) {
        exhausted_ = true;
        break;
      }
      Trial trial;
      trial.index = static_cast<std::int64_t>(trials_.size());
      trial.name = api::TrialName(sweep_.name, trial.index);
      trial.assignment = std::move(suggestions->front());
      trials_.push_back(std::move(trial));
      MLSCALE_RETURN_IF_ERROR(StartTrial(trials_.back()));
      if (trials_.back().state == TrialState::kRunning) ++running;
      if (CheckEnd()) break;  // a trial that failed to start may end the sweep
    }
    return Status::Ok();
  }

  // True once the sweep is decided (the running trials are then stopped).
  bool CheckEnd() {
    if (!outcome_.empty()) return true;
    if (static_cast<std::int64_t>(Count(TrialState::kFailed)) > spec_.max_failed_trials) {
      outcome_ = "Failed";
      outcome_reason_ = std::to_string(Count(TrialState::kFailed)) + " trials failed (spec.maxFailedTrials is " +
                        std::to_string(spec_.max_failed_trials) + ")";
    } else if (auto best = Best(); best && spec_.objective.GoalReached(*trials_[*best].value)) {
      outcome_ = "GoalReached";
      outcome_reason_ = "trial " + trials_[*best].Id() + " reached the goal";
    } else {
      return false;
    }
    for (auto& trial : trials_) StopTrial(trial, outcome_ == "Failed" ? "the sweep failed" : "the goal was reached");
    return true;
  }

  Status Supervise(const sigset_t& signals) {
    for (;;) {
      if (!interrupted_ && !CheckEnd()) MLSCALE_RETURN_IF_ERROR(Fill());
      if (Count(TrialState::kRunning) == 0) break;
      timespec tick{0, static_cast<long>(std::chrono::nanoseconds(kTick).count())};
      int signal = ::sigtimedwait(&signals, nullptr, &tick);
      if (signal == SIGINT || signal == SIGTERM) {
        ClearTable();
        if (!interrupted_) {
          interrupted_ = true;
          std::printf("stopping: the running trials checkpoint and exit (Ctrl-C again to kill them now); "
                      "the same command resumes\n");
          std::fflush(stdout);
          for (auto& trial : trials_) StopTrial(trial, "interrupted");
        } else {
          for (auto& trial : trials_) {
            if (trial.process) trial.process->Signal(SIGKILL);
          }
        }
      }
      auto now = Clock::now();
      for (auto& trial : trials_) {
        if (!trial.process) continue;
        if (auto code = trial.process->Poll()) {
          TrialEnded(trial, *code);
          continue;
        }
        if (now >= trial.kill_at) {
          trial.process->Signal(SIGKILL);
          trial.kill_at = Clock::time_point::max();
        }
        if (ReadProgress(trial)) {
          MLSCALE_RETURN_IF_ERROR(Persist(trial));
          ConsiderEarlyStop(trial);
        }
      }
      DrawTable();
    }
    return Status::Ok();
  }

  // One line per change without a terminal (the table shows it on one).
  void Announce(const Trial& trial) {
    if (options_.terminal) return;
    std::string line = "trial " + trial.Id() + " " + StateName(trial.state) + ": " + AssignmentText(trial.assignment);
    if (trial.value) line += " -> " + spec_.objective.metric + " " + Fixed(*trial.value, 4);
    if (!trial.reason.empty() && trial.state != TrialState::kSucceeded) line += " (" + trial.reason + ")";
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }

  std::string ProgressText(const Trial& trial) const {
    if (trial.state == TrialState::kSucceeded) return "done";
    if (!trial.progress || trial.progress->total_steps <= 0) return trial.state == TrialState::kRunning ? "starting" : "-";
    const Progress& p = *trial.progress;
    return std::to_string(100 * p.step / p.total_steps) + "% step " + std::to_string(p.step) + "/" +
           std::to_string(p.total_steps) + " loss " + Fixed(p.loss, 3);
  }

  std::vector<std::string> TableLines() const {
    std::vector<std::string> lines;
    char header[256];
    std::snprintf(header, sizeof header, "%-6s %-44s %-32s %-12s %s", "TRIAL", "PARAMETERS", "PROGRESS",
                  spec_.objective.metric.substr(0, 12).c_str(), "STATE");
    lines.emplace_back(header);
    std::vector<const Trial*> shown;
    for (const auto& t : trials_) shown.push_back(&t);
    if (shown.size() > kTableRows) shown.erase(shown.begin(), shown.end() - kTableRows);
    auto best = Best();
    for (const Trial* t : shown) {
      char line[512];
      std::string value = t->value ? Fixed(*t->value, 4) : "-";
      if (best && &trials_[*best] == t) value += " *";
      std::snprintf(line, sizeof line, "%-6s %-44s %-32s %-12s %s", t->Id().c_str(),
                    AssignmentText(t->assignment).substr(0, 44).c_str(), ProgressText(*t).substr(0, 32).c_str(),
                    value.c_str(), StateName(t->state));
      lines.emplace_back(line);
    }
    return lines;
  }

  void DrawTable() {
    if (!options_.terminal) {
      // Plain progress lines for the running trials every 10 s.
      auto now = Clock::now();
      if (now - last_plain_ < std::chrono::seconds(10)) return;
      last_plain_ = now;
      for (const auto& t : trials_) {
        if (t.state == TrialState::kRunning && t.progress) {
          std::printf("trial %s: %s\n", t.Id().c_str(), ProgressText(t).c_str());
        }
      }
      std::fflush(stdout);
      return;
    }
    ClearTable();
    auto lines = TableLines();
    for (const auto& line : lines) std::printf("%s\x1b[K\n", line.c_str());
    drawn_lines_ = lines.size();
    std::fflush(stdout);
  }

  // Moves the cursor back over the table and clears it, so a message can be printed.
  void ClearTable() {
    if (!options_.terminal || drawn_lines_ == 0) return;
    std::printf("\x1b[%zuA\x1b[J", drawn_lines_);
    drawn_lines_ = 0;
  }

  Status WriteOutputs() const {
    json history = json::array();
    std::string csv = "trial,name,state,value";
    for (const auto& p : spec_.space.parameters) csv += "," + p.name;
    csv += ",steps,reason\n";
    auto quoted = [](const std::string& text) {
      std::string out = "\"";
      for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
      return out + "\"";
    };
    std::vector<PlotPoint> points;
    for (const auto& t : trials_) {
      history.push_back(t.ToJson());
      csv += t.Id() + "," + t.name + "," + StateName(t.state) + "," + (t.value ? json(*t.value).dump() : "");
      for (const auto& p : spec_.space.parameters) {
        auto it = t.assignment.find(p.name);
        csv += "," + (it == t.assignment.end() ? "" : quoted(ValueText(it->second)));
      }
      csv += "," + (t.intermediate.empty() ? std::string() : std::to_string(t.intermediate.back().step)) + "," +
             quoted(t.reason) + "\n";
      PlotPoint point;
      point.kind = t.state == TrialState::kSucceeded  ? PlotPoint::Kind::kCompleted
                   : t.state == TrialState::kFailed ? PlotPoint::Kind::kFailed
                                                    : PlotPoint::Kind::kStopped;
      point.value = t.value;
      points.push_back(point);
    }
    MLSCALE_RETURN_IF_ERROR(WriteAtomically(root_ / "history.json", history.dump(2) + "\n"));
    MLSCALE_RETURN_IF_ERROR(WriteAtomically(root_ / "history.csv", csv));
    return WriteSweepPlot((root_ / "plot.png").string(), points,
                          spec_.objective.direction == hpo::Direction::kMaximize);
  }

  int Report() const {
    for (const auto& line : TableLines()) std::printf("%s\n", line.c_str());
    // maxTrials may have been lowered since the first run: never fewer than none to run.
    auto finished = static_cast<std::int64_t>(Count(TrialState::kSucceeded) + Count(TrialState::kEarlyStopped) +
                                              Count(TrialState::kFailed));
    std::printf("trials: %zu succeeded, %zu early-stopped, %zu failed, %lld to run\n", Count(TrialState::kSucceeded),
                Count(TrialState::kEarlyStopped), Count(TrialState::kFailed),
                static_cast<long long>(std::max<std::int64_t>(0, spec_.max_trials - finished)));
    if (auto best = Best()) {
      const Trial& t = trials_[*best];
      std::printf("best trial %s (%s): %s %s with %s\n  model    %s\n", t.Id().c_str(), t.name.c_str(),
                  spec_.objective.metric.c_str(), Fixed(*t.value, 4).c_str(), AssignmentText(t.assignment).c_str(),
                  (TrialDir(t) / "model").string().c_str());
    }
    std::printf("  history  %s, %s\n  plot     %s\n", (root_ / "history.csv").string().c_str(),
                (root_ / "history.json").string().c_str(), (root_ / "plot.png").string().c_str());
    if (interrupted_) {
      std::printf("interrupted: run the same command again to resume\n");
      std::fflush(stdout);
      return kExitInterrupted;
    }
    if (outcome_ == "Failed") {
      std::printf("the sweep failed: %s\n", outcome_reason_.c_str());
      std::fflush(stdout);
      return 1;
    }
    std::printf("the sweep succeeded: %s\n", outcome_ == "GoalReached"          ? outcome_reason_.c_str()
                                             : exhausted_ && static_cast<std::int64_t>(trials_.size()) < spec_.max_trials
                                                 ? "the search space is exhausted"
                                                 : "maxTrials trials are done");
    std::fflush(stdout);
    return 0;
  }

  const api::HyperparameterSweep& sweep_;
  const api::SweepSpec& spec_;
  const LocalSweepOptions& options_;
  fs::path root_, trials_dir_;
  std::vector<Trial> trials_;  // by index
  bool interrupted_ = false;
  bool exhausted_ = false;
  std::string outcome_;  // "", "Failed" or "GoalReached"
  std::string outcome_reason_;
  std::size_t drawn_lines_ = 0;
  Clock::time_point last_plain_{};
};

}  // namespace

int RunLocalSweep(const api::HyperparameterSweep& sweep, const LocalSweepOptions& options) {
  return LocalSweep(sweep, options).Run();
}

}  // namespace mlscale::launcher
