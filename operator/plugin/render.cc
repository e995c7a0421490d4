#include "render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "mlscale/kube/time_format.h"

namespace mlscale::plugin {
namespace {

using nlohmann::json;

const json& Path(const json& object, std::initializer_list<const char*> keys) {
  static const json kNull;
  const json* at = &object;
  for (const char* key : keys) {
    if (!at->is_object()) return kNull;
    auto it = at->find(key);
    if (it == at->end()) return kNull;
    at = &*it;
  }
  return *at;
}

std::string Text(const json& value, const std::string& fallback = "-") {
  if (value.is_string()) return value.get<std::string>().empty() ? fallback : value.get<std::string>();
  if (value.is_number()) return FormatNumber(value);
  return fallback;
}

std::optional<double> Number(const json& value) {
  if (!value.is_number()) return std::nullopt;
  double number = value.get<double>();
  if (!std::isfinite(number)) return std::nullopt;
  return number;
}

std::string Age(const json& time, Clock::time_point now) {
  if (!time.is_string()) return "-";
  std::optional<Clock::time_point> when = kube::ParseTime(time.get<std::string>());
  if (!when) return "-";
  return FormatDuration(std::chrono::duration<double>(now - *when).count());
}

std::string ConditionTrue(const json& object, const std::string& type) {
  for (const json& condition : Path(object, {"status", "conditions"}).is_array()
                                   ? Path(object, {"status", "conditions"})
                                   : json::array()) {
    if (condition.is_object() && condition.value("type", "") == type) return condition.value("status", "Unknown");
  }
  return "-";
}

}  // namespace

std::string ProgressBar(double percent, int width) {
  if (!std::isfinite(percent)) percent = 0;
  percent = std::clamp(percent, 0.0, 100.0);
  int filled = static_cast<int>(std::lround(percent * width / 100.0));
  char label[16];
  std::snprintf(label, sizeof label, " %3d%%", static_cast<int>(std::floor(percent)));
  return "[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.') +
         "]" + label;
}

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  long long total = std::llround(seconds);
  char text[32];
  if (total < 60) std::snprintf(text, sizeof text, "%llds", total);
  else if (total < 3600) std::snprintf(text, sizeof text, "%lldm%02llds", total / 60, total % 60);
  else if (total < 86400) std::snprintf(text, sizeof text, "%lldh%02lldm", total / 3600, total % 3600 / 60);
  else std::snprintf(text, sizeof text, "%lldd%02lldh", total / 86400, total % 86400 / 3600);
  return text;
}

std::string FormatNumber(const json& value, int significant) {
  std::optional<double> number = Number(value);
  if (!number) return "-";
  if (value.is_number_integer()) return std::to_string(value.get<long long>());
  char text[32];
  std::snprintf(text, sizeof text, "%.*g", significant, *number);
  return text;
}

