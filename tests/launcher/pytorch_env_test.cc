// A user image's script under `mlscale-launch --mode env`: the real PyTorch DDP example
// (examples/pytorch/ddp_train.py, gloo on CPU) on 2 ranks, each behind its own launcher
// as in two worker pods. It checks the torchrun environment reaches PyTorch (the ranks
// find each other through MASTER_ADDR/MASTER_PORT and train), and the documented protocol:
// progress served by rank 0's endpoint while it trains, the final metric in rank 0's
// termination log.
//
// PyTorch comes from the venv tests/launcher/setup-torch-venv.sh creates (large: see
// launcher/README.md). Without it the test is SKIPPED, saying so; ctest -L torch selects it.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <thread>

#include "mlscale/launcher/socket.h"
#include "support.h"

namespace mlscale::launcher {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace testing;
using namespace std::chrono_literals;

// MLSCALE_TORCH_VENV, else <MLSCALE_CACHE or ~/.cache/mlscale>/venv-torch.
fs::path TorchVenv() {
  if (const char* venv = std::getenv("MLSCALE_TORCH_VENV"); venv != nullptr && *venv != '\0') return venv;
  if (const char* cache = std::getenv("MLSCALE_CACHE"); cache != nullptr && *cache != '\0') {
    return fs::path(cache) / "venv-torch";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : "/root") / ".cache" / "mlscale" / "venv-torch";
}

TEST(PyTorchEnvMode, ADdpScriptOnTwoRanksTrainsAndReportsByTheFileProtocol) {
  const fs::path venv = TorchVenv();
  if (!fs::exists(venv / ".complete")) {
    std::fprintf(stderr,
                 "\n*** SKIPPED: no PyTorch venv at %s. Create it with tests/launcher/setup-torch-venv.sh "
                 "(a cold install downloads the CUDA build of torch: see launcher/README.md). ***\n\n",
                 venv.c_str());
    GTEST_SKIP() << "no PyTorch venv at " << venv << " (tests/launcher/setup-torch-venv.sh creates it)";
  }
  ScratchDirectory scratch;
  const std::string token(64, '5');
  const std::uint16_t master_port = FreePort(), progress_port = FreePort();
  std::vector<Started> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    fs::path own = scratch.path() / ("rank-" + std::to_string(rank));
    fs::create_directories(own);
    std::map<std::string, std::string> env{{"WORLD_SIZE", "2"},
                                           {"RANK", std::to_string(rank)},
                                           {"MASTER_ADDR", "127.0.0.1"},
                                           {"MASTER_PORT", std::to_string(master_port)},
                                           {"MLSCALE_RUN_TOKEN", token},
                                           {"MLSCALE_PROGRESS_PORT", std::to_string(progress_port)},
                                           {"MLSCALE_STATE_DIR", (own / "state").string()},
                                           {"MLSCALE_TERMINATION_LOG", (own / "termination-log").string()}};
    ranks.push_back(StartProgram({kLaunchProgram, "--mode", "env", "--bind-address", "127.0.0.1", "--",
                                  (venv / "bin" / "python").string(), MLSCALE_DDP_EXAMPLE, "--data",
                                  MLSCALE_DIGITS_CSV},
                                 env, own / "launcher.log"));
  }
  // Poll rank 0's endpoint until both ranks end (importing torch takes a while).
  std::set<std::int64_t> steps_seen;
  auto deadline = Clock::now() + 600s;
  std::vector<std::optional<int>> exit_codes(2);
  while (Clock::now() < deadline && (!exit_codes[0] || !exit_codes[1])) {
    for (int rank = 0; rank < 2; ++rank) {
      if (!exit_codes[size_t(rank)]) exit_codes[size_t(rank)] = ranks[size_t(rank)].process.Poll();
    }
    HttpReply reply = HttpExchange("127.0.0.1", progress_port, HttpGet("/v1/progress", token), 5s);
    if (reply.status == 200) {
      json document = json::parse(reply.body, nullptr, false);
      if (document.is_object() && document["progress"].is_object()) {
        steps_seen.insert(document["progress"].value("step", std::int64_t{-1}));
        EXPECT_EQ(document["progress"]["phase"], "training");
      }
    }
    std::this_thread::sleep_for(100ms);
  }
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_EQ(exit_codes[size_t(rank)], 0) << "rank " << rank << ":\n" << ReadText(ranks[size_t(rank)].output);
  }
  EXPECT_FALSE(steps_seen.empty()) << "rank 0's endpoint never served the script's progress:\n"
                                   << ReadText(ranks[0].output);
  json result = ReadJson(scratch.path() / "rank-0" / "termination-log");
  ASSERT_TRUE(result.is_object()) << ReadText(ranks[0].output);
  EXPECT_GE(result["metrics"]["accuracy"].get<double>(), 0.85) << result.dump();
  json progress = ReadJson(scratch.path() / "rank-0" / "state" / "progress.json");
  EXPECT_EQ(progress["step"], progress["totalSteps"]) << progress.dump();
  EXPECT_NE(ReadText(ranks[0].output).find("on 2 ranks"), std::string::npos) << ReadText(ranks[0].output);
  EXPECT_FALSE(fs::exists(scratch.path() / "rank-1" / "termination-log")) << "only rank 0 reports";
}

}  // namespace
}  // namespace mlscale::launcher
