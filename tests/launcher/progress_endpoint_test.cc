// Rank 0's progress endpoint over real HTTP, served by a real mlscale-launch process:
// with the real trainer (its progress while it trains, its result in the termination
// log), and with the rank_probe peer waiting in the trainer's place so that the test can
// write the files and send wrong tokens, malformed and oversized requests, stalled and
// surplus connections. (The limits themselves belong to common/http and are tested
// there; these check that the endpoint is behind them with its own settings.)
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
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

const std::string kToken(64, '7');

class ProgressEndpointTest : public ::testing::Test {
 protected:
  // mlscale-launch as the only rank (WORLD_SIZE=1) of a job with a token, running `command`.
  Started StartLauncher(const std::vector<std::string>& command, std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> env{{"WORLD_SIZE", "1"},
                                           {"RANK", "0"},
                                           {"MLSCALE_RUN_TOKEN", kToken},
                                           {"MLSCALE_PROGRESS_PORT", std::to_string(port_)},
                                           {"MLSCALE_STATE_DIR", state_.string()},
                                           {"MLSCALE_TERMINATION_LOG", termination_log_.string()},
                                           {"PROBE_REPORT_DIR", scratch_.path().string()}};
    for (auto& [name, value] : extra) env[name] = value;
    std::vector<std::string> argv{kLaunchProgram, "--bind-address", "127.0.0.1", "--"};
    argv.insert(argv.end(), command.begin(), command.end());
    return StartProgram(argv, env, scratch_.path() / "launcher.log");
  }
  // A probe that waits for SIGTERM, and the endpoint answering.
  Started StartWaitingProbe() {
    Started launcher = StartLauncher({kProbeProgram}, {{"PROBE_BEHAVIOR", "wait-for-term"}});
    EXPECT_TRUE(WaitForFile(scratch_.path() / "ready-0", 20s)) << ReadText(launcher.output);
    return launcher;
  }
  HttpReply Get(const std::string& token, const std::string& path = "/v1/progress") {
    return HttpExchange("127.0.0.1", port_, HttpGet(path, token));
  }
  void Write(const fs::path& path, const std::string& text) {
    fs::path temporary = path.string() + ".tmp";
    std::ofstream(temporary) << text;
    fs::rename(temporary, path);
  }

  ScratchDirectory scratch_;
  fs::path state_ = scratch_.path() / "state";
  fs::path termination_log_ = scratch_.path() / "termination-log";
  std::uint16_t port_ = FreePort();
};

