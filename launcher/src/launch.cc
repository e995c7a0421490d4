#include "mlscale/launcher/launch.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/program_options.hpp>

#include "mlscale/common/run_token.h"
#include "mlscale/launcher/mpi.h"
#include "mlscale/launcher/process.h"
#include "mlscale/launcher/progress_server.h"
#include "mlscale/launcher/socket.h"
#include "mlscale/launcher/wire.h"

namespace mlscale::launcher {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;

// Variables mpirun passes on to the ranks on other hosts (it passes everything locally).
// Ranks under ssh start with sshd's environment, so PATH and LD_LIBRARY_PATH go too.
constexpr const char* kTrainerVariables[] = {"MLSCALE_RUN_ID",        "MLSCALE_TERMINATION_LOG", "MLSCALE_PROGRESS_FILE",
                                             "MLSCALE_RESULT_FILE",   "MLSCALE_DATA_DIR",        "OMP_NUM_THREADS",
                                             "PATH",                  "LD_LIBRARY_PATH"};
constexpr const char* kDefaultTerminationLog = "/dev/termination-log";

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

StatusOr<std::uint16_t> ParsePort(const std::string& text, const std::string& name, std::int64_t min) {
  auto port = ParseInteger(text, name, min, 65535);
  if (!port.ok()) return port.status();
  return static_cast<std::uint16_t>(*port);
}

void Print(const std::string& line) { std::fprintf(stderr, "mlscale-launch: %s\n", line.c_str()); }

// The flags, with their help text. Values are strings: they are checked below with
// messages that name the flag, as the variables that stand in for them are.
const po::options_description& Flags() {
  static const po::options_description flags = [] {
    po::options_description d("options", 100, 50);
    d.add_options()
        ("help,h", "print this help and exit")
        ("mode", po::value<std::string>()->value_name("MODE"),
         "rendezvous (default): find the peers through rank 0's launcher; mpi: run mpirun over --hostfile; "
         "mpi-worker: run sshd for the mpi launcher (no command); env: only set the torchrun variables")
        ("timeout", po::value<std::string>()->value_name("SECONDS"),
         "give up waiting for peers / MPI hosts (default 300; MLSCALE_RENDEZVOUS_TIMEOUT)")
        ("run-id", po::value<std::string>()->value_name("ID"),
         "shared by all ranks (MLSCALE_RUN_ID; default MASTER_ADDR:MASTER_PORT)")
        ("bind-address", po::value<std::string>()->value_name("ADDR"), "where to listen (default 0.0.0.0)")
        ("advertise-address", po::value<std::string>()->value_name("ADDR"),
         "the address peers reach this rank at (MLSCALE_ADVERTISE_ADDRESS)")
        ("data-port", po::value<std::string>()->value_name("PORT"),
         "the trainer's data-plane port (MLSCALE_DATA_PORT; default any)")
        ("progress-port", po::value<std::string>()->value_name("PORT"),
         "rank 0: serve GET /v1/progress here (MLSCALE_PROGRESS_PORT; default 29501; 0: any free port)")
        ("state-dir", po::value<std::string>()->value_name("DIR"),
         "writable folder for the progress and result files (MLSCALE_STATE_DIR; default /tmp/mlscale)")
        ("hostfile", po::value<std::string>()->value_name("FILE"), "mpi: \"host slots=N\" per line")
        ("np", po::value<std::string>()->value_name("N"), "mpi: number of processes (default: the hostfile's slots)")
        ("ssh-port", po::value<std::string>()->value_name("PORT"),
         "mpi: wait until each host accepts connections here; mpi-worker: sshd listens here (default 22)")
        ("ssh-dir", po::value<std::string>()->value_name("DIR"),
         "mpi, mpi-worker: the job's SSH Secret, holding ssh-privatekey (default /etc/mlscale/ssh)")
        ("mpirun", po::value<std::string>()->value_name("PATH"), "mpi: the mpirun program (default mpirun)")
        ("sshd", po::value<std::string>()->value_name("PATH"), "mpi-worker: the sshd program (default /usr/sbin/sshd)");
    return d;
  }();
  return flags;
}

// The address the progress endpoint listens on: the advertised one when it is a numeric
// address (the pod IP), else the bind address.
std::string ProgressAddress(const LaunchOptions& options) {
  unsigned char buffer[16];
  const std::string& advertised = options.advertise_address;
  if (!advertised.empty() && (::inet_pton(AF_INET, advertised.c_str(), buffer) == 1 ||
                              ::inet_pton(AF_INET6, advertised.c_str(), buffer) == 1)) {
    return advertised;
  }
  return options.bind_address;
}

// Writes the result to the termination log, when there is a result and a log.
void WriteTerminationLog(const LaunchOptions& options) {
  if (options.termination_log.empty()) return;
  auto result = ReadJsonObjectFile(options.result_file, kMaxProgressFileBytes);
  if (!result) return;  // no result: what the command wrote there (e.g. its error) stays
  std::ofstream log(options.termination_log, std::ios::trunc);
  log << TerminationMessage(*result);
  log.close();
  if (!log) Print("cannot write the result to " + options.termination_log);
}

// Runs the command as every mode does: with the progress and result files set; on the
// rank that reports (rank 0, or the mpi launcher), behind the progress endpoint and
// followed by the termination log. Returns the exit code; prints why on its own errors.
int RunReporting(const LaunchOptions& options, CommandSpec spec, bool reports) {
  spec.environment["MLSCALE_PROGRESS_FILE"] = options.progress_file;
  spec.environment["MLSCALE_RESULT_FILE"] = options.result_file;
  std::error_code error;
  for (const auto& file : {fs::path(options.progress_file), fs::path(options.result_file)}) {
    if (file.has_parent_path()) fs::create_directories(file.parent_path(), error);
    // What an earlier run in this container left is not this run's. Only the reporting
    // rank clears them: local ranks share the files, and rank 0 may be writing already.
    if (reports) fs::remove(file, error);
  }
  std::unique_ptr<ProgressServer> server;
  if (reports && options.run_token.empty()) {
    Print("MLSCALE_RUN_TOKEN is not set: the progress endpoint is off (it serves only with a token)");
  } else if (reports) {
    ProgressServerOptions endpoint;
    endpoint.address = ProgressAddress(options);
    endpoint.port = options.progress_port;
    endpoint.token = options.run_token;
    endpoint.progress_file = options.progress_file;
    endpoint.result_file = options.result_file;
    auto started = ProgressServer::Start(endpoint);
    if (!started.ok()) {
      Print(started.status().message());
      return 1;
    }
    server = std::move(*started);
    Print("progress at http://" + Endpoint{endpoint.address, server->port()}.ToString() + "/v1/progress");
  }
  auto exit_code = RunForwardingSignals(spec);
  server.reset();
  if (!exit_code.ok()) {
    Print(exit_code.status().message());
    return 127;
  }
  if (reports) WriteTerminationLog(options);
  return *exit_code;
}

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
  RendezvousOptions rendezvous{options.run_id,      options.run_token,   options.rank,
                               options.world_size,  options.master_addr, options.master_port,
                               options.bind_address, options.advertise_address, options.timeout};
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
  int exit_code = RunReporting(options, std::move(spec), options.rank == 0);
  if (exit_code != 0) {
    Print("rank " + std::to_string(options.rank) + ": " + options.command[0] + " ended with " +
          DescribeExitCode(exit_code));
  }
  return exit_code;
}

