// Real mlscale-train processes talking over loopback, as the launcher starts them.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "mlscale/worker/trainer.h"
#include "socket.h"

namespace mlscale::worker {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One mlscale-train process; stderr and stdout go to files in `dir`.
class Process {
 public:
  // `in_child` runs in the new process before it becomes mlscale-train (e.g. to enter
  // namespaces).
  Process(const std::vector<std::string>& args, const std::map<std::string, std::string>& env, const std::string& dir,
          const std::string& name, const std::function<void()>& in_child = {})
      : out_(dir + "/" + name + ".out"), err_(dir + "/" + name + ".err") {
    pid_ = ::fork();
    if (pid_ == 0) {
      if (in_child) in_child();
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      int out = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::vector<char*> argv;
      std::string binary = MLSCALE_TRAIN_BINARY;
      argv.push_back(binary.data());
      std::vector<std::string> copies = args;
      for (auto& a : copies) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
  }
  ~Process() {
    if (exit_code_ < 0) {
      ::kill(pid_, SIGKILL);
      Wait(seconds(10));
    }
  }
  void Signal(int signal) { ::kill(pid_, signal); }
  pid_t pid() const { return pid_; }
  // The exit code (128+N for signal N), or -1 when it did not end within `timeout`.
  int Wait(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (exit_code_ < 0 && std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    return exit_code_;
  }
  std::string err() const { return ReadFile(err_); }
  std::string out() const { return ReadFile(out_); }

 private:
  std::string out_, err_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/process-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  std::string WriteConfig(const std::string& json_text) {
    const std::string path = dir_ + "/trainer.json";
    std::ofstream(path) << json_text;
    return path;
  }
  // Starts n ranks on listening sockets they inherit (MLSCALE_LISTEN_FD), as the launcher does.
  // `per_rank_env[r]`, when given, is added to rank r's environment.
  // `in_child(r)`, when given, runs in rank r's process before it becomes mlscale-train.
  std::vector<std::unique_ptr<Process>> StartRanks(int n, const std::vector<std::string>& args,
                                                   std::map<std::string, std::string> extra_env = {},
                                                   std::vector<std::map<std::string, std::string>> per_rank_env = {},
                                                   const std::function<void(int)>& in_child = {}) {
    listeners_.clear();
    std::string peers;
    for (int r = 0; r < n; ++r) {
      auto listener = ListenTcp("127.0.0.1", 0);
      // Inherited by the child: clear close-on-exec.
      ::fcntl(listener->get(), F_SETFD, 0);
      peers += (r ? "," : "") + std::string("127.0.0.1:") + std::to_string(*LocalPort(listener->get()));
      listeners_.push_back(std::move(*listener));
    }
    std::vector<std::unique_ptr<Process>> ranks;
    for (int r = 0; r < n; ++r) {
      auto env = extra_env;
      env["WORLD_SIZE"] = std::to_string(n);
      env["RANK"] = std::to_string(r);
      env["LOCAL_RANK"] = std::to_string(r);
      env["MLSCALE_PEERS"] = peers;
      env["MLSCALE_LISTEN_FD"] = std::to_string(listeners_[size_t(r)].get());
      env["MLSCALE_RUN_ID"] = "process-test";
      env["MLSCALE_TERMINATION_LOG"] = dir_ + "/termination-" + std::to_string(r);
      env["MLSCALE_PROGRESS_FILE"] = dir_ + "/progress-" + std::to_string(r);
      env["OMP_NUM_THREADS"] = "1";
      if (size_t(r) < per_rank_env.size()) {
        for (const auto& [name, value] : per_rank_env[size_t(r)]) env[name] = value;
      }
      std::function<void()> hook;
      if (in_child) hook = [&in_child, r] { in_child(r); };
      ranks.push_back(std::make_unique<Process>(args, env, dir_, "rank" + std::to_string(r), hook));
    }
    listeners_.clear();  // the children hold them now
    return ranks;
  }
  // Waits until rank 0's progress file says training has reached `step`.
  bool WaitForStep(int64_t step) {
    for (int i = 0; i < 1500; ++i) {
      auto progress = nlohmann::json::parse(ReadFile(dir_ + "/progress-0"), nullptr, false);
      if (!progress.is_discarded() && progress.value("step", 0) >= step) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  std::string dir_;
  std::vector<FileDescriptor> listeners_;
};

const char* kLongRun = R"({"dataset": {"synthetic": {"samples": 20000, "features": 32, "classes": 4}},
    "model": {"hiddenLayers": [64]}, "epochs": 200, "batchSize": 32})";

// MLSCALE_RUN_TOKEN guards the data plane: ranks with the same token train (and rank 0
// writes MLSCALE_RESULT_FILE); ranks with different tokens refuse each other at once and
// exit 1 (a configuration error), without printing either token.
TEST_F(ProcessTest, TheDataPlaneAdmitsOnlyPeersWithTheRunToken) {
  const std::string config = WriteConfig(R"({"epochs": 1})");
  const std::string same(64, 'a');
  {
    auto ranks = StartRanks(2, {"--config", config}, {{"MLSCALE_RUN_TOKEN", same}, {"MLSCALE_RESULT_FILE", dir_ + "/result.json"}});
    for (auto& rank : ranks) EXPECT_EQ(rank->Wait(seconds(120)), 0) << rank->err();
    auto result = nlohmann::json::parse(ReadFile(dir_ + "/result.json"), nullptr, false);
    ASSERT_TRUE(result.is_object()) << ranks[0]->err();
    EXPECT_TRUE(result["metrics"]["testAccuracy"].is_number()) << result.dump();
  }
  const std::string tokens[2] = {std::string(64, 'b'), std::string(64, 'c')};
  fs::remove(dir_ + "/result.json");
  // The rank refused first exits 1 at once; the other, whose peer is then gone, gives up
  // after the connect timeout.
  auto ranks = StartRanks(2, {"--config", config},
                          {{"MLSCALE_CONNECT_TIMEOUT_SECONDS", "10"}, {"MLSCALE_RESULT_FILE", dir_ + "/result.json"}},
                          {{{"MLSCALE_RUN_TOKEN", tokens[0]}}, {{"MLSCALE_RUN_TOKEN", tokens[1]}}});
  std::string logs;
  for (auto& rank : ranks) {
    EXPECT_GT(rank->Wait(seconds(60)), 0) << rank->err();
    logs += rank->err();
  }
  EXPECT_NE(logs.find("refused this rank's run token"), std::string::npos) << logs;
  EXPECT_NE(logs.find("turned away a connection from 127.0.0.1: wrong run token"), std::string::npos) << logs;
  for (const auto& token : tokens) EXPECT_EQ(logs.find(token), std::string::npos) << logs;
  EXPECT_FALSE(fs::exists(dir_ + "/result.json")) << "nothing may train";
}

TEST_F(ProcessTest, KillingOneRankMakesTheOthersExitNamingIt) {
  auto ranks = StartRanks(3, {"--config", WriteConfig(kLongRun)});
  ASSERT_TRUE(WaitForStep(20)) << ranks[0]->err();
  ranks[1]->Signal(SIGKILL);
  EXPECT_EQ(ranks[1]->Wait(seconds(10)), 128 + SIGKILL);
  for (int r : {0, 2}) {
    EXPECT_EQ(ranks[size_t(r)]->Wait(seconds(20)), 2) << ranks[size_t(r)]->err();
    EXPECT_NE(ranks[size_t(r)]->err().find("rank 1 (127.0.0.1:"), std::string::npos) << ranks[size_t(r)]->err();
    auto message = nlohmann::json::parse(ReadFile(dir_ + "/termination-" + std::to_string(r)));
    EXPECT_EQ(message["exitCode"], 2);
    EXPECT_NE(message["error"].get<std::string>().find("rank 1"), std::string::npos);
  }
}

TEST_F(ProcessTest, SigtermCheckpointsAndTheNextRunResumes) {
  const std::string config = WriteConfig(R"({"dataset": {"synthetic": {"samples": 20000, "features": 32, "classes": 4}},
      "model": {"hiddenLayers": [64]}, "epochs": 20, "batchSize": 32, "checkpoint": {"everySteps": 100000}})");
  const std::vector<std::string> args = {"--config", config, "--checkpoint-dir", dir_ + "/checkpoints",
                                         "--output-dir", dir_ + "/model", "--backend", "cpu"};
  {
    auto ranks = StartRanks(2, args);
    ASSERT_TRUE(WaitForStep(1)) << ranks[0]->err();
    for (auto& rank : ranks) rank->Signal(SIGTERM);  // as Kubernetes does when deleting pods
    for (auto& rank : ranks) EXPECT_EQ(rank->Wait(seconds(30)), 143) << rank->err();
    EXPECT_NE(ranks[0]->err().find("stopping at step"), std::string::npos) << ranks[0]->err();
  }
  int checkpoints = 0;
  for (const auto& entry : fs::directory_iterator(dir_ + "/checkpoints")) checkpoints += entry.path().extension() == ".mlsckpt";
  EXPECT_EQ(checkpoints, 1);
  auto stopped = nlohmann::json::parse(ReadFile(dir_ + "/termination-0"));
  EXPECT_TRUE(stopped["stopped"].get<bool>());
  const int64_t stopped_at = stopped["steps"];
  EXPECT_GT(stopped_at, 0);

  auto ranks = StartRanks(2, args);
  for (auto& rank : ranks) ASSERT_EQ(rank->Wait(seconds(240)), 0) << rank->err();
  EXPECT_NE(ranks[0]->err().find("resuming from"), std::string::npos);
  auto result = nlohmann::json::parse(ReadFile(dir_ + "/termination-0"));
  EXPECT_EQ(result["resumedFromStep"], stopped_at);
  EXPECT_EQ(result["steps"], result["totalSteps"]);
  EXPECT_GT(result["accuracy"].get<double>(), 0.5);
  EXPECT_GT(result["samplesPerSecond"].get<double>(), 0);
  EXPECT_EQ(nlohmann::json::parse(ranks[0]->out())["accuracy"], result["accuracy"]);  // printed too
  auto progress = nlohmann::json::parse(ReadFile(dir_ + "/progress-0"));
  EXPECT_EQ(progress["phase"], "done");
  for (const char* key : {"step", "totalSteps", "epoch", "epochs", "loss", "samplesPerSecond", "etaSeconds", "elapsedSeconds"}) {
    EXPECT_TRUE(progress.contains(key)) << key;
  }
  // The last evaluation is the final one: at the last step, the result's metrics.
  EXPECT_EQ(progress["evaluation"]["step"], result["steps"]) << progress.dump();
  EXPECT_EQ(progress["evaluation"]["metrics"], result["metrics"]) << progress.dump();
  EXPECT_TRUE(fs::exists(dir_ + "/model/model.json"));
  EXPECT_TRUE(fs::exists(dir_ + "/model/weights.bin"));
  EXPECT_FALSE(fs::exists(dir_ + "/progress-1"));  // rank 0 only
}

// Makes this process's mounts private and gives it a /dev/shm of its own (a new tmpfs), as
// another pod or machine has; false when that is not allowed (not root).
bool EnterOwnDevShm() {
  return ::unshare(CLONE_NEWNS) == 0 && ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
         ::mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=64m") == 0;
}

// Four ranks as two hosts for real: ranks 2 and 3 share a mount namespace with a /dev/shm
// of its own, ranks 0 and 1 see this one. The host identities differ (the device of
// /dev/shm), so no group forms; the ring hops 0 -> 1 and 2 -> 3 go through shared-memory
// channels, 1 -> 2 and 3 -> 0 over TCP, and the trained weights are bit for bit those of
// an all-TCP run.
TEST_F(ProcessTest, RanksOnTwoHostsUseSharedMemoryWithinEachAndTrainAsAllTcp) {
  if (const pid_t probe = ::fork(); probe == 0) {
    ::_exit(EnterOwnDevShm() ? 0 : 1);
  } else {
    int status = 0;
    ::waitpid(probe, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) GTEST_SKIP() << "no mount namespaces here (needs root)";
  }
  const std::string config = WriteConfig(R"({"epochs": 2, "batchSize": 32})");
  auto train = [&](bool two_hosts) {
    const std::string out = dir_ + (two_hosts ? "/two-hosts" : "/tcp");
    // Rank 2 makes the namespace and sends its pid (0: it could not) to rank 3, which
    // then enters the same one.
    int handoff[2];
    EXPECT_EQ(::pipe(handoff), 0);
    auto in_child = [&](int r) {
      if (two_hosts && r == 2) {
        const pid_t self = EnterOwnDevShm() ? ::getpid() : 0;
        (void)!::write(handoff[1], &self, sizeof self);
      }
      if (two_hosts && r == 3) {
        pid_t rank2 = 0;
        (void)!::read(handoff[0], &rank2, sizeof rank2);
        const int ns = ::open(("/proc/" + std::to_string(rank2) + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
        if (rank2 <= 0 || ns < 0 || ::setns(ns, CLONE_NEWNS) != 0) ::_exit(125);
      }
      ::close(handoff[0]);
      ::close(handoff[1]);
    };
    auto ranks = StartRanks(4, {"--config", config, "--output-dir", out, "--backend", "cpu"},
                            {{"MLSCALE_TRANSPORT", two_hosts ? "auto" : "tcp"}}, {}, in_child);
    ::close(handoff[0]);
    ::close(handoff[1]);
    for (auto& rank : ranks) EXPECT_EQ(rank->Wait(seconds(180)), 0) << rank->err();
    auto result = nlohmann::json::parse(ranks[0]->out(), nullptr, false);
    EXPECT_TRUE(result.is_object()) << ranks[0]->out() << ranks[0]->err();
    return std::make_pair(result.is_object() ? result.value("transport", "") : "", ReadFile(out + "/weights.bin"));
  };
  const auto [tcp_transport, tcp_weights] = train(false);
  const auto [transport, weights] = train(true);
  EXPECT_EQ(tcp_transport, "tcp");
  EXPECT_EQ(transport, "tcp+shared-memory");  // rank 0: its hop to rank 1
  ASSERT_FALSE(weights.empty());
  EXPECT_TRUE(weights == tcp_weights) << "the two-host run trained other weights than the all-TCP run";
}

TEST_F(ProcessTest, BadConfigExitsOneNamingTheField) {
  Process process({"--config", WriteConfig(R"({"optimizer": {"learningRate": -1}})")},
                  {{"MLSCALE_TERMINATION_LOG", dir_ + "/termination"}}, dir_, "bad");
  EXPECT_EQ(process.Wait(seconds(30)), 1);
  EXPECT_NE(process.err().find("trainer.optimizer.learningRate: must be > 0"), std::string::npos) << process.err();
  Process no_flag({}, {}, dir_, "noflag");
  EXPECT_EQ(no_flag.Wait(seconds(30)), 1);
  EXPECT_NE(no_flag.err().find("--config is required"), std::string::npos);
  // Flags come from Boost.Program_options: errors name the flag, --help is generated.
  Process unknown({"--config", WriteConfig(R"({"epochs": 1})"), "--epochs", "3"}, {}, dir_, "unknown");
  EXPECT_EQ(unknown.Wait(seconds(30)), 1);
  EXPECT_NE(unknown.err().find("unrecognised option '--epochs'"), std::string::npos) << unknown.err();
  Process missing_value({"--config"}, {}, dir_, "novalue");
  EXPECT_EQ(missing_value.Wait(seconds(30)), 1);
  EXPECT_NE(missing_value.err().find("config"), std::string::npos) << missing_value.err();
  // A malformed switch in the environment is an error too, not silently the default.
  Process bad_shard({"--config", WriteConfig(R"({"epochs": 1})")}, {{"MLSCALE_SHARD_OPTIMIZER", "yes"}}, dir_,
                    "badshard");
  EXPECT_EQ(bad_shard.Wait(seconds(30)), 1);
  EXPECT_NE(bad_shard.err().find("MLSCALE_SHARD_OPTIMIZER='yes' is neither '0' nor '1'"), std::string::npos)
      << bad_shard.err();
  Process help({"--help"}, {}, dir_, "help");
  EXPECT_EQ(help.Wait(seconds(30)), 0);
  for (const char* flag : {"--config FILE", "--checkpoint-dir DIR", "--output-dir DIR", "--backend", "--help"}) {
    EXPECT_NE(help.out().find(flag), std::string::npos) << flag << " missing from --help:\n" << help.out();
  }
}

TEST_F(ProcessTest, GpuBackendIsOneFlagAwayAndSaysWhyNot) {
  Process process({"--config", WriteConfig(R"({"epochs": 1})"), "--backend", "gpu"}, {}, dir_, "gpu");
  if (GpuBackendCompiled()) {
    const int code = process.Wait(seconds(60));
    EXPECT_TRUE(code == 0 || code == 1) << process.err();  // 1 when no device is visible
    if (code == 1) {
      EXPECT_NE(process.err().find("GPU"), std::string::npos) << process.err();
    }
  } else {
    EXPECT_EQ(process.Wait(seconds(30)), 1);
    EXPECT_NE(process.err().find("built without the GPU backend"), std::string::npos) << process.err();
  }
}

// Separate processes with the same seed and thread count write the same weights, bit for
// bit, and report the same losses: one process with 2 threads, and 2 ranks of 1 thread.
TEST_F(ProcessTest, SameSeedAndThreadsWriteTheSameWeightsInSeparateProcesses) {
  const std::string config = WriteConfig(R"({"epochs": 3, "model": {"dropout": 0.2}})");
  struct Run {
    nlohmann::json result;  // rank 0's
    std::string weights;    // weights.bin
  };
  auto run = [&](int ranks, const std::string& name) {
    const std::string model = dir_ + "/" + name;
    std::vector<std::unique_ptr<Process>> processes;
    if (ranks == 1) {
      processes.push_back(std::make_unique<Process>(
          std::vector<std::string>{"--config", config, "--output-dir", model},
          std::map<std::string, std::string>{{"OMP_NUM_THREADS", "2"}, {"MLSCALE_TERMINATION_LOG", dir_ + "/t-" + name}},
          dir_, name));
    } else {
      processes = StartRanks(ranks, {"--config", config, "--output-dir", model});
    }
    for (auto& process : processes) EXPECT_EQ(process->Wait(seconds(120)), 0) << process->err();
    std::string out = processes[0]->out();  // the result is the last line
    while (!out.empty() && out.back() == '\n') out.pop_back();
    auto result = nlohmann::json::parse(out.substr(out.rfind('\n') + 1), nullptr, false);
    EXPECT_FALSE(result.is_discarded()) << out;
    return Run{result, ReadFile(model + "/weights.bin")};
  };
  for (int ranks : {1, 2}) {
    const Run a = run(ranks, "a" + std::to_string(ranks)), b = run(ranks, "b" + std::to_string(ranks));
    ASSERT_FALSE(a.weights.empty());
    EXPECT_TRUE(a.weights == b.weights) << ranks << " rank(s): weights.bin differs";
    EXPECT_EQ(a.result["loss"], b.result["loss"]);
    EXPECT_EQ(a.result["testLoss"], b.result["testLoss"]);
    EXPECT_EQ(a.result["worldSize"], ranks);
    EXPECT_EQ(a.result["backend"], ranks == 1 ? "cpu (onednn, 2 threads)" : "cpu (onednn, 1 thread)");
  }
}

TEST_F(ProcessTest, RunsUnderMpirun) {
  if (::system("command -v mpirun >/dev/null 2>&1") != 0) GTEST_SKIP() << "mpirun is not installed";
  const std::string config = WriteConfig(R"({"epochs": 2})");
  // OpenMPI does not free all it allocates: no leak check in sanitizer builds.
  const std::string command = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "
                              "ASAN_OPTIONS=detect_leaks=0 "
                              "mpirun --oversubscribe -np 2 " + std::string(MLSCALE_TRAIN_BINARY) + " --config " +
                              config + " > " + dir_ + "/mpi.out 2> " + dir_ + "/mpi.err";
  ASSERT_EQ(::system(command.c_str()), 0) << ReadFile(dir_ + "/mpi.err");
  auto result = nlohmann::json::parse(ReadFile(dir_ + "/mpi.out"));
  EXPECT_EQ(result["communicator"], "mpi");
  EXPECT_EQ(result["worldSize"], 2);
  EXPECT_EQ(result["steps"], 46);
}

}  // namespace
}  // namespace mlscale::worker
