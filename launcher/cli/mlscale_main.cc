// mlscale: the command line. `mlscale run -f job.yaml` runs a TrainingJob locally
// (see mlscale/launcher/local_run.h), `mlscale sweep -f sweep.yaml` a HyperparameterSweep
// (mlscale/launcher/local_sweep.h); `mlscale validate -f job.yaml` only checks it (a
// TrainingJob or a HyperparameterSweep).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "mlscale/api/inference_service.h"
#include "mlscale/api/manifest.h"
#include "mlscale/api/sweep.h"
#include "mlscale/api/training_job.h"
#include "mlscale/launcher/local_run.h"
#include "mlscale/launcher/local_sweep.h"
#include "mlscale/launcher/process.h"
#include "mlscale/worker/config.h"

namespace {

namespace fs = std::filesystem;
using mlscale::StatusOr;

namespace po = boost::program_options;

struct Arguments {
  std::string command;
  std::string file;
  std::string directory;
  double timeout_seconds = 60;
  std::string trainer;
  bool help = false;
};

// The options of each command; --help text is generated from them.
po::options_description CommandOptions(const std::string& command) {
  po::options_description options("options of " + command, 100, 40);
  options.add_options()("file,f", po::value<std::string>()->value_name("FILE"), "the manifest (TrainingJob; validate also takes a HyperparameterSweep)")(
      "help,h", "print this help and exit");
  if (command == "run" || command == "sweep") {
    options.add_options()("dir", po::value<std::string>()->value_name("DIR"),
                          command == "run"
                              ? "the run folder (default ./mlscale-runs/<metadata.name>): checkpoints, model, logs; a "
                                "second run with the same folder resumes"
                              : "the sweep folder (default ./mlscale-runs/<metadata.name>): every trial's run folder, "
                                "the history, the plot; a second run with the same folder resumes")(
        "timeout", po::value<double>()->value_name("SECONDS"),
        "how long workers wait for each other at the start (default 60)")(
        "trainer", po::value<std::string>()->value_name("PATH"),
        "the trainer program (default: mlscale-train next to mlscale, or in PATH; MLSCALE_TRAINER)");
  }
  return options;
}

std::string Usage() {
  std::ostringstream usage;
  usage << "usage: mlscale <command> [options]\n\n"
           "commands:\n"
           "  run -f FILE       run a TrainingJob manifest on this machine\n"
           "  sweep -f FILE     run a HyperparameterSweep manifest on this machine (trials as local runs)\n"
           "  validate -f FILE  check a TrainingJob, HyperparameterSweep or InferenceService manifest and print what it asks for\n\n"
        << CommandOptions("run") << "\n"
        << CommandOptions("sweep") << "\n"
        << CommandOptions("validate");
  return usage.str();
}

StatusOr<Arguments> ParseArguments(const std::vector<std::string>& args) {
  Arguments parsed;
  if (args.empty()) return mlscale::InvalidArgument("no command");
  parsed.command = args[0];
  if (parsed.command != "run" && parsed.command != "sweep" && parsed.command != "validate") {
    return mlscale::InvalidArgument("unknown command '" + parsed.command + "'");
  }
  po::variables_map values;
  try {
    auto style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    std::vector<std::string> rest(args.begin() + 1, args.end());
    // The parsed options point into the description: it must outlive them.
    const po::options_description description = CommandOptions(parsed.command);
    auto options = po::command_line_parser(rest).options(description).style(style).run();
    for (const auto& option : options.options) {
      if (option.position_key >= 0 && !option.value.empty()) {
        return mlscale::InvalidArgument("unexpected argument '" + option.value.front() + "' for " + parsed.command);
      }
    }
    po::store(options, values);
  } catch (const po::unknown_option& e) {
    return mlscale::InvalidArgument("unknown option " + e.get_option_name() + " for " + parsed.command);
  } catch (const po::invalid_option_value& e) {
    return mlscale::InvalidArgument(std::string(e.what()));
  } catch (const po::error& e) {
    return mlscale::InvalidArgument(e.what());
  }
  if (values.count("help") != 0) {
    parsed.help = true;
    return parsed;
  }
  if (values.count("file") != 0) parsed.file = values["file"].as<std::string>();
  if (values.count("dir") != 0) parsed.directory = values["dir"].as<std::string>();
  if (values.count("trainer") != 0) parsed.trainer = values["trainer"].as<std::string>();
  if (values.count("timeout") != 0) {
    parsed.timeout_seconds = values["timeout"].as<double>();
    if (!(parsed.timeout_seconds > 0) || parsed.timeout_seconds > 86400) {
      return mlscale::InvalidArgument("--timeout needs a positive number of seconds (at most 86400)");
    }
  }
  if (parsed.file.empty()) return mlscale::InvalidArgument(parsed.command + " needs -f FILE");
  return parsed;
}

// A program shipped with mlscale: `override` if given, else next to this executable,
// else in the build tree's `sibling_folder`, else in PATH; an error naming where it
// looked when it is in none of them.
StatusOr<std::string> FindProgram(const std::string& name, const std::string& override,
                                  const std::string& sibling_folder) {
  std::vector<fs::path> candidates;
  if (!override.empty()) {
    candidates.emplace_back(override);
  } else {
    fs::path here = mlscale::launcher::ExecutableDirectory();
    candidates = {here / name, here / ".." / sibling_folder / name};
    const char* path = std::getenv("PATH");
    std::stringstream folders(path != nullptr ? path : "");
    for (std::string folder; std::getline(folders, folder, ':');) {
      if (!folder.empty()) candidates.push_back(fs::path(folder) / name);
    }
  }
  for (const auto& candidate : candidates) {
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) {
      return fs::weakly_canonical(candidate).string();
    }
  }
  if (!override.empty()) return mlscale::NotFound(override + " is not an executable program");
  return mlscale::NotFound(name + " not found next to mlscale, in ../" + sibling_folder + " or in PATH (build it: " +
                           "cmake --build build --target " + name + ")");
}