// The ssh setup of both MPI sides, when the Secret is mounted; nullopt without one (then
// ssh uses the user's own configuration, as on a workstation).
StatusOr<std::optional<SshFiles>> SshSetup(const LaunchOptions& options, const std::string& listen_address) {
  std::error_code error;
  if (!fs::exists(fs::path(options.ssh_dir) / "ssh-privatekey", error)) return std::optional<SshFiles>();
  auto files = PrepareSsh(options.ssh_dir, options.state_dir, listen_address, options.ssh_port);
  if (!files.ok()) return files.status();
  return std::optional<SshFiles>(std::move(*files));
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
  auto ssh = SshSetup(options, options.bind_address);
  if (!ssh.ok()) {
    Print(ssh.status().message());
    return 1;
  }
  Status reachable = WaitForHosts(*hosts, options.ssh_port, Clock::now() + options.timeout);
  if (!reachable.ok()) {
    Print(reachable.message());
    return 1;
  }
  MpirunOptions mpirun{options.mpirun, options.hostfile, options.processes, ::geteuid() == 0, {}, options.command};
  CommandSpec spec{{}, {}, "", -1, std::nullopt};
  spec.environment["MLSCALE_RUN_ID"] = options.run_id;
  if (*ssh) spec.environment["OMPI_MCA_plm_rsh_agent"] = RshAgent(**ssh);
  for (const char* name : kTrainerVariables) {
    // The progress and result files are set for mpirun by RunReporting.
    if (std::getenv(name) != nullptr || spec.environment.contains(name) ||
        std::string_view(name) == "MLSCALE_PROGRESS_FILE" || std::string_view(name) == "MLSCALE_RESULT_FILE") {
      mpirun.exported_variables.emplace_back(name);
    }
  }
  spec.argv = MpirunCommand(mpirun, *hosts);
  int exit_code = RunReporting(options, std::move(spec), true);
  if (exit_code != 0) Print("mpirun ended with " + DescribeExitCode(exit_code));
  return exit_code;
}

