// mlscale-launch: what a worker pod (or a local process) runs. It reads the torchrun
// variables, finds its peers and runs the command after "--" (normally mlscale-train):
//
//   rendezvous (default)  WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT from the environment;
//                         binds the data-plane socket, runs the rendezvous, then the command
//                         with WORLD_SIZE, RANK, LOCAL_RANK, MLSCALE_PEERS, MLSCALE_LISTEN_FD,
//                         MLSCALE_RUN_ID (and the torchrun variables) set.
//   mpi                   waits until the hosts of --hostfile accept connections on the ssh
//                         port, then runs `mpirun --hostfile FILE -np N COMMAND` (over ssh
//                         with the job's key from --ssh-dir when that folder has one).
//   mpi-worker            no command: runs sshd for the mpi launcher (see mpi.h).
//   env                   no rendezvous: the command (a user's, e.g. a PyTorch script) gets
//                         the torchrun variables WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE,
//                         GROUP_RANK, MASTER_ADDR, MASTER_PORT.
// The command runs as a child; signals are forwarded and its exit code is the launcher's.
// In every mode the child gets MLSCALE_PROGRESS_FILE and MLSCALE_RESULT_FILE, and rank 0's
// launcher (mpi: the launcher) serves them on GET /v1/progress (progress_server.h) and
// copies the result to the termination log when the child ends.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"
#include "mlscale/launcher/rendezvous.h"

namespace mlscale::launcher {

enum class LaunchMode { kRendezvous, kMpi, kMpiWorker, kEnv };

struct LaunchOptions {
  bool help = false;  // --help / -h: print LaunchUsage() and do nothing else (nothing else is read)
  LaunchMode mode = LaunchMode::kRendezvous;
  std::int64_t world_size = 1;
  std::int64_t rank = 0;
  std::int64_t local_rank = 0;        // LOCAL_RANK: the rank among this host's processes
  std::int64_t local_world_size = 1;  // LOCAL_WORLD_SIZE
  std::string master_addr = "127.0.0.1";
  std::uint16_t master_port = 29500;
  std::string run_id;  // --run-id / MLSCALE_RUN_ID; default "<MASTER_ADDR>:<MASTER_PORT>"
  // MLSCALE_RUN_TOKEN (environment only): presented at the rendezvous, inherited by the
  // command for its data plane; empty: the job has none.
  std::string run_token;
  std::string bind_address = "0.0.0.0";  // --bind-address: rendezvous and data plane
  std::string advertise_address;         // --advertise-address / MLSCALE_ADVERTISE_ADDRESS
  std::uint16_t data_port = 0;           // --data-port / MLSCALE_DATA_PORT (0: any free port)
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // --timeout SECONDS / MLSCALE_RENDEZVOUS_TIMEOUT
  // Progress and result (progress_server.h)
  std::uint16_t progress_port = 29501;  // --progress-port / MLSCALE_PROGRESS_PORT (0: any free port)
  std::string state_dir = "/tmp/mlscale";  // --state-dir / MLSCALE_STATE_DIR: writable, for the files below
  std::string progress_file;  // MLSCALE_PROGRESS_FILE; default <state dir>/progress.json
  std::string result_file;    // MLSCALE_RESULT_FILE; default <state dir>/result.json
  // MLSCALE_TERMINATION_LOG; default /dev/termination-log when it is writable, else none.
  std::string termination_log;
  // mpi mode
  std::string hostfile;          // --hostfile: "host [slots=N]" per line
  std::int64_t processes = 0;    // --np (0: the hostfile's slots)
  std::string mpirun = "mpirun";  // --mpirun
  std::uint16_t ssh_port = 22;   // --ssh-port (mpi, mpi-worker)
  std::string ssh_dir = "/etc/mlscale/ssh";  // --ssh-dir (mpi, mpi-worker): the job's SSH Secret
  std::string sshd = "/usr/sbin/sshd";       // --sshd (mpi-worker)
  std::vector<std::string> command;  // after "--"
};

// Reads the flags (arguments without the program name) and the environment; a flag wins
// over its variable. Errors name the flag or variable that is wrong.
StatusOr<LaunchOptions> ParseLaunchOptions(const std::vector<std::string>& arguments,
                                           const std::map<std::string, std::string>& environment);
// The usage text of mlscale-launch (the flags' part generated from their definitions).
std::string LaunchUsage();

// What rank 0's launcher writes to the termination log: the result as compact JSON when
// it fits in `limit` bytes (Kubernetes keeps 4096), else only its "metrics" and
// "modelPath" with "truncated": true, else only {"truncated": true}.
std::string TerminationMessage(const nlohmann::json& result, std::size_t limit = 4096);

// The torchrun variables for the command (WORLD_SIZE, RANK, LOCAL_RANK, ...).
std::map<std::string, std::string> TorchrunEnvironment(const LaunchOptions& options);
// The torchrun variables plus the trainer's: MLSCALE_PEERS ("host:port,..." in rank
// order), MLSCALE_LISTEN_FD, MLSCALE_RUN_ID.
std::map<std::string, std::string> TrainerEnvironment(const LaunchOptions& options,
                                                      const std::vector<Endpoint>& peers, int listen_fd);

// Runs the launcher; returns the exit code for the process: the command's, or 1
// after printing why the launch failed (e.g. the ranks that never joined).
int RunLauncher(const LaunchOptions& options);

}  // namespace mlscale::launcher