TEST_F(ProgressEndpointTest, ServesTheTrainersProgressWhileItTrainsAndLeavesTheResultInTheTerminationLog) {
  fs::path config = scratch_.path() / "trainer.json";
  std::ofstream(config) << R"({"epochs": 60})";  // the bundled digits set, a few seconds of training
  Started launcher = StartLauncher({MLSCALE_TRAIN_PROGRAM, "--config", config.string(), "--output-dir",
                                    (scratch_.path() / "model").string(), "--backend", "cpu"});
  std::set<std::int64_t> steps_seen;
  std::set<std::string> phases_seen;
  while (launcher.process.running()) {
    if (launcher.process.Poll()) break;
    HttpReply reply = HttpExchange("127.0.0.1", port_, HttpGet("/v1/progress", kToken), 5s);
    if (reply.status == 0) continue;  // not listening yet, or already gone
    ASSERT_EQ(reply.status, 200) << reply.headers << reply.body;
    json document = json::parse(reply.body, nullptr, false);
    ASSERT_TRUE(document.is_object()) << reply.body;
    EXPECT_TRUE(document["time"].is_string());
    EXPECT_EQ(document["time"].get<std::string>().size(), 20u) << document["time"];
    if (document["progress"].is_object()) {
      const json& progress = document["progress"];
      EXPECT_EQ(progress["totalSteps"].is_number(), progress.contains("totalSteps"));
      steps_seen.insert(progress.value("step", std::int64_t{-1}));
      phases_seen.insert(progress.value("phase", ""));
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(WaitFor(launcher.process, 240s), 0) << ReadText(launcher.output);
  EXPECT_FALSE(steps_seen.empty()) << "no progress was ever served; launcher log:\n" << ReadText(launcher.output);
  EXPECT_TRUE(phases_seen.contains("training") || phases_seen.contains("loading")) << ReadText(launcher.output);

  json result = ReadJson(state_ / "result.json");
  ASSERT_TRUE(result.is_object()) << ReadText(launcher.output);
  EXPECT_GE(result["metrics"]["testAccuracy"].get<double>(), 0.9);
  EXPECT_TRUE(result["metrics"]["loss"].is_number());
  EXPECT_EQ(result["modelPath"], (scratch_.path() / "model").string());
  json logged = ReadJson(termination_log_);
  EXPECT_EQ(logged, result) << ReadText(termination_log_);
  EXPECT_LE(ReadText(termination_log_).size(), 4096u);
  EXPECT_EQ(ReadText(launcher.output).find(kToken), std::string::npos) << "the token must not be logged";
}

TEST_F(ProgressEndpointTest, OnlyTheRunTokenGetsIn) {
  Started launcher = StartWaitingProbe();
  HttpReply none = Get("");
  EXPECT_EQ(none.status, 401) << none.error;
  EXPECT_NE(none.headers.find("WWW-Authenticate: Bearer"), std::string::npos) << none.headers;
  EXPECT_EQ(Get(std::string(64, '8')).status, 401);
  EXPECT_EQ(Get(kToken.substr(0, 63)).status, 401);
  EXPECT_EQ(Get(kToken + "7").status, 401);
  std::string basic = "GET /v1/progress HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Basic " +
                      kToken + "\r\n\r\n";
  EXPECT_EQ(HttpExchange("127.0.0.1", port_, basic).status, 401);
  std::string lower = "GET /v1/progress HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: bearer " +
                      kToken + "\r\n\r\n";
  EXPECT_EQ(HttpExchange("127.0.0.1", port_, lower).status, 200) << "the scheme is case-insensitive";
  HttpReply good = Get(kToken);
  ASSERT_EQ(good.status, 200) << good.error;
  EXPECT_NE(good.headers.find("Content-Type: application/json"), std::string::npos) << good.headers;
  json document = json::parse(good.body);
  EXPECT_TRUE(document["progress"].is_null()) << "nothing written yet";
  EXPECT_TRUE(document["result"].is_null());
  launcher.process.Signal(SIGTERM);
  EXPECT_EQ(WaitFor(launcher.process, 10s), 143);
}

TEST_F(ProgressEndpointTest, ServesWhatTheFilesSayCheckedAndCapped) {
  Started launcher = StartWaitingProbe();
  Write(state_ / "progress.json",
        R"({"step": 5, "totalSteps": 10, "epoch": 1, "epochs": 2, "loss": 0.5, "samplesPerSecond": 100,
            "etaSeconds": 3.5, "elapsedSeconds": 2, "phase": "training", "secret": "dropped", "epochs2": 1,
            "loss2": "x"})");
  Write(state_ / "result.json", R"({"metrics": {"accuracy": 0.75}, "note": "kept as written"})");
  json document = json::parse(Get(kToken).body);
  EXPECT_EQ(document["progress"], json::parse(R"({"step": 5, "totalSteps": 10, "epoch": 1, "epochs": 2,
      "loss": 0.5, "samplesPerSecond": 100, "etaSeconds": 3.5, "elapsedSeconds": 2, "phase": "training"})"));
  EXPECT_EQ(document["result"], json::parse(R"({"metrics": {"accuracy": 0.75}, "note": "kept as written"})"));

  // Wrong types are dropped field by field; a file that is not a JSON object, or too
  // large, reads as null.
  Write(state_ / "progress.json", R"({"step": "five", "loss": 0.25, "phase": 7})");
  Write(state_ / "result.json", "{\"metrics\": {\"x\": \"" + std::string(70 * 1024, 'a') + "\"}}");
  document = json::parse(Get(kToken).body);
  EXPECT_EQ(document["progress"], json::parse(R"({"loss": 0.25})"));
  EXPECT_TRUE(document["result"].is_null());
  Write(state_ / "progress.json", "[1, 2]");
  Write(state_ / "result.json", "{\"metrics\": ");
  document = json::parse(Get(kToken).body);
  EXPECT_TRUE(document["progress"].is_null());
  EXPECT_TRUE(document["result"].is_null());
  launcher.process.Signal(SIGTERM);
  EXPECT_EQ(WaitFor(launcher.process, 10s), 143);
  EXPECT_FALSE(fs::exists(termination_log_)) << "no result, no termination message";
}

TEST_F(ProgressEndpointTest, RefusesMalformedOversizedAndStalledRequestsAndKeepsServing) {
  Started launcher = StartWaitingProbe();
  struct Case {
    std::string name, request;
    int status;
  };
  const std::vector<Case> cases = {
      {"not HTTP", "HELLO THERE\r\n\r\n", 400},
      {"bad version", "GET /v1/progress HTTP/9\r\n\r\n", 400},
      {"header without colon", "GET /v1/progress HTTP/1.1\r\nHost t\r\n\r\n", 400},
      {"other path", HttpGet("/v1/other", kToken), 404},
      {"path prefix", HttpGet("/v1/progress/x", kToken), 404},
      {"POST", "POST /v1/progress HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer " + kToken +
                   "\r\nContent-Length: 0\r\n\r\n", 405},
      {"a body", "GET /v1/progress HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + kToken +
                     "\r\nContent-Length: 5\r\n\r\nhello", 413},
      {"huge header", "GET /v1/progress HTTP/1.1\r\nHost: t\r\nX-Padding: " + std::string(20000, 'p') + "\r\n\r\n",
       431},
      {"huge chunked body", "GET /v1/progress HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "100000\r\n" + std::string(1000, 'b'), 413},
  };
  for (const auto& c : cases) {
    HttpReply reply = HttpExchange("127.0.0.1", port_, c.request);
    EXPECT_EQ(reply.status, c.status) << c.name << ": " << reply.error << reply.headers;
    EXPECT_EQ(reply.body.find(kToken), std::string::npos) << c.name;
  }
  // A client that stalls halfway through its headers is cut off (after the 5 s deadline)
  // with nothing sent back; so is one that connects and says nothing.
  HttpReply stalled = HttpExchange("127.0.0.1", port_, "GET /v1/progress HTTP/1.1\r\nHost:", 20s);
  EXPECT_EQ(stalled.status, 0);
  EXPECT_EQ(stalled.error.find("did not close"), std::string::npos) << stalled.error;
  HttpReply silent = HttpExchange("127.0.0.1", port_, "", 20s);
  EXPECT_EQ(silent.status, 0);
  EXPECT_EQ(silent.error.find("did not close"), std::string::npos) << silent.error;
  EXPECT_EQ(Get(kToken).status, 200) << "still serving";
  launcher.process.Signal(SIGTERM);
  EXPECT_EQ(WaitFor(launcher.process, 10s), 143);
}

TEST_F(ProgressEndpointTest, ConnectionsBeyondTheLimitAreRefusedAndServingResumes) {
  Started launcher = StartWaitingProbe();
  ASSERT_EQ(Get(kToken).status, 200);
  std::vector<FileDescriptor> idle;
  for (int i = 0; i < 16; ++i) {
    auto connection = ConnectTcp("127.0.0.1", port_, Clock::now() + 5s);
    ASSERT_TRUE(connection.ok()) << connection.status().ToString();
    idle.push_back(std::move(*connection));
  }
  std::this_thread::sleep_for(300ms);  // the server has accepted them all
  HttpReply surplus = Get(kToken);
  EXPECT_EQ(surplus.status, 503) << "a 17th connection is refused: " << surplus.error;
  idle.clear();
  auto deadline = Clock::now() + 10s;
  int status = 0;
  while (Clock::now() < deadline && (status = Get(kToken).status) != 200) std::this_thread::sleep_for(100ms);
  EXPECT_EQ(status, 200);
  launcher.process.Signal(SIGTERM);
  EXPECT_EQ(WaitFor(launcher.process, 10s), 143);
}

TEST_F(ProgressEndpointTest, WithoutATokenThereIsNoEndpoint) {
  Started launcher = StartLauncher({kProbeProgram}, {{"MLSCALE_RUN_TOKEN", ""}});
  EXPECT_EQ(WaitFor(launcher.process, 20s), 0) << ReadText(launcher.output);
  EXPECT_NE(ReadText(launcher.output).find("the progress endpoint is off"), std::string::npos);
  // The probe's result still reaches the termination log.
  EXPECT_EQ(ReadJson(termination_log_)["metrics"]["testAccuracy"], 0.5) << ReadText(termination_log_);
}

}  // namespace
}  // namespace mlscale::launcher
