// mlscale-launch's flags and environment, the environment it gives the command, and
// the pieces of MPI mode (hostfile, mpirun command line).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "mlscale/launcher/launch.h"
#include "mlscale/launcher/mpi.h"

namespace mlscale::launcher {
namespace {

using Env = std::map<std::string, std::string>;

Env Torchrun(const std::string& world_size, const std::string& rank) {
  return {{"WORLD_SIZE", world_size}, {"RANK", rank}, {"MASTER_ADDR", "job-worker-0.job"}, {"MASTER_PORT", "29500"}};
}

TEST(ParseLaunchOptions, ReadsTheTorchrunVariablesAndTheCommand) {
  auto options = ParseLaunchOptions({"--timeout", "2.5", "--", "mlscale-train", "--config", "x.json"},
                                    Torchrun("4", "3"));
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(options->mode, LaunchMode::kRendezvous);
  EXPECT_EQ(options->world_size, 4);
  EXPECT_EQ(options->rank, 3);
  EXPECT_EQ(options->master_addr, "job-worker-0.job");
  EXPECT_EQ(options->master_port, 29500);
  EXPECT_EQ(options->timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(options->run_id, "job-worker-0.job:29500");  // the same on every rank by default
  EXPECT_EQ(options->command, (std::vector<std::string>{"mlscale-train", "--config", "x.json"}));
}

TEST(ParseLaunchOptions, FlagsWinOverVariables) {
  Env env = Torchrun("2", "0");
  env["MLSCALE_RUN_ID"] = "from-env";
  env["MLSCALE_RENDEZVOUS_TIMEOUT"] = "7";
  env["MLSCALE_DATA_PORT"] = "4000";
  auto from_env = ParseLaunchOptions({"--", "true"}, env);
  ASSERT_TRUE(from_env.ok()) << from_env.status().ToString();
  EXPECT_EQ(from_env->run_id, "from-env");
  EXPECT_EQ(from_env->timeout, std::chrono::seconds(7));
  EXPECT_EQ(from_env->data_port, 4000);
  auto from_flags = ParseLaunchOptions({"--run-id=flag", "--timeout", "1", "--data-port", "0", "--", "true"}, env);
  ASSERT_TRUE(from_flags.ok()) << from_flags.status().ToString();
  EXPECT_EQ(from_flags->run_id, "flag");
  EXPECT_EQ(from_flags->timeout, std::chrono::seconds(1));
  EXPECT_EQ(from_flags->data_port, 0);
}

TEST(ParseLaunchOptions, RejectsBadInputNamingTheCulprit) {
  struct Case {
    std::vector<std::string> arguments;
    Env env;
    std::string error;
  };
  Env no_world = Torchrun("2", "0");
  no_world.erase("WORLD_SIZE");
  Env no_master = Torchrun("2", "1");
  no_master.erase("MASTER_ADDR");
  const std::vector<Case> cases = {
      {{"--", "true"}, no_world, "WORLD_SIZE is not set"},
      {{"--", "true"}, no_master, "MASTER_ADDR is not set"},
      {{"--", "true"}, Torchrun("0", "0"), "WORLD_SIZE must be an integer in 1..4096"},
      {{"--", "true"}, Torchrun("two", "0"), "WORLD_SIZE must be an integer"},
      {{"--", "true"}, Torchrun("2", "2"), "RANK must be an integer in 0..1"},
      {{"--", "true"}, Torchrun("2", "-1"), "RANK must be an integer in 0..1"},
      {{"--", "true"}, [] { auto e = Torchrun("2", "0"); e["MASTER_PORT"] = "70000"; return e; }(),
       "MASTER_PORT must be an integer in 1..65535"},
      {{"--", "true"}, [] { auto e = Torchrun("2", "0"); e["LOCAL_RANK"] = "1"; return e; }(),
       "LOCAL_RANK must be an integer in 0..0"},
      {{}, Torchrun("2", "0"), "no command"},
      {{"--"}, Torchrun("2", "0"), "no command"},
      {{"mlscale-train"}, Torchrun("2", "0"), "the command goes after --"},
      {{"--bogus", "1", "--", "true"}, Torchrun("2", "0"), "unknown option --bogus"},
      {{"--timeout"}, Torchrun("2", "0"), "--timeout needs a value"},
      {{"--timeout", "0", "--", "true"}, Torchrun("2", "0"), "--timeout must be a number of seconds"},
      {{"--timeout", "soon", "--", "true"}, Torchrun("2", "0"), "--timeout must be a number of seconds"},
      {{"--mode", "ssh", "--", "true"}, Torchrun("2", "0"), "--mode must be rendezvous, mpi, mpi-worker or env"},
      {{"--mode", "mpi", "--", "true"}, {}, "--mode mpi needs --hostfile"},
      {{"--hostfile", "h", "--", "true"}, Torchrun("2", "0"), "--hostfile is only for --mode mpi"},
      {{"--run-id", "", "--", "true"}, Torchrun("2", "0"), "run id must have 1 to 256"},
      {{"--time", "3", "--", "true"}, Torchrun("2", "0"), "unknown option --time"},  // no abbreviations
      {{"--timeout", "2", "train.py"}, Torchrun("2", "0"), "unexpected argument 'train.py'"},
      {{"--progress-port", "65536", "--", "true"}, Torchrun("2", "0"), "--progress-port must be an integer in 0..65535"},
      {{"--", "true"}, [] { auto e = Torchrun("2", "0"); e["MLSCALE_PROGRESS_PORT"] = "x"; return e; }(),
       "--progress-port must be an integer"},
      {{"--", "true"}, [] { auto e = Torchrun("2", "0"); e["MLSCALE_RUN_TOKEN"] = std::string(257, 't'); return e; }(),
       "MLSCALE_RUN_TOKEN must have at most 256 characters"},
      {{"--state-dir", "", "--", "true"}, Torchrun("2", "0"), "--state-dir is empty"},
      {{"--mode", "mpi-worker", "--", "true"}, {}, "--mode mpi-worker takes no command"},
      {{"--ssh-dir", "/x", "--", "true"}, Torchrun("2", "0"), "--ssh-dir is only for the mpi modes"},
      {{"--mode", "mpi", "--hostfile", "h", "--sshd", "s", "--", "true"}, {}, "--sshd is only for --mode mpi-worker"},
  };
  for (const auto& c : cases) {
    auto options = ParseLaunchOptions(c.arguments, c.env);
    ASSERT_FALSE(options.ok()) << c.error;
    EXPECT_NE(options.status().message().find(c.error), std::string::npos)
        << "expected '" << c.error << "', got: " << options.status().message();
  }
}

TEST(ParseLaunchOptions, ProgressStateAndTokenSettings) {
  auto defaults = ParseLaunchOptions({"--", "true"}, Torchrun("2", "0"));
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ(defaults->progress_port, 29501);
  EXPECT_EQ(defaults->state_dir, "/tmp/mlscale");
  EXPECT_EQ(defaults->progress_file, "/tmp/mlscale/progress.json");
  EXPECT_EQ(defaults->result_file, "/tmp/mlscale/result.json");
  EXPECT_EQ(defaults->run_token, "");
  Env env = Torchrun("2", "0");
  env["MLSCALE_STATE_DIR"] = "/state";
  env["MLSCALE_RESULT_FILE"] = "/out/result.json";
  env["MLSCALE_PROGRESS_PORT"] = "9000";
  env["MLSCALE_RUN_TOKEN"] = "secret";
  env["MLSCALE_TERMINATION_LOG"] = "/out/termination";
  auto set = ParseLaunchOptions({"--progress-port=0", "--", "true"}, env);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->progress_port, 0);  // the flag wins
  EXPECT_EQ(set->progress_file, "/state/progress.json");
  EXPECT_EQ(set->result_file, "/out/result.json");
  EXPECT_EQ(set->run_token, "secret");
  EXPECT_EQ(set->termination_log, "/out/termination");
  auto worker = ParseLaunchOptions({"--mode", "mpi-worker", "--ssh-port", "2222", "--ssh-dir", "/keys"}, {});
  ASSERT_TRUE(worker.ok()) << worker.status().ToString();
  EXPECT_EQ(worker->mode, LaunchMode::kMpiWorker);
  EXPECT_EQ(worker->ssh_port, 2222);
  EXPECT_EQ(worker->ssh_dir, "/keys");
  EXPECT_TRUE(worker->command.empty());
}

TEST(ParseLaunchOptions, HelpIsGeneratedFromTheFlags) {
  auto help = ParseLaunchOptions({"--timeout", "3", "--help"}, {});
  ASSERT_TRUE(help.ok()) << help.status().ToString();
  EXPECT_TRUE(help->help);
  std::string usage = LaunchUsage();
  for (const char* flag : {"--mode", "--timeout", "--run-id", "--bind-address", "--advertise-address", "--data-port",
                           "--progress-port", "--state-dir", "--hostfile", "--np", "--ssh-port", "--ssh-dir",
                           "--mpirun", "--sshd", "--help"}) {
    EXPECT_NE(usage.find(flag), std::string::npos) << flag;
  }
}

TEST(TerminationMessage, FitsTheLimit) {
  nlohmann::json result{{"metrics", {{"testAccuracy", 0.98}}}, {"modelPath", "/model"}, {"steps", 10}};
  EXPECT_EQ(TerminationMessage(result), result.dump());
  result["big"] = std::string(5000, 'x');
  std::string brief = TerminationMessage(result);
  EXPECT_LE(brief.size(), 4096u);
  EXPECT_EQ(nlohmann::json::parse(brief),
            nlohmann::json::parse(R"({"metrics": {"testAccuracy": 0.98}, "modelPath": "/model", "truncated": true})"));
  result["metrics"]["huge"] = std::string(5000, 'y');
  EXPECT_EQ(TerminationMessage(result), R"({"truncated":true})");
}

TEST(ParseLaunchOptions, ASingleRankNeedsNoMaster) {
  auto options = ParseLaunchOptions({"--", "true"}, {{"WORLD_SIZE", "1"}, {"RANK", "0"}});
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(options->world_size, 1);
}

TEST(TorchrunEnvironment, DescribesTheRankLikeTorchrun) {
  Env env = Torchrun("8", "5");
  env["LOCAL_WORLD_SIZE"] = "4";
  env["LOCAL_RANK"] = "1";
  auto options = ParseLaunchOptions({"--mode", "env", "--", "python", "train.py"}, env);
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  auto vars = TorchrunEnvironment(*options);
  EXPECT_EQ(vars["WORLD_SIZE"], "8");
  EXPECT_EQ(vars["RANK"], "5");
  EXPECT_EQ(vars["LOCAL_RANK"], "1");
  EXPECT_EQ(vars["LOCAL_WORLD_SIZE"], "4");
  EXPECT_EQ(vars["GROUP_RANK"], "1");
  EXPECT_EQ(vars["MASTER_ADDR"], "job-worker-0.job");
  EXPECT_EQ(vars["MASTER_PORT"], "29500");
  EXPECT_FALSE(vars.contains("MLSCALE_PEERS"));

  auto trainer = TrainerEnvironment(*options, {{"10.0.0.1", 1000}, {"10.0.0.2", 1001}}, 5);
  EXPECT_EQ(trainer["MLSCALE_PEERS"], "10.0.0.1:1000,10.0.0.2:1001");
  EXPECT_EQ(trainer["MLSCALE_LISTEN_FD"], "5");
  EXPECT_EQ(trainer["MLSCALE_RUN_ID"], "job-worker-0.job:29500");
  EXPECT_EQ(trainer["RANK"], "5");
}

TEST(ParseHostfile, ReadsHostsSlotsAndComments) {
  auto hosts = ParseHostfile("# workers\njob-worker-0.job slots=2\n\njob-worker-1.job   # one slot\n"
                             "job-worker-2.job slots=4 max_slots=8\n");
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  ASSERT_EQ(hosts->size(), 3u);
  EXPECT_EQ((*hosts)[0].name, "job-worker-0.job");
  EXPECT_EQ((*hosts)[0].slots, 2);
  EXPECT_EQ((*hosts)[1].slots, 1);
  EXPECT_EQ((*hosts)[2].slots, 4);
}

TEST(ParseHostfile, RejectsMalformedLines) {
  for (const auto& [text, error] : std::vector<std::pair<std::string, std::string>>{
           {"", "lists no hosts"},
           {"# only a comment\n", "lists no hosts"},
           {"a slots=0", "line 1: 'slots=0' needs a positive integer"},
           {"a\nb slots=x", "line 2: 'slots=x' needs a positive integer"},
           {"a cpus=2", "line 1: unknown attribute 'cpus=2'"},
           {"a slots", "unknown attribute 'slots'"}}) {
    auto hosts = ParseHostfile(text);
    ASSERT_FALSE(hosts.ok()) << text;
    EXPECT_NE(hosts.status().message().find(error), std::string::npos) << hosts.status().message();
  }
}

TEST(MpirunCommand, RunsTheCommandOverTheHostfile) {
  std::vector<MpiHost> hosts{{"w0", 1}, {"w1", 1}};
  MpirunOptions options{"mpirun", "/etc/mpi/hostfile", 0, false, {"MLSCALE_RUN_ID"}, {"mlscale-train", "--config", "c"}};
  EXPECT_EQ(MpirunCommand(options, hosts),
            (std::vector<std::string>{"mpirun", "--hostfile", "/etc/mpi/hostfile", "-np", "2", "--bind-to", "none",
                                      "-x", "MLSCALE_RUN_ID", "mlscale-train", "--config", "c"}));
  options.processes = 4;  // more than the slots
  options.as_root = true;
  auto argv = MpirunCommand(options, hosts);
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--oversubscribe"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--allow-run-as-root"), argv.end());
  EXPECT_EQ(argv[4], "4");
}

