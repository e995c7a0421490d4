// mlscale-launch: what a worker pod (or a local process) runs. It reads the torchrun
// variables, finds its peers and runs the command after "--" (normally mlscale-train):
//
//   rendezvous (default)  WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT from the environment;
//                         binds the data-plane socket, runs the rendezvous, then the command
//                         with WORLD_SIZE, RANK, LOCAL_RANK, MLSCALE_PEERS, MLSCALE_LISTEN_FD,
//                         MLSCALE_RUN_ID (and the torchrun variables) set.
//   mpi                   waits until the hosts of --hostfile accept connections on the ssh
//                         port, then runs `mpirun --hostfile FILE -np N COMMAND`.
//   env                   no rendezvous: the command (a user's, e.g. a PyTorch script) gets
//                         the torchrun variables WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE,
//                         GROUP_RANK, MASTER_ADDR, MASTER_PORT.
// The command runs as a child; signals are forwarded and its exit code is the launcher's.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/launcher/rendezvous.h"

namespace mlscale::launcher {

enum class LaunchMode { kRendezvous, kMpi, kEnv };

struct LaunchOptions {
  LaunchMode mode = LaunchMode::kRendezvous;
  std::int64_t world_size = 1;
  std::int64_t rank = 0;
  std::int64_t local_rank = 0;        // LOCAL_RANK: the rank among this host's processes
  std::int64_t local_world_size = 1;  // LOCAL_WORLD_SIZE
  std::string master_addr = "127.0.0.1";
  std::uint16_t master_port = 29500;
  std::string run_id;  // --run-id / MLSCALE_RUN_ID; default "<MASTER_ADDR>:<MASTER_PORT>"
  std::string bind_address = "0.0.0.0";  // --bind-address: rendezvous and data plane
  std::string advertise_address;         // --advertise-address / MLSCALE_ADVERTISE_ADDRESS
  std::uint16_t data_port = 0;           // --data-port / MLSCALE_DATA_PORT (0: any free port)
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // --timeout SECONDS / MLSCALE_RENDEZVOUS_TIMEOUT
  // mpi mode
  std::string hostfile;          // --hostfile: "host [slots=N]" per line
  std::int64_t processes = 0;    // --np (0: the hostfile's slots)
  std::string mpirun = "mpirun";  // --mpirun
  std::uint16_t ssh_port = 22;   // --ssh-port
  std::vector<std::string> command;  // after "--"
};

// Reads the flags (arguments without the program name) and the environment. Errors
// name the flag or variable that is wrong.
StatusOr<LaunchOptions> ParseLaunchOptions(const std::vector<std::string>& arguments,
                                           const std::map<std::string, std::string>& environment);
// The usage text of mlscale-launch.
std::string LaunchUsage();

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
