// mlscale: the command line. `mlscale run -f job.yaml` runs a TrainingJob locally
// (see mlscale/launcher/local_run.h); `mlscale validate -f job.yaml` only checks it.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "mlscale/api/training_job.h"
#include "mlscale/launcher/local_run.h"
#include "mlscale/launcher/process.h"
#include "mlscale/worker/config.h"

namespace {

namespace fs = std::filesystem;
using mlscale::StatusOr;

constexpr const char* kUsage = R"(usage: mlscale <command> [options]

commands:
  run -f FILE       run a TrainingJob manifest on this machine
  validate -f FILE  check a TrainingJob manifest and print what it asks for

options of run:
  --dir DIR         the run folder (default ./mlscale-runs/<metadata.name>): checkpoints,
                    model, logs; a second run with the same folder resumes
  --timeout SECONDS how long workers wait for each other at the start (default 60)
  --trainer PATH    the trainer program (default: mlscale-train next to mlscale, or in PATH;
                    MLSCALE_TRAINER)
)";

struct Arguments {
  std::string command;
  std::string file;
  std::string directory;
  double timeout_seconds = 60;
  std::string trainer;
};

StatusOr<Arguments> ParseArguments(const std::vector<std::string>& args) {
  Arguments parsed;
  if (args.empty()) return mlscale::InvalidArgument("no command");
  parsed.command = args[0];
  if (parsed.command != "run" && parsed.command != "validate") {
    return mlscale::InvalidArgument("unknown command '" + parsed.command + "'");
  }
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (i + 1 >= args.size()) return mlscale::InvalidArgument(flag + " needs a value");
    const std::string& value = args[++i];
    if (flag == "-f" || flag == "--file") {
      parsed.file = value;
    } else if (flag == "--dir" && parsed.command == "run") {
      parsed.directory = value;
    } else if (flag == "--trainer" && parsed.command == "run") {
      parsed.trainer = value;
    } else if (flag == "--timeout" && parsed.command == "run") {
      char* end = nullptr;
      parsed.timeout_seconds = std::strtod(value.c_str(), &end);
      if (end == value.c_str() || *end != '\0' || !(parsed.timeout_seconds > 0)) {
        return mlscale::InvalidArgument("--timeout needs a positive number of seconds");
      }
    } else {
      return mlscale::InvalidArgument("unknown option " + flag + " for " + parsed.command);
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

StatusOr<mlscale::api::TrainingJob> LoadJob(const std::string& file) {
  // spec.trainer is checked by the trainer's own parser, before any process starts.
  auto validate_trainer = [](const nlohmann::json& trainer) {
    return mlscale::worker::ParseTrainerConfig(trainer).status();
  };
  return mlscale::api::LoadTrainingJobFile(file, validate_trainer);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 1 : 0;
  }
  auto arguments = ParseArguments(args);
  if (!arguments.ok()) {
    std::fprintf(stderr, "mlscale: %s\n\n%s", arguments.status().message().c_str(), kUsage);
    return 1;
  }
  auto job = LoadJob(arguments->file);
  if (!job.ok()) {
    std::fprintf(stderr, "mlscale: %s\n", job.status().message().c_str());
    return 1;
  }
  if (arguments->command == "validate") {
    std::printf("%s: TrainingJob %s is valid: %lld worker%s, %s launcher, %s backend\n", arguments->file.c_str(),
                job->name.c_str(), static_cast<long long>(job->spec.replicas), job->spec.replicas == 1 ? "" : "s",
                std::string(mlscale::api::LauncherKindName(job->spec.launcher)).c_str(),
                std::string(mlscale::api::BackendName(job->spec.backend)).c_str());
    return 0;
  }
  mlscale::launcher::LocalRunOptions options;
  options.run_directory = arguments->directory.empty() ? fs::path("mlscale-runs") / job->name : fs::path(arguments->directory);
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
  options.launcher_program = *launcher;
  options.trainer_program = *trainer;
  options.rendezvous_timeout = std::chrono::milliseconds(static_cast<long long>(arguments->timeout_seconds * 1000));
  options.terminal = ::isatty(STDOUT_FILENO) != 0;
  return mlscale::launcher::RunLocal(*job, options);
}
