// The training loop of mlscale-train, as a library so tests can run several ranks in one
// process over real sockets.
//
// Data path: data loader thread (this rank's shard of every global batch) -> backend
// step (forward, backward, bucketed gradient AllReduce overlapped with the backward pass,
// optimizer) -> metrics and progress (rank 0) -> checkpoint (rank 0) -> final evaluation
// and model artifact (rank 0).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"
#include "mlscale/worker/communicator.h"
#include "mlscale/worker/config.h"

namespace mlscale::worker {

enum class BackendChoice { kAuto, kCpu, kGpu };
// "auto", "cpu" or "gpu".
StatusOr<BackendChoice> ParseBackendChoice(std::string_view text);
// Whether this build contains the GPU backend.
bool GpuBackendCompiled();

struct TrainOptions {
  BackendChoice backend = BackendChoice::kAuto;
  int local_rank = 0;              // which GPU this rank uses
  // CPU threads of this rank (each takes a slice of the rank's batch); 0: OMP_NUM_THREADS
  // when set, else one for small models (joining threads costs more than they save) and
  // cores / ranks otherwise.
  int threads = 0;
  // Shard the CPU optimizer step over the ranks (reduce-scatter, update a share, all-gather)
  // when the communicator does that cheaply (Communicator::ShardsCheaply); the same bits.
  // On by default since the shared-memory waits yield the CPU: 1 -> 2 processes on the
  // synthetic MLP 1.85x against 1.72x unsharded (tests/bench/results/trainer.md, session 15).
  bool shard_optimizer = true;
  std::string checkpoint_dir;      // empty: no checkpoints
  std::string output_dir;          // empty: no model artifact
  std::string progress_file;       // empty: none; else rewritten atomically ~1/s (rank 0)
  std::string data_dir;            // bundled data sets; empty: BundledDataDir()
  // Set asynchronously (SIGTERM): the ranks agree to stop after the current step, rank 0
  // writes a checkpoint, and Train returns with `stopped`.
  const std::atomic<bool>* stop_requested = nullptr;
  // Behave as if a stop was requested once this many steps are done (-1: never).
  int64_t stop_at_step = -1;
  // Receives the log lines of rank 0 (default: stderr).
  std::function<void(const std::string&)> log;
};

// Seconds of training steps spent in each phase, on one rank. With several threads the
// phases are those of the rank's first thread: forward is its forward pass and loss,
// backward lasts until every thread has its gradients. all_reduce_wait is the time after
// backward until the gradients are summed over the ranks (what the overlap did not hide);
// data is the wait for the next batch from the prefetch thread.
struct StepPhaseSeconds {
  double data = 0, forward = 0, backward = 0, all_reduce_wait = 0, optimizer = 0;
  nlohmann::json ToJson() const;
};

struct TrainResult {
  double loss = 0;             // mean training loss over the last epoch trained
  double test_loss = 0;
  double accuracy = 0;         // on the test split, 0..1
  int64_t steps = 0;           // optimizer steps done in total (including resumed ones)
  int64_t total_steps = 0;
  int64_t resumed_from_step = 0;
  double samples_per_second = 0;  // global, over the steps of this run
  double wall_seconds = 0;
  bool stopped = false;        // ended early on request, checkpoint written
  std::string backend, communicator, dataset;
  std::string transport;  // what AllReduce travels over (Communicator::transport)
  int world_size = 1;
  std::vector<double> step_losses;  // global mean loss of each step of this run
  StepPhaseSeconds phase_seconds;   // rank 0's, summed over the steps of this run
  // The final JSON result (MLSCALE_RESULT_FILE, termination message): "metrics"
  // {testAccuracy, testLoss, loss} (what an operator or a sweep reads), and loss,
  // accuracy, steps, samplesPerSecond, wallSeconds, phaseSeconds, ...
  nlohmann::json ToJson() const;
};

// Trains with `communicator` (all ranks call it together). Errors: InvalidArgument,
// NotFound or DataLoss for bad config or data; Aborted ("rank N ...") when a peer failed.
StatusOr<TrainResult> Train(const TrainerConfig& config, Communicator& communicator, const TrainOptions& options);

}  // namespace mlscale::worker
