#include "mlscale/launcher/launch.h"

#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "mlscale/launcher/mpi.h"
#include "mlscale/launcher/process.h"
#include "mlscale/launcher/socket.h"
#include "mlscale/launcher/wire.h"

namespace mlscale::launcher {
namespace {

// Variables mpirun passes on to the ranks on other hosts (it passes everything locally).
constexpr const char* kTrainerVariables[] = {"MLSCALE_RUN_ID", "MLSCALE_TERMINATION_LOG", "MLSCALE_PROGRESS_FILE",
                                             "MLSCALE_DATA_DIR"};

StatusOr<std::int64_t> ParseInteger(const std::string& text, const std::string& name, std::int64_t min,
                                    std::int64_t max) {
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return InvalidArgument(name + " must be an integer in " + std::to_string(min) + ".." + std::to_string(max) +
                           " (got \"" + text + "\")");
  }
  return value;
}

StatusOr<double> ParseSeconds(const std::string& text, const std::string& name) {
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || !(value > 0) || value > 86400) {
    return InvalidArgument(name + " must be a number of seconds in (0, 86400] (got \"" + text + "\")");
  }
  return value;
}

void Print(const std::string& line) { std::fprintf(stderr, "mlscale-launch: %s\n", line.c_str()); }

int RunRendezvousMode(const LaunchOptions& options) {
  auto listener = ListenTcp(options.bind_address, options.data_port);
  if (!listener.ok()) {
    Print("rank " + std::to_string(options.rank) + ": data-plane socket: " + listener.status().message());
    return 1;
  }
  auto port = LocalPort(listener->get());
  if (!port.ok()) {
    Print(port.status().message());
    return 1;
  }
  RendezvousOptions rendezvous{options.run_id,      options.rank,         options.world_size,
                               options.master_addr, options.master_port,  options.bind_address,
                               options.advertise_address, options.timeout};
  auto started = Clock::now();
  auto peers = Rendezvous(rendezvous, *port);
  if (!peers.ok()) {
    Print("rank " + std::to_string(options.rank) + ": " + peers.status().message());
    return 1;
  }
  char took[32];
  std::snprintf(took, sizeof took, "%.2f s", std::chrono::duration<double>(Clock::now() - started).count());
  Print("rank " + std::to_string(options.rank) + " of " + std::to_string(options.world_size) + ": rendezvous done in " +
        took + ", data plane at " + (*peers)[static_cast<std::size_t>(options.rank)].ToString() + "; running " +
        options.command[0]);
  // The trainer inherits the bound socket: a blocking one, open across exec.
  Status inheritable = SetCloseOnExec(listener->get(), false);
  if (inheritable.ok()) inheritable = SetNonBlocking(listener->get(), false);
  if (!inheritable.ok()) {
    Print(inheritable.message());
    return 1;
  }
  // SIGTERM if this launcher dies first: the trainer then checkpoints and stops.
  CommandSpec spec{options.command, TrainerEnvironment(options, *peers, listener->get()), "", -1, SIGTERM};
  auto exit_code = RunForwardingSignals(spec);
  if (!exit_code.ok()) {
    Print("rank " + std::to_string(options.rank) + ": " + exit_code.status().message());
    return 127;
  }
  if (*exit_code != 0) Print("rank " + std::to_string(options.rank) + ": " + options.command[0] + " ended with " + DescribeExitCode(*exit_code));
  return *exit_code;
}

int RunMpiMode(const LaunchOptions& options) {
  std::ifstream file(options.hostfile);
  std::stringstream text;
  text << file.rdbuf();
  if (!file) {
    Print("cannot read the hostfile " + options.hostfile);
    return 1;
  }
  auto hosts = ParseHostfile(text.str());
  if (!hosts.ok()) {
    Print(options.hostfile + ": " + hosts.status().message());
    return 1;
  }
  Status reachable = WaitForHosts(*hosts, options.ssh_port, Clock::now() + options.timeout);
  if (!reachable.ok()) {
    Print(reachable.message());
    return 1;
  }
  MpirunOptions mpirun{options.mpirun, options.hostfile, options.processes, ::geteuid() == 0, {}, options.command};
  for (const char* name : kTrainerVariables) {
    if (std::getenv(name) != nullptr) mpirun.exported_variables.emplace_back(name);
  }
  CommandSpec spec{MpirunCommand(mpirun, *hosts), {}, "", -1, std::nullopt};
  if (!options.run_id.empty()) spec.environment["MLSCALE_RUN_ID"] = options.run_id;
  auto exit_code = RunForwardingSignals(spec);
  if (!exit_code.ok()) {
    Print(exit_code.status().message());
    return 127;
  }
  if (*exit_code != 0) Print("mpirun ended with " + DescribeExitCode(*exit_code));
  return *exit_code;
}

