// Local mode: `mlscale run -f job.yaml` runs a TrainingJob on this machine through the
// same launcher the pods run: `replicas` local processes of mlscale-launch (rendezvous
// on 127.0.0.1) or one mpirun (launcher: mpi), each running mlscale-train. Shows the
// trainer's progress, keeps checkpoints, the model and each rank's log in a run
// folder, and prints a summary. Ctrl-C asks every trainer to checkpoint and stop; the
// same command then resumes. A rank that fails is named, and the others are stopped.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "mlscale/api/training_job.h"

namespace mlscale::launcher {

struct LocalRunOptions {
  // Holds checkpoints/, model/, logs/, trainer.json, progress.json, result.json.
  std::filesystem::path run_directory;
  std::string launcher_program;  // mlscale-launch
  std::string trainer_program;   // mlscale-train
  std::chrono::milliseconds rendezvous_timeout{std::chrono::seconds(60)};
  // How long ranks may take to stop by themselves (after another failed, or after
  // Ctrl-C) before they are killed.
  std::chrono::milliseconds stop_grace{std::chrono::seconds(30)};
  bool terminal = false;  // draw a progress bar (else plain progress lines)
};

// The paths inside a run folder.
struct RunLayout {
  explicit RunLayout(const std::filesystem::path& root);
  std::filesystem::path root, checkpoints, model, logs, trainer_config, progress, result, hostfile;
};

// Runs the job and returns the CLI's exit code: 0 when training finished, 130 after
// Ctrl-C (checkpoint kept), 1 when a rank failed or nothing could start. Prints to
// stdout (progress, summary) and stderr (errors). Call from the main thread.
int RunLocal(const api::TrainingJob& job, const LocalRunOptions& options);

}  // namespace mlscale::launcher