std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string RenderStatus(const json& job, Clock::time_point now) {
  const json& status = Path(job, {"status"});
  const json& progress = Path(status, {"progress"});
  std::ostringstream out;
  out << "TrainingJob " << Text(Path(job, {"metadata", "namespace"})) << "/" << Text(Path(job, {"metadata", "name"}))
      << "\n";
  out << "  State:       " << Text(Path(status, {"state"}), "Pending");
  if (Path(status, {"reason"}).is_string()) out << " (" << Text(Path(status, {"reason"})) << ")";
  out << "\n";
  if (Path(status, {"message"}).is_string()) out << "  Message:     " << Text(Path(status, {"message"})) << "\n";
  std::optional<double> step = Number(Path(progress, {"step"}));
  std::optional<double> total = Number(Path(progress, {"totalSteps"}));
  std::optional<double> percent = Number(Path(progress, {"percent"}));
  if (!percent && step && total && *total > 0) percent = 100.0 * *step / *total;
  if (Text(Path(status, {"state"})) == "Succeeded") percent = 100.0;
  out << "  Progress:    " << ProgressBar(percent.value_or(0));
  if (step && total) out << "  step " << FormatNumber(Path(progress, {"step"})) << "/" << FormatNumber(Path(progress, {"totalSteps"}));
  if (Number(Path(progress, {"epoch"}))) {
    out << "  epoch " << FormatNumber(Path(progress, {"epoch"}));
    if (Number(Path(progress, {"epochs"}))) out << "/" << FormatNumber(Path(progress, {"epochs"}));
  }
  out << "\n";
  out << "  Loss:        " << FormatNumber(Path(progress, {"loss"})) << "\n";
  out << "  Samples/s:   " << FormatNumber(Path(progress, {"samplesPerSecond"})) << "\n";
  std::optional<double> eta = Number(Path(progress, {"etaSeconds"}));
  out << "  ETA:         " << (eta ? FormatDuration(*eta) : "-") << "\n";
  std::optional<double> elapsed = Number(Path(progress, {"elapsedSeconds"}));
  out << "  Elapsed:     " << (elapsed ? FormatDuration(*elapsed) : Age(Path(status, {"startTime"}), now)) << "\n";
  const json& workers = Path(status, {"workers"});
  out << "  Workers:     " << Text(Path(status, {"workersReady"})) << " ready";
  if (workers.is_object()) {
    out << " (running " << FormatNumber(Path(workers, {"running"})) << ", succeeded "
        << FormatNumber(Path(workers, {"succeeded"})) << ", failed " << FormatNumber(Path(workers, {"failed"})) << ")";
  }
  out << "\n";
  out << "  Restarts:    " << FormatNumber(Path(status, {"restarts"}).is_null() ? json(0) : Path(status, {"restarts"}));
  if (Number(Path(status, {"disruptions"})).value_or(0) > 0) {
    out << " (+" << FormatNumber(Path(status, {"disruptions"})) << " disruptions)";
  }
  out << "\n";
  const json& metrics = Path(status, {"result", "metrics"});
  if (metrics.is_object() && !metrics.empty()) {
    out << "  Result:     ";
    for (auto it = metrics.begin(); it != metrics.end(); ++it) out << " " << it.key() << "=" << FormatNumber(it.value());
    out << "\n";
  }
  const json& conditions = Path(status, {"conditions"});
  if (conditions.is_array() && !conditions.empty()) {
    std::vector<std::vector<std::string>> rows = {{"TYPE", "STATUS", "REASON", "AGE", "MESSAGE"}};
    for (const json& condition : conditions) {
      if (!condition.is_object()) continue;
      rows.push_back({Text(Path(condition, {"type"})), Text(Path(condition, {"status"})),
                      Text(Path(condition, {"reason"})), Age(Path(condition, {"lastTransitionTime"}), now),
                      Text(Path(condition, {"message"}), "")});
    }
    out << "Conditions:\n";
    std::istringstream table(Table(rows));
    for (std::string line; std::getline(table, line);) out << "  " << line << "\n";
  }
  return out.str();
}

std::vector<TrialRow> TrialRows(const json& sweep, const std::vector<json>& trials) {
  std::string metric = Text(Path(sweep, {"spec", "objective", "metric"}), "");
  bool maximize = Text(Path(sweep, {"spec", "objective", "direction"}), "") == "maximize";
  std::vector<TrialRow> rows;
  for (const json& trial : trials) {
    TrialRow row;
    row.name = Text(Path(trial, {"metadata", "name"}));
    row.index = Text(Path(trial, {"metadata", "labels", "mlscale.io/trial-index"}));
    row.state = Text(Path(trial, {"status", "state"}), "Pending");
    if (!metric.empty()) row.objective = Number(Path(trial, {"status", "result", "metrics", metric.c_str()}));
    const json& assignment = Path(trial, {"metadata", "annotations", "mlscale.io/assignment"});
    if (assignment.is_string()) {
      json parsed = json::parse(assignment.get<std::string>(), nullptr, /*allow_exceptions=*/false);
      row.assignment = parsed.is_discarded() ? assignment.get<std::string>() : parsed.dump();
    }
    rows.push_back(std::move(row));
  }
  auto index_of = [](const TrialRow& row) {
    try {
      return std::stoll(row.index);
    } catch (const std::exception&) {
      return static_cast<long long>(1) << 62;
    }
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const TrialRow& a, const TrialRow& b) {
    if (a.objective.has_value() != b.objective.has_value()) return a.objective.has_value();
    if (a.objective && *a.objective != *b.objective) return maximize ? *a.objective > *b.objective : *a.objective < *b.objective;
    return index_of(a) < index_of(b);
  });
  return rows;
}