int RunEnvMode(const LaunchOptions& options) {
  CommandSpec spec{options.command, TorchrunEnvironment(options), "", -1, SIGTERM};
  auto exit_code = RunForwardingSignals(spec);
  if (!exit_code.ok()) {
    Print(exit_code.status().message());
    return 127;
  }
  return *exit_code;
}

}  // namespace

std::string LaunchUsage() {
  return R"(usage: mlscale-launch [options] -- COMMAND [ARGS...]

Runs COMMAND (normally mlscale-train) as one rank of a distributed job.
Reads WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT (and LOCAL_RANK, LOCAL_WORLD_SIZE).

  --mode rendezvous|mpi|env  rendezvous (default): find the peers through rank 0's launcher;
                             mpi: run mpirun over --hostfile; env: only set torchrun variables
  --timeout SECONDS          give up waiting for peers / MPI hosts (default 300;
                             MLSCALE_RENDEZVOUS_TIMEOUT)
  --run-id ID                shared by all ranks (MLSCALE_RUN_ID; default MASTER_ADDR:MASTER_PORT)
  --bind-address ADDR        where to listen (default 0.0.0.0)
  --advertise-address ADDR   the address peers reach this rank at (MLSCALE_ADVERTISE_ADDRESS)
  --data-port PORT           the trainer's data-plane port (MLSCALE_DATA_PORT; default any)
  --hostfile FILE            mpi: "host slots=N" per line
  --np N                     mpi: number of processes (default: the hostfile's slots)
  --ssh-port PORT            mpi: wait until each host accepts connections here (default 22)
  --mpirun PATH              mpi: the mpirun program (default mpirun)
)";
}