// spec.trainer (of a job or of a sweep's trial template) is checked by the trainer's own
// parser, before any process starts.
mlscale::Status ValidateTrainer(const nlohmann::json& trainer) {
  return mlscale::worker::ParseTrainerConfig(trainer).status();
}

// A manifest of either kind, read once: a TrainingJob or a HyperparameterSweep.
struct Manifest {
  std::optional<mlscale::api::TrainingJob> job;
  std::optional<mlscale::api::HyperparameterSweep> sweep;
  std::optional<mlscale::api::InferenceService> service;  // validate only: it runs on a cluster
};

StatusOr<Manifest> LoadManifest(const std::string& file) {
  auto text = mlscale::api::ReadManifestFile(file);
  if (!text.ok()) return text.status().WithContext(file);
  auto document = mlscale::api::ParseYamlDocument(*text);
  if (!document.ok()) return document.status().WithContext(file);
  Manifest manifest;
  const std::string kind = mlscale::api::ManifestKind(*document);
  if (kind == mlscale::api::kInferenceServiceKind) {
    auto service = mlscale::api::InferenceServiceFromJson(*document);
    if (!service.ok()) return service.status().WithContext(file);
    manifest.service = std::move(*service);
  } else if (kind == mlscale::api::kSweepKind) {
    auto sweep = mlscale::api::SweepFromJson(*document, ValidateTrainer);
    if (!sweep.ok()) return sweep.status().WithContext(file);
    manifest.sweep = std::move(*sweep);
  } else {
    auto job = mlscale::api::TrainingJobFromJson(*document, ValidateTrainer);
    if (!job.ok()) return job.status().WithContext(file);
    manifest.job = std::move(*job);
  }
  return manifest;
}