TEST(WaitForHosts, NamesTheHostsThatNeverAnswer) {
  // Local hosts are started without ssh: nothing to wait for.
  std::vector<MpiHost> hosts{{"localhost", 1}, {"127.0.0.1", 1}};
  EXPECT_TRUE(WaitForHosts(hosts, 1, Clock::now()).ok());
  hosts.push_back({"no-such-worker.invalid", 1});
  auto start = Clock::now();
  Status status = WaitForHosts(hosts, 22, Clock::now() + std::chrono::milliseconds(600));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(status.message().find("no-such-worker.invalid"), std::string::npos) << status.message();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST(WaitForHosts, WaitsUntilAWorkerAcceptsConnections) {
  // 127.0.0.2 stands for a worker pod whose sshd starts a moment later.
  std::uint16_t port = 0;
  {
    auto probe = ListenTcp("127.0.0.2", 0);
    ASSERT_TRUE(probe.ok()) << probe.status().ToString();
    port = *LocalPort(probe->get());
  }
  std::atomic<bool> done{false};
  std::jthread sshd([port, &done] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    auto listener = ListenTcp("127.0.0.2", port);
    EXPECT_TRUE(listener.ok());
    while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  });
  auto start = Clock::now();
  Status status = WaitForHosts({{"127.0.0.2", 1}}, port, Clock::now() + std::chrono::seconds(10));
  done = true;
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(600));
}

}  // namespace
}  // namespace mlscale::launcher