int RunMpiWorkerMode(const LaunchOptions& options) {
  std::string listen = !options.advertise_address.empty() ? ProgressAddress(options) : options.bind_address;
  auto ssh = SshSetup(options, listen);
  if (!ssh.ok() || !*ssh) {
    Print(ssh.ok() ? "--mode mpi-worker needs the job's SSH key: " + options.ssh_dir + "/ssh-privatekey is missing"
                   : ssh.status().message());
    return 1;
  }
  // As root, sshd insists on its privilege-separation folder.
  std::error_code error;
  if (::geteuid() == 0) fs::create_directories("/run/sshd", error);
  Print("sshd for the MPI launcher on " + Endpoint{listen, options.ssh_port}.ToString());
  // -D: stay in the foreground (this launcher forwards signals to it); -e: log to stderr.
  CommandSpec spec{{options.sshd, "-D", "-e", "-f", (*ssh)->sshd_config.string()}, {}, "", -1, SIGTERM};
  auto exit_code = RunForwardingSignals(spec);
  if (!exit_code.ok()) {
    Print(exit_code.status().message());
    return 127;
  }
  return *exit_code;
}

int RunEnvMode(const LaunchOptions& options) {
  return RunReporting(options, CommandSpec{options.command, TorchrunEnvironment(options), "", -1, SIGTERM},
                      options.rank == 0);
}

}  // namespace

std::string LaunchUsage() {
  std::ostringstream usage;
  usage << "usage: mlscale-launch [options] -- COMMAND [ARGS...]\n"
           "       mlscale-launch --mode mpi-worker [--ssh-port PORT] [--ssh-dir DIR]\n\n"
           "Runs COMMAND (normally mlscale-train) as one rank of a distributed job.\n"
           "Reads WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT (and LOCAL_RANK, LOCAL_WORLD_SIZE),\n"
           "MLSCALE_RUN_TOKEN (required of every peer and progress reader when set), and\n"
           "MLSCALE_PROGRESS_FILE, MLSCALE_RESULT_FILE, MLSCALE_TERMINATION_LOG (see launcher/README.md).\n\n"
        << Flags();
  return usage.str();
}