StatusOr<LaunchOptions> ParseLaunchOptions(const std::vector<std::string>& arguments,
                                           const std::map<std::string, std::string>& environment) {
  LaunchOptions options;
  std::map<std::string, std::string> flags;
  std::size_t i = 0;
  for (; i < arguments.size(); ++i) {
    const std::string& argument = arguments[i];
    if (argument == "--") {
      ++i;
      break;
    }
    if (!argument.starts_with("--")) return InvalidArgument("unexpected argument '" + argument + "' (the command goes after --)");
    std::string name = argument.substr(2);
    std::string value;
    if (auto equals = name.find('='); equals != std::string::npos) {
      value = name.substr(equals + 1);
      name.resize(equals);
    } else if (i + 1 < arguments.size()) {
      value = arguments[++i];
    } else {
      return InvalidArgument("--" + name + " needs a value");
    }
    static const char* const kKnown[] = {"mode",    "timeout", "run-id", "bind-address", "advertise-address",
                                         "data-port", "hostfile", "np",   "ssh-port",     "mpirun"};
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown)) {
      return InvalidArgument("unknown option --" + name);
    }
    flags[name] = value;
  }
  options.command.assign(arguments.begin() + static_cast<std::ptrdiff_t>(i), arguments.end());
  if (options.command.empty()) return InvalidArgument("no command: give it after --, e.g. -- mlscale-train --config FILE");

  // A flag wins over its variable.
  auto setting = [&](const std::string& flag, const std::string& variable) -> std::optional<std::string> {
    if (auto it = flags.find(flag); it != flags.end()) return it->second;
    if (auto it = environment.find(variable); !variable.empty() && it != environment.end()) return it->second;
    return std::nullopt;
  };

  if (auto mode = setting("mode", "")) {
    if (*mode == "rendezvous") options.mode = LaunchMode::kRendezvous;
    else if (*mode == "mpi") options.mode = LaunchMode::kMpi;
    else if (*mode == "env") options.mode = LaunchMode::kEnv;
    else return InvalidArgument("--mode must be rendezvous, mpi or env (got \"" + *mode + "\")");
  }
  if (auto timeout = setting("timeout", "MLSCALE_RENDEZVOUS_TIMEOUT")) {
    auto seconds = ParseSeconds(*timeout, "--timeout");
    if (!seconds.ok()) return seconds.status();
    options.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(*seconds * 1000));
  }

  if (options.mode != LaunchMode::kMpi) {
    auto world_size_text = setting("", "WORLD_SIZE");
    if (!world_size_text) return InvalidArgument("WORLD_SIZE is not set");
    auto world_size = ParseInteger(*world_size_text, "WORLD_SIZE", 1, kMaxWorldSize);
    if (!world_size.ok()) return world_size.status();
    options.world_size = *world_size;
    auto rank_text = setting("", "RANK");
    if (!rank_text) return InvalidArgument("RANK is not set");
    auto rank = ParseInteger(*rank_text, "RANK", 0, options.world_size - 1);
    if (!rank.ok()) return rank.status();
    options.rank = *rank;
    // Without these the job has one process per host.
    auto local_world_size = ParseInteger(setting("", "LOCAL_WORLD_SIZE").value_or("1"), "LOCAL_WORLD_SIZE", 1, kMaxWorldSize);
    if (!local_world_size.ok()) return local_world_size.status();
    options.local_world_size = *local_world_size;
    auto local_rank = ParseInteger(setting("", "LOCAL_RANK").value_or("0"), "LOCAL_RANK", 0, options.local_world_size - 1);
    if (!local_rank.ok()) return local_rank.status();
    options.local_rank = *local_rank;

    bool alone = options.world_size == 1;
    auto master_addr = setting("", "MASTER_ADDR");
    if (!master_addr && !alone) return InvalidArgument("MASTER_ADDR is not set (rank 0's host)");
    if (master_addr) {
      if (master_addr->empty()) return InvalidArgument("MASTER_ADDR is empty");
      options.master_addr = *master_addr;
    }
    auto master_port_text = setting("", "MASTER_PORT");
    if (!master_port_text && !alone) return InvalidArgument("MASTER_PORT is not set (rank 0's rendezvous port)");
    if (master_port_text) {
      auto master_port = ParseInteger(*master_port_text, "MASTER_PORT", 1, 65535);
      if (!master_port.ok()) return master_port.status();
      options.master_port = static_cast<std::uint16_t>(*master_port);
    }
  }
  options.run_id = setting("run-id", "MLSCALE_RUN_ID").value_or(options.master_addr + ":" + std::to_string(options.master_port));
  if (options.run_id.empty() || options.run_id.size() > 256) return InvalidArgument("the run id must have 1 to 256 characters");
  options.bind_address = setting("bind-address", "").value_or(options.bind_address);
  options.advertise_address = setting("advertise-address", "MLSCALE_ADVERTISE_ADDRESS").value_or("");
  if (auto data_port = setting("data-port", "MLSCALE_DATA_PORT")) {
    auto port = ParseInteger(*data_port, "--data-port", 0, 65535);
    if (!port.ok()) return port.status();
    options.data_port = static_cast<std::uint16_t>(*port);
  }

  if (options.mode == LaunchMode::kMpi) {
    auto hostfile = setting("hostfile", "");
    if (!hostfile) return InvalidArgument("--mode mpi needs --hostfile");
    options.hostfile = *hostfile;
    if (auto np = setting("np", "")) {
      auto processes = ParseInteger(*np, "--np", 1, kMaxWorldSize);
      if (!processes.ok()) return processes.status();
      options.processes = *processes;
    }
    options.mpirun = setting("mpirun", "").value_or(options.mpirun);
    if (auto ssh_port = setting("ssh-port", "")) {
      auto port = ParseInteger(*ssh_port, "--ssh-port", 1, 65535);
      if (!port.ok()) return port.status();
      options.ssh_port = static_cast<std::uint16_t>(*port);
    }
  } else {
    for (const char* mpi_only : {"hostfile", "np", "ssh-port", "mpirun"}) {
      if (flags.contains(mpi_only)) return InvalidArgument(std::string("--") + mpi_only + " is only for --mode mpi");
    }
  }
  return options;
}

std::map<std::string, std::string> TorchrunEnvironment(const LaunchOptions& options) {
  return {{"WORLD_SIZE", std::to_string(options.world_size)},
          {"RANK", std::to_string(options.rank)},
          {"LOCAL_RANK", std::to_string(options.local_rank)},
          {"LOCAL_WORLD_SIZE", std::to_string(options.local_world_size)},
          // One group of LOCAL_WORLD_SIZE processes per host, numbered like the hosts.
          {"GROUP_RANK", std::to_string(options.rank / options.local_world_size)},
          {"MASTER_ADDR", options.master_addr},
          {"MASTER_PORT", std::to_string(options.master_port)}};
}

std::map<std::string, std::string> TrainerEnvironment(const LaunchOptions& options,
                                                      const std::vector<Endpoint>& peers, int listen_fd) {
  auto environment = TorchrunEnvironment(options);
  std::string list;
  for (const auto& peer : peers) list += (list.empty() ? "" : ",") + peer.ToString();
  environment["MLSCALE_PEERS"] = list;
  environment["MLSCALE_LISTEN_FD"] = std::to_string(listen_fd);
  environment["MLSCALE_RUN_ID"] = options.run_id;
  return environment;
}

int RunLauncher(const LaunchOptions& options) {
  switch (options.mode) {
    case LaunchMode::kRendezvous: return RunRendezvousMode(options);
    case LaunchMode::kMpi: return RunMpiMode(options);
    case LaunchMode::kEnv: return RunEnvMode(options);
  }
  return 1;
}

}  // namespace mlscale::launcher
