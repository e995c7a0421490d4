// Local mode of a HyperparameterSweep: `mlscale sweep -f sweep.yaml` runs its trials on
// this machine, each a local training run (`mlscale run` on the trial's TrainingJob, in a
// folder of its own), parallelTrials at a time, suggested by the hpo library from the
// history so far.
//
// The sweep folder (`./mlscale-runs/<metadata.name>`, or --dir):
//   sweep.json                 the sweep's spec as first run (a changed spec is refused)
//   trials/<i>/trial.json      trial i's TrainingJob (the template with its assignment)
//   trials/<i>/state.json      {index, name, assignment, state, value, intermediate,
//                               startTime, endTime, exitCode, reason}: written atomically
//                               at every change; the history is these files
//   trials/<i>/run.log         what `mlscale run` printed; logs/, checkpoints/, model/ beside
//   history.csv, history.json  every trial at the end (and after Ctrl-C)
//   plot.png                   objective per trial and the best so far
//
// Objective: metrics[objective.metric] of the trial's result file (CONTRACTS.md 2); a trial
// that ends without it failed. Early stopping (median, ASHA) reads each running trial's
// progress file: its training loss at its step is the intermediate value (lower is better);
// a trial judged bad gets SIGTERM (its trainers checkpoint and exit) and is EarlyStopped,
// which the sampler sees as stopped. The sweep ends when maxTrials trials are done, a trial
// reaches the goal (the running ones are stopped the same way), the space is exhausted, or
// more than maxFailedTrials trials failed. Ctrl-C stops the running trials (they keep their
// checkpoints) and the same command resumes: finished trials are read back, never rerun,
// an interrupted one continues from its checkpoint, and Suggest is deterministic for the
// same history.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "mlscale/api/sweep.h"

namespace mlscale::launcher {

struct LocalSweepOptions {
  std::filesystem::path sweep_directory;
  std::string cli_program;      // mlscale itself: each trial is `mlscale run`
  std::string trainer_program;  // mlscale-train, passed on to every trial
  std::chrono::milliseconds rendezvous_timeout{std::chrono::seconds(60)};
  // How long a trial may take to stop after SIGTERM (early stop, goal, Ctrl-C) before it is killed.
  std::chrono::milliseconds stop_grace{std::chrono::seconds(60)};
  bool terminal = false;  // redraw a table in place (else plain lines at each change)
};

// Runs the sweep and returns the CLI's exit code: 0 when it completed (its best trial is
// printed), 130 after Ctrl-C (resumable), 1 when it failed (too many failed trials) or
// could not start. Call from the main thread.
int RunLocalSweep(const api::HyperparameterSweep& sweep, const LocalSweepOptions& options);

}  // namespace mlscale::launcher