StatusOr<LaunchOptions> ParseLaunchOptions(const std::vector<std::string>& arguments,
                                           const std::map<std::string, std::string>& environment) {
  LaunchOptions options;
  auto separator = std::find(arguments.begin(), arguments.end(), "--");
  std::vector<std::string> flag_arguments(arguments.begin(), separator);
  if (separator != arguments.end()) options.command.assign(separator + 1, arguments.end());

  po::variables_map flags;
  try {
    // No abbreviations: a flag is spelled out in full (as the hand-written parser required).
    auto style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    auto parsed = po::command_line_parser(flag_arguments).options(Flags()).style(style).run();
    for (const auto& option : parsed.options) {
      if (option.position_key >= 0 && !option.value.empty()) {
        return InvalidArgument("unexpected argument '" + option.value.front() + "' (the command goes after --)");
      }
    }
    po::store(parsed, flags);
  } catch (const po::unknown_option& e) {
    return InvalidArgument("unknown option " + e.get_option_name());
  } catch (const po::invalid_command_line_syntax& e) {
    if (e.kind() == po::invalid_syntax::missing_parameter) return InvalidArgument(e.get_option_name() + " needs a value");
    return InvalidArgument(e.what());
  } catch (const po::error& e) {
    return InvalidArgument(e.what());
  }
  if (flags.count("help") != 0) {
    options.help = true;
    return options;
  }

  // A flag wins over its variable.
  auto setting = [&](const std::string& flag, const std::string& variable) -> std::optional<std::string> {
    if (!flag.empty() && flags.count(flag) != 0) return flags[flag].as<std::string>();
    if (auto it = environment.find(variable); !variable.empty() && it != environment.end()) return it->second;
    return std::nullopt;
  };

  if (auto mode = setting("mode", "")) {
    if (*mode == "rendezvous") options.mode = LaunchMode::kRendezvous;
    else if (*mode == "mpi") options.mode = LaunchMode::kMpi;
    else if (*mode == "mpi-worker") options.mode = LaunchMode::kMpiWorker;
    else if (*mode == "env") options.mode = LaunchMode::kEnv;
    else return InvalidArgument("--mode must be rendezvous, mpi, mpi-worker or env (got \"" + *mode + "\")");
  }
  const bool mpi = options.mode == LaunchMode::kMpi, mpi_worker = options.mode == LaunchMode::kMpiWorker;
  if (mpi_worker && !options.command.empty()) return InvalidArgument("--mode mpi-worker takes no command (it runs sshd)");
  if (!mpi_worker && options.command.empty()) {
    return InvalidArgument("no command: give it after --, e.g. -- mlscale-train --config FILE");
  }
  if (auto timeout = setting("timeout", "MLSCALE_RENDEZVOUS_TIMEOUT")) {
    auto seconds = ParseSeconds(*timeout, "--timeout");
    if (!seconds.ok()) return seconds.status();
    options.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(*seconds * 1000));
  }

  if (!mpi && !mpi_worker) {
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
      auto master_port = ParsePort(*master_port_text, "MASTER_PORT", 1);
      if (!master_port.ok()) return master_port.status();
      options.master_port = *master_port;
    }
  }
  options.run_id = setting("run-id", "MLSCALE_RUN_ID").value_or(options.master_addr + ":" + std::to_string(options.master_port));
  if (options.run_id.empty() || options.run_id.size() > 256) return InvalidArgument("the run id must have 1 to 256 characters");
  // Only from the environment (a Secret): a flag would show the token in the process list.
  options.run_token = setting("", kRunTokenVariable).value_or("");
  if (options.run_token.size() > kMaxRunTokenBytes) {
    return InvalidArgument(std::string(kRunTokenVariable) + " must have at most " + std::to_string(kMaxRunTokenBytes) +
                           " characters");
  }
  options.bind_address = setting("bind-address", "").value_or(options.bind_address);
  options.advertise_address = setting("advertise-address", "MLSCALE_ADVERTISE_ADDRESS").value_or("");
  if (auto data_port = setting("data-port", "MLSCALE_DATA_PORT")) {
    auto port = ParsePort(*data_port, "--data-port", 0);
    if (!port.ok()) return port.status();
    options.data_port = *port;
  }
  if (auto progress_port = setting("progress-port", "MLSCALE_PROGRESS_PORT")) {
    auto port = ParsePort(*progress_port, "--progress-port", 0);
    if (!port.ok()) return port.status();
    options.progress_port = *port;
  }
  options.state_dir = setting("state-dir", "MLSCALE_STATE_DIR").value_or(options.state_dir);
  if (options.state_dir.empty()) return InvalidArgument("--state-dir is empty");
  options.progress_file = setting("", "MLSCALE_PROGRESS_FILE").value_or((fs::path(options.state_dir) / "progress.json").string());
  options.result_file = setting("", "MLSCALE_RESULT_FILE").value_or((fs::path(options.state_dir) / "result.json").string());
  if (options.progress_file.empty() || options.result_file.empty()) {
    return InvalidArgument("MLSCALE_PROGRESS_FILE and MLSCALE_RESULT_FILE must not be empty when set");
  }
  if (auto log = setting("", "MLSCALE_TERMINATION_LOG")) {
    options.termination_log = *log;
  } else if (::access(kDefaultTerminationLog, W_OK) == 0) {
    options.termination_log = kDefaultTerminationLog;
  }

  if (mpi || mpi_worker) {
    if (auto ssh_port = setting("ssh-port", "")) {
      auto port = ParsePort(*ssh_port, "--ssh-port", 1);
      if (!port.ok()) return port.status();
      options.ssh_port = *port;
    }
    options.ssh_dir = setting("ssh-dir", "").value_or(options.ssh_dir);
  }
  if (mpi) {
    auto hostfile = setting("hostfile", "");
    if (!hostfile) return InvalidArgument("--mode mpi needs --hostfile");
    options.hostfile = *hostfile;
    if (auto np = setting("np", "")) {
      auto processes = ParseInteger(*np, "--np", 1, kMaxWorldSize);
      if (!processes.ok()) return processes.status();
      options.processes = *processes;
    }
    options.mpirun = setting("mpirun", "").value_or(options.mpirun);
  }
  if (mpi_worker) options.sshd = setting("sshd", "").value_or(options.sshd);
  struct ModeOnly {
    const char* flag;
    bool allowed;
    const char* modes;
  };
  for (const ModeOnly& only : {ModeOnly{"hostfile", mpi, "--mode mpi"}, ModeOnly{"np", mpi, "--mode mpi"},
                               ModeOnly{"mpirun", mpi, "--mode mpi"}, ModeOnly{"ssh-port", mpi || mpi_worker, "the mpi modes"},
                               ModeOnly{"ssh-dir", mpi || mpi_worker, "the mpi modes"},
                               ModeOnly{"sshd", mpi_worker, "--mode mpi-worker"}}) {
    if (!only.allowed && flags.count(only.flag) != 0) {
      return InvalidArgument(std::string("--") + only.flag + " is only for " + only.modes);
    }
  }
  return options;
}

std::string TerminationMessage(const nlohmann::json& result, std::size_t limit) {
  std::string full = result.dump();
  if (full.size() <= limit) return full;
  nlohmann::json brief{{"truncated", true}};
  for (const char* key : {"metrics", "modelPath"}) {
    if (result.is_object() && result.contains(key)) brief[key] = result[key];
  }
  std::string text = brief.dump();
  if (text.size() <= limit) return text;
  return nlohmann::json{{"truncated", true}}.dump();
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
    case LaunchMode::kMpiWorker: return RunMpiWorkerMode(options);
    case LaunchMode::kEnv: return RunEnvMode(options);
  }
  return 1;
}

}  // namespace mlscale::launcher