std::string RenderTrials(const json& sweep, const std::vector<json>& trials) {
  std::string metric = Text(Path(sweep, {"spec", "objective", "metric"}));
  std::ostringstream out;
  out << "HyperparameterSweep " << Text(Path(sweep, {"metadata", "namespace"})) << "/"
      << Text(Path(sweep, {"metadata", "name"})) << ": " << Text(Path(sweep, {"status", "state"}), "Created")
      << ", objective " << Text(Path(sweep, {"spec", "objective", "direction"})) << " " << metric;
  if (Number(Path(sweep, {"spec", "objective", "goal"}))) {
    out << " (goal " << FormatNumber(Path(sweep, {"spec", "objective", "goal"})) << ")";
  }
  out << "\n";
  const json& best = Path(sweep, {"status", "bestTrial"});
  if (best.is_object()) out << "Best: " << Text(Path(best, {"name"})) << " = " << FormatNumber(Path(best, {"value"})) << "\n";
  std::vector<std::vector<std::string>> rows = {{"#", "TRIAL", "INDEX", "STATE", metric, "ASSIGNMENT"}};
  int rank = 0;
  for (const TrialRow& row : TrialRows(sweep, trials)) {
    rows.push_back({std::to_string(++rank), row.name, row.index, row.state,
                    row.objective ? FormatNumber(json(*row.objective)) : "-", row.assignment});
  }
  if (rows.size() == 1) return out.str() + "No trials yet.\n";
  return out.str() + Table(rows);
}

std::string RenderTop(const std::vector<json>& jobs, const std::vector<json>& sweeps,
                      const std::optional<std::vector<json>>& services) {
  std::ostringstream out;
  std::vector<std::vector<std::string>> rows = {
      {"TRAININGJOB", "STATE", "PROGRESS", "LOSS", "SAMPLES/S", "ETA", "WORKERS", "RESTARTS"}};
  for (const json& job : jobs) {
    const json& progress = Path(job, {"status", "progress"});
    std::optional<double> percent = Number(Path(progress, {"percent"}));
    rows.push_back({Text(Path(job, {"metadata", "name"})), Text(Path(job, {"status", "state"}), "Pending"),
                    percent ? FormatNumber(Path(progress, {"percent"})) + "%" : "-",
                    FormatNumber(Path(progress, {"loss"})), FormatNumber(Path(progress, {"samplesPerSecond"})),
                    Number(Path(progress, {"etaSeconds"})) ? FormatDuration(*Number(Path(progress, {"etaSeconds"}))) : "-",
                    Text(Path(job, {"status", "workersReady"})), FormatNumber(Path(job, {"status", "restarts"}))});
  }
  out << (rows.size() > 1 ? Table(rows) : "No TrainingJobs.\n") << "\n";
  rows = {{"SWEEP", "STATE", "TRIALS (run/ok/failed/stopped)", "BEST", "VALUE"}};
  for (const json& sweep : sweeps) {
    const json& trials = Path(sweep, {"status", "trials"});
    rows.push_back({Text(Path(sweep, {"metadata", "name"})), Text(Path(sweep, {"status", "state"}), "Created"),
                    FormatNumber(Path(trials, {"running"})) + "/" + FormatNumber(Path(trials, {"succeeded"})) + "/" +
                        FormatNumber(Path(trials, {"failed"})) + "/" + FormatNumber(Path(trials, {"earlyStopped"})),
                    Text(Path(sweep, {"status", "bestTrial", "name"})),
                    FormatNumber(Path(sweep, {"status", "bestTrial", "value"}))});
  }
  out << (rows.size() > 1 ? Table(rows) : "No HyperparameterSweeps.\n") << "\n";
  if (!services) {
    out << "InferenceServices: not installed (no inferenceservices.mlscale.io CRD)\n";
    return out.str();
  }
  rows = {{"INFERENCESERVICE", "READY", "URL", "TRAFFIC"}};
  for (const json& service : *services) {
    std::string traffic;
    const json& split = Path(service, {"status", "traffic"});
    if (split.is_array()) {
      for (const json& entry : split) {
        if (!traffic.empty()) traffic += " ";
        traffic += Text(Path(entry, {"revision"})) + "=" + FormatNumber(Path(entry, {"percent"})) + "%";
      }
    }
    rows.push_back({Text(Path(service, {"metadata", "name"})), ConditionTrue(service, "Ready"),
                    Text(Path(service, {"status", "url"})), traffic.empty() ? "-" : traffic});
  }
  out << (rows.size() > 1 ? Table(rows) : "No InferenceServices.\n");
  return out.str();
}

}  // namespace mlscale::plugin
