// mlscale-train: the program inside every worker pod.
//
//   mlscale-train --config FILE [--checkpoint-dir DIR] [--output-dir DIR] [--backend auto|cpu|gpu]
//
// Environment (set by the launcher; see communicator.h for the peer variables):
//   WORLD_SIZE, RANK, LOCAL_RANK, MLSCALE_PEERS, MLSCALE_LISTEN_FD, MLSCALE_RUN_ID
//   MLSCALE_RESULT_FILE      rank 0's final JSON result, written atomically (the launcher serves it)
//   MLSCALE_TERMINATION_LOG  final JSON result or error (default /dev/termination-log when writable)
//   MLSCALE_PROGRESS_FILE    live progress JSON, rewritten about once a second by rank 0
//   MLSCALE_DATA_DIR         where bundled data sets are
//   OMP_NUM_THREADS          compute threads per rank (default: see TrainOptions::threads)
//   MLSCALE_SHARD_OPTIMIZER  0: do not shard the CPU optimizer step (default 1; TrainOptions::shard_optimizer)
// Exit codes: 0 success; 1 bad config or data; 2 a peer failed ("rank N ..."); 143 after a
// clean SIGTERM/SIGINT (all ranks stop at the same step, rank 0 writes a checkpoint).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string_view>

#include <boost/program_options.hpp>

#include "mlscale/worker/checkpoint.h"
#include "mlscale/worker/communicator.h"
#include "mlscale/worker/config.h"
#include "mlscale/worker/trainer.h"

namespace {

using namespace mlscale;
using namespace mlscale::worker;
namespace po = boost::program_options;

std::atomic<bool> stop_requested{false};
extern "C" void OnStopSignal(int) { stop_requested.store(true); }

constexpr int kExitBadInput = 1, kExitPeerFailed = 2, kExitStopped = 143;

struct Arguments {
  std::string config, checkpoint_dir, output_dir, backend = "auto";
  bool help = false;
};

// The flags, described once: parsing and the --help text both come from here.
po::options_description Flags(Arguments& args) {
  po::options_description flags(
      "usage: mlscale-train --config FILE [--checkpoint-dir DIR] [--output-dir DIR] [--backend auto|cpu|gpu]\n\n"
      "Trains one rank of a data-parallel job; the launcher sets the rank's environment.\n\nOptions");
  flags.add_options()
      ("help,h", po::bool_switch(&args.help), "print this help and exit")
      ("config", po::value(&args.config)->value_name("FILE"), "trainer configuration (JSON), required")
      ("checkpoint-dir", po::value(&args.checkpoint_dir)->value_name("DIR"),
       "where checkpoints are written and resumed from (none: no checkpoints)")
      ("output-dir", po::value(&args.output_dir)->value_name("DIR"), "where rank 0 writes the trained model")
      ("backend", po::value(&args.backend)->value_name("auto|cpu|gpu")->default_value("auto"),
       "compute backend (gpu needs a build with CUDA, cuBLAS and NCCL)");
  return flags;
}

std::string HelpText() {
  Arguments unused;
  std::ostringstream text;
  text << Flags(unused);
  return text.str();
}

StatusOr<Arguments> ParseArguments(int argc, char** argv) {
  Arguments args;
  po::options_description flags = Flags(args);
  try {
    po::variables_map values;
    po::store(po::command_line_parser(argc, argv).options(flags).run(), values);
    po::notify(values);
  } catch (const po::error& error) {
    return InvalidArgument(error.what());
  }
  if (!args.help && args.config.empty()) return InvalidArgument("--config is required");
  return args;
}

std::string TerminationLogPath() {
  if (const char* path = std::getenv("MLSCALE_TERMINATION_LOG")) return path;
  if (::access("/dev/termination-log", W_OK) == 0) return "/dev/termination-log";
  return "";
}

void WriteTerminationLog(const nlohmann::json& message) {
  const std::string path = TerminationLogPath();
  if (path.empty()) return;
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) return;
  std::fputs((message.dump() + "\n").c_str(), file);
  std::fclose(file);
}

