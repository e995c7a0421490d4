// Real mlscale-train processes talking over loopback, as the launcher starts them.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
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
  Process(const std::vector<std::string>& args, const std::map<std::string, std::string>& env, const std::string& dir,
          const std::string& name)
      : out_(dir + "/" + name + ".out"), err_(dir + "/" + name + ".err") {
    pid_ = ::fork();
    if (pid_ == 0) {
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
  std::vector<std::unique_ptr<Process>> StartRanks(int n, const std::vector<std::string>& args,
                                                   std::map<std::string, std::string> extra_env = {},
                                                   std::vector<std::map<std::string, std::string>> per_rank_env = {}) {
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
      ranks.push_back(std::make_unique<Process>(args, env, dir_, "rank" + std::to_string(r)));
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
  EXPECT_TRUE(fs::exists(dir_ + "/model/model.json"));
  EXPECT_TRUE(fs::exists(dir_ + "/model/weights.bin"));
  EXPECT_FALSE(fs::exists(dir_ + "/progress-1"));  // rank 0 only
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