void PrintValidSweep(const std::string& file, const mlscale::api::HyperparameterSweep& sweep) {
  const auto& spec = sweep.spec;
  std::printf("%s: HyperparameterSweep %s is valid: %s %s, %zu parameter%s, %s search, %lld trial%s (%lld at a time), "
              "early stopping %s\n",
              file.c_str(), sweep.name.c_str(), std::string(mlscale::api::DirectionName(spec.objective.direction)).c_str(),
              spec.objective.metric.c_str(), spec.space.parameters.size(), spec.space.parameters.size() == 1 ? "" : "s",
              std::string(mlscale::api::AlgorithmName(spec.sampler.algorithm)).c_str(),
              static_cast<long long>(spec.max_trials), spec.max_trials == 1 ? "" : "s",
              static_cast<long long>(spec.parallel_trials),
              std::string(mlscale::api::EarlyStoppingRuleName(spec.early_stopping.rule)).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(Usage().c_str(), args.empty() ? stderr : stdout);
    return args.empty() ? 1 : 0;
  }
  auto arguments = ParseArguments(args);
  if (!arguments.ok()) {
    std::fprintf(stderr, "mlscale: %s\n\n%s", arguments.status().message().c_str(), Usage().c_str());
    return 1;
  }
  if (arguments->help) {
    std::cout << "usage: mlscale " << arguments->command << " -f FILE [options]\n\n"
              << CommandOptions(arguments->command);
    return 0;
  }
  auto manifest = LoadManifest(arguments->file);
  if (!manifest.ok()) {
    std::fprintf(stderr, "mlscale: %s\n", manifest.status().message().c_str());
    return 1;
  }
  if (manifest->service) {
    if (arguments->command != "validate") {
      std::fprintf(stderr, "mlscale: %s: an InferenceService runs on a cluster (kubectl apply -f); mlscale validate checks it\n",
                   arguments->file.c_str());
      return 1;
    }
    const auto& spec = manifest->service->spec;
    const auto& model = spec.model;
    std::string source = model.FromTrainingJob() ? "the TrainingJob " + model.training_job
                                                 : "volume " + model.volume + (model.path.empty() ? "" : ":" + model.path);
    std::string scaling = spec.autoscaling ? "autoscaling on " + spec.autoscaling->metric + " (" +
                                                 std::to_string(spec.autoscaling->min_replicas) + ".." +
                                                 (spec.autoscaling->max_replicas == 0 ? std::string("unbounded")
                                                      : std::to_string(spec.autoscaling->max_replicas)) + " replicas)"
                                           : std::to_string(spec.replicas) + " replica" + (spec.replicas == 1 ? "" : "s");
    std::printf("%s: InferenceService %s is valid: serves %s, %s%s\n", arguments->file.c_str(),
                manifest->service->name.c_str(), source.c_str(), scaling.c_str(),
                spec.canary ? (", canary at " + std::to_string(spec.canary->traffic_percent) + " %").c_str() : "");
    return 0;
  }
  if (arguments->command == "validate" && manifest->sweep) {
    PrintValidSweep(arguments->file, *manifest->sweep);
    return 0;
  }
  if (arguments->command == "sweep" && !manifest->sweep) {
    std::fprintf(stderr, "mlscale: %s: sweep needs a HyperparameterSweep (this is a TrainingJob: mlscale run -f)\n",
                 arguments->file.c_str());
    return 1;
  }
  if (arguments->command == "run" && !manifest->job) {
    std::fprintf(stderr, "mlscale: %s: %s needs a TrainingJob (this is a HyperparameterSweep)\n",
                 arguments->file.c_str(), arguments->command.c_str());
    return 1;
  }
  if (arguments->command == "validate") {
    const mlscale::api::TrainingJob* job = &*manifest->job;
    std::printf("%s: TrainingJob %s is valid: %lld worker%s, %s launcher, %s backend\n", arguments->file.c_str(),
                job->name.c_str(), static_cast<long long>(job->spec.replicas), job->spec.replicas == 1 ? "" : "s",
                std::string(mlscale::api::LauncherKindName(job->spec.launcher)).c_str(),
                std::string(mlscale::api::BackendName(job->spec.backend)).c_str());
    return 0;
  }
  const char* trainer_variable = std::getenv("MLSCALE_TRAINER");
  auto launcher = FindProgram("mlscale-launch", "", "launcher");
  auto trainer = FindProgram("mlscale-train", !arguments->trainer.empty() ? arguments->trainer
                                              : trainer_variable != nullptr ? trainer_variable : "",
                             "worker");
  for (const auto* program : {&launcher, &trainer}) {
    if (!program->ok()) {
      std::fprintf(stderr, "mlscale: %s\n", program->status().message().c_str());
      return 1;
    }
  }
  const std::string& name = manifest->sweep ? manifest->sweep->name : manifest->job->name;
  fs::path directory = arguments->directory.empty() ? fs::path("mlscale-runs") / name : fs::path(arguments->directory);
  auto timeout = std::chrono::milliseconds(static_cast<long long>(arguments->timeout_seconds * 1000));
  bool terminal = ::isatty(STDOUT_FILENO) != 0;
  if (manifest->sweep) {
    mlscale::launcher::LocalSweepOptions options;
    options.sweep_directory = directory;
    // Each trial is `mlscale run` (this program) on the trial's TrainingJob.
    options.cli_program = fs::read_symlink("/proc/self/exe").string();
    options.trainer_program = *trainer;
    options.rendezvous_timeout = timeout;
    options.terminal = terminal;
    return mlscale::launcher::RunLocalSweep(*manifest->sweep, options);
  }
  mlscale::launcher::LocalRunOptions options;
  options.run_directory = directory;
  options.launcher_program = *launcher;
  options.trainer_program = *trainer;
  options.rendezvous_timeout = timeout;
  options.terminal = terminal;
  return mlscale::launcher::RunLocal(*manifest->job, options);
}