int ExitCodeFor(const Status& status) {
  return status.code() == StatusCode::kAborted ? kExitPeerFailed : kExitBadInput;
}

int Fail(const Status& status, Communicator* communicator, int rank) {
  const int code = ExitCodeFor(status);
  std::fprintf(stderr, "mlscale-train: rank %d: error: %s\n", rank, status.message().c_str());
  WriteTerminationLog({{"error", status.message()}, {"exitCode", code}, {"rank", rank}});
  if (communicator != nullptr) (void)communicator->Shutdown(status);
  return code;
}

// MLSCALE_SHARD_OPTIMIZER: `fallback` when unset or empty, else 0 or 1.
StatusOr<bool> ShardOptimizerVariable(bool fallback) {
  const char* shard = std::getenv("MLSCALE_SHARD_OPTIMIZER");
  if (shard == nullptr || *shard == '\0') return fallback;
  const std::string_view value = shard;
  if (value != "0" && value != "1") {
    return InvalidArgument("MLSCALE_SHARD_OPTIMIZER='" + std::string(value) + "' is neither '0' nor '1'");
  }
  return value == "1";
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGTERM, OnStopSignal);
  std::signal(SIGINT, OnStopSignal);
  // Flags first: --help needs no rank environment.
  auto args = ParseArguments(argc, argv);
  if (args.ok() && args->help) {
    std::fputs(HelpText().c_str(), stdout);
    return 0;
  }
  auto environment = ReadProcessEnvironment();
  if (!environment.ok()) return Fail(environment.status(), nullptr, 0);
  const int rank = environment->rank;
  if (!args.ok()) {
    std::fprintf(stderr, "%s\n", HelpText().c_str());
    return Fail(args.status(), nullptr, rank);
  }
  auto backend = ParseBackendChoice(args->backend);
  if (!backend.ok()) return Fail(backend.status(), nullptr, rank);
  if (*backend == BackendChoice::kGpu && !GpuBackendCompiled()) {
    return Fail(InvalidArgument("--backend gpu: this mlscale-train was built without the GPU backend "
                                "(CUDA, cuBLAS and NCCL were not found at build time)"),
                nullptr, rank);
  }
  // The config is checked before connecting, so a bad one fails fast on every rank.
  auto config = LoadTrainerConfigFile(args->config);
  if (!config.ok()) return Fail(config.status(), nullptr, rank);
  auto shard_optimizer = ShardOptimizerVariable(TrainOptions{}.shard_optimizer);
  if (!shard_optimizer.ok()) return Fail(shard_optimizer.status(), nullptr, rank);
  auto communicator = CreateCommunicator(*environment);
  if (!communicator.ok()) return Fail(communicator.status(), nullptr, rank);

  TrainOptions options;
  options.backend = *backend;
  options.local_rank = environment->local_rank;
  options.checkpoint_dir = args->checkpoint_dir;
  options.output_dir = args->output_dir;
  if (const char* progress = std::getenv("MLSCALE_PROGRESS_FILE")) options.progress_file = progress;
  options.shard_optimizer = *shard_optimizer;
  options.stop_requested = &stop_requested;
  auto result = Train(*config, **communicator, options);
  if (!result.ok()) return Fail(result.status(), communicator->get(), rank);
  if (rank == 0) {
    nlohmann::json summary = result->ToJson();
    if (!args->output_dir.empty()) summary["modelPath"] = args->output_dir;
    std::printf("%s\n", summary.dump().c_str());
    std::fflush(stdout);
    WriteTerminationLog(summary);
    if (const char* path = std::getenv("MLSCALE_RESULT_FILE"); path != nullptr && *path != '\0' && !result->stopped) {
      Status written = WriteFileAtomically(path, summary.dump() + "\n");
      if (!written.ok()) std::fprintf(stderr, "mlscale-train: warning: %s\n", written.message().c_str());
    }
  }
  (void)(*communicator)->Shutdown(Status::Ok());
  return result->stopped ? kExitStopped : 0;
}
