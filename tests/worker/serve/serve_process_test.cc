// mlscale-serve as a real process over real HTTP: every endpoint of the protocols, a table
// of malformed requests, graceful drain on SIGTERM under load and a version reload under
// load, both with zero failed requests counted by the load generator (wrk).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "artifacts.h"
#include "command.h"
#include "raw_connection.h"

extern char** environ;

namespace mlscale::serve {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using mlscale::testing::Exchange;
using nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// One mlscale-serve process on a free port; its stderr goes to a log file. Killed (if
// still running) when destroyed.
class ServeProcess {
 public:
  ServeProcess(const std::string& log_path, std::vector<std::string> flags) : log_path_(log_path) {
    std::vector<std::string> argv = {MLSCALE_SERVE_BINARY, "--address", "127.0.0.1", "--port", "0", "--threads", "2"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    EXPECT_EQ(posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    const std::regex listening("listening on [0-9.]+:([0-9]+)");
    for (int attempt = 0; attempt < 500 && port_ == 0; ++attempt) {
      std::smatch match;
      const std::string log = ReadFile(log_path_);
      if (std::regex_search(log, match, listening)) port_ = uint16_t(std::stoi(match[1]));
      else std::this_thread::sleep_for(20ms);
    }
    EXPECT_NE(port_, 0) << "mlscale-serve did not start:\n" << ReadFile(log_path_);
  }
  ~ServeProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return ReadFile(log_path_); }
  void Signal(int signal) { ::kill(pid_, signal); }
  // The exit code, or -1 when it has not exited within `timeout`.
  int WaitForExit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(20ms);
    }
    return -1;
  }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  bool exited_ = false;
};

// What wrk counted.
struct LoadResult {
  int64_t requests = 0;
  int64_t non_2xx = 0;
  int64_t socket_errors = 0;
  std::string output;
};

LoadResult RunWrk(const std::string& url, const std::string& body_file, int connections, int seconds) {
  const std::string script = body_file + ".lua";
  std::ofstream(script) << "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
                        << "local f = io.open(\"" << body_file << "\")\nwrk.body = f:read(\"*a\")\nf:close()\n";
  auto run = mlscale::testing::RunCommand({"wrk", "-t2", "-c" + std::to_string(connections), "-d" + std::to_string(seconds) + "s",
                                           "-s", script, url});
  LoadResult result;
  result.output = run.output;
  EXPECT_EQ(run.exit_code, 0) << "wrk (scripts/deps.sh installs it) failed:\n" << run.output;
  std::smatch match;
  if (std::regex_search(run.output, match, std::regex("([0-9]+) requests in"))) result.requests = std::stoll(match[1]);
  if (std::regex_search(run.output, match, std::regex("Non-2xx or 3xx responses: ([0-9]+)"))) {
    result.non_2xx = std::stoll(match[1]);
  }
  if (std::regex_search(run.output, match,
                        std::regex("Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)"))) {
    for (int i = 1; i <= 4; ++i) result.socket_errors += std::stoll(match[size_t(i)]);
  }
  return result;
}

class ServeProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("mlscale-serve-process-" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    fs::create_directories(root_ + "/models");
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string Model(const std::string& relative, int64_t inputs, int64_t classes, uint64_t seed = 1) {
    const std::string dir = root_ + "/models/" + relative;
    testing::WriteArtifact(dir, testing::MakeArtifact(inputs, {16}, classes, seed));
    return dir;
  }
  std::string BodyFile(const std::string& body) {
    const std::string path = root_ + "/body-" + std::to_string(files_++) + ".json";
    std::ofstream(path) << body;
    return path;
  }
  std::string root_;
  int files_ = 0;
};

TEST_F(ServeProcessTest, EveryEndpointAnswersAsTheProtocolsSay) {
  Model("digits/1", 8, 3);
  Model("digits/2", 8, 3, 2);
  Model("broken/1", 8, 3);
  fs::resize_file(root_ + "/models/broken/1/weights.bin", 12);
  ServeProcess serve(root_ + "/serve.log", {"--model-repository", root_ + "/models"});
  ASSERT_NE(serve.port(), 0);
  const uint16_t port = serve.port();

  auto live = Exchange(port, "GET", "/v2/health/live");
  EXPECT_EQ(live.status, 200);
  EXPECT_EQ(json::parse(live.body), json::parse(R"({"live":true})"));
  auto ready = Exchange(port, "GET", "/v2/health/ready");  // "broken" is not ready
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(json::parse(ready.body)["ready"], false);

  auto server = json::parse(Exchange(port, "GET", "/v2").body);
  EXPECT_EQ(server["name"], "mlscale-serve");
  EXPECT_TRUE(server.contains("version") && server["extensions"].is_array());

  for (const std::string path : {"/v2/models/digits", "/v2/models/digits/versions/2"}) {
    SCOPED_TRACE(path);
    auto metadata = Exchange(port, "GET", path);
    ASSERT_EQ(metadata.status, 200) << metadata.body;
    auto m = json::parse(metadata.body);
    EXPECT_EQ(m["name"], "digits");
    EXPECT_EQ(m["versions"], json::parse(R"(["2"])"));
    EXPECT_EQ(m["platform"], "mlscale-mlp");
    EXPECT_EQ(m["inputs"], json::parse(R"([{"name":"input","datatype":"FP32","shape":[-1,8]}])"));
    EXPECT_EQ(m["outputs"][0], json::parse(R"({"name":"probabilities","datatype":"FP32","shape":[-1,3]})"));
    EXPECT_EQ(m["outputs"][1], json::parse(R"({"name":"class","datatype":"INT64","shape":[-1]})"));
  }
  EXPECT_EQ(Exchange(port, "GET", "/v2/models/digits/versions/1").status, 404);  // not the served version
  auto model_ready = Exchange(port, "GET", "/v2/models/digits/ready");
  EXPECT_EQ(model_ready.status, 200);
  EXPECT_EQ(json::parse(model_ready.body)["ready"], true);
  EXPECT_EQ(Exchange(port, "GET", "/v2/models/digits/versions/2/ready").status, 200);
  auto broken_ready = Exchange(port, "GET", "/v2/models/broken/ready");
  EXPECT_EQ(broken_ready.status, 503);
  EXPECT_NE(json::parse(broken_ready.body)["error"].get<std::string>().find("version 1 refused"), std::string::npos);
  auto broken_infer = Exchange(port, "POST", "/v2/models/broken/infer", testing::InferBody(1, 8));
  EXPECT_EQ(broken_infer.status, 503);
  EXPECT_NE(broken_infer.body.find("SHA-256"), std::string::npos) << broken_infer.body;

  for (const std::string path : {"/v2/models/digits/infer", "/v2/models/digits/versions/2/infer"}) {
    SCOPED_TRACE(path);
    auto infer = Exchange(port, "POST", path, testing::InferBody(3, 8));
    ASSERT_EQ(infer.status, 200) << infer.body;
    auto r = json::parse(infer.body);
    EXPECT_EQ(r["model_name"], "digits");
    EXPECT_EQ(r["model_version"], "2");
    EXPECT_EQ(r["id"], "t");
    ASSERT_EQ(r["outputs"].size(), 2u);
    EXPECT_EQ(r["outputs"][0]["shape"], json::parse("[3,3]"));
    float sum = 0;
    for (int c = 0; c < 3; ++c) sum += r["outputs"][0]["data"][c].get<float>();
    EXPECT_NEAR(sum, 1.0f, 1e-5);
    EXPECT_EQ(r["outputs"][1]["shape"], json::parse("[3]"));
  }

  auto models = json::parse(Exchange(port, "GET", "/v1/models").body);
  EXPECT_EQ(models["models"], json::parse(R"(["broken","digits"])"));
  auto v1_model = json::parse(Exchange(port, "GET", "/v1/models/digits").body);
  EXPECT_EQ(v1_model["ready"], true);
  auto predict = Exchange(port, "POST", "/v1/models/digits:predict", R"({"instances":[[1,2,3,4,5,6,7,8],[0,0,0,0,0,0,0,0]]})");
  ASSERT_EQ(predict.status, 200) << predict.body;
  auto p = json::parse(predict.body);
  EXPECT_EQ(p["predictions"].size(), 2u);
  EXPECT_EQ(p["probabilities"][0].size(), 3u);

  auto metrics = Exchange(port, "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.raw.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  for (const char* line : {"mlscale_serve_requests_total{model=\"digits\",code=\"200\"} 8",  // metadata 2, ready 2, infer 2, v1 2
                           "mlscale_serve_requests_total{model=\"broken\",code=\"503\"} 2",
                           "mlscale_serve_requests_in_flight 1",  // this request
                           "mlscale_serve_request_duration_seconds_count{model=\"digits\"}",
                           "mlscale_serve_model_ready{model=\"digits\",version=\"2\"} 1",
                           "mlscale_serve_model_ready{model=\"broken\",version=\"\"} 0",
                           "mlscale_serve_model_load_failures_total{model=\"broken\"} 1",
                           "# TYPE mlscale_serve_batch_size histogram",
                           "# TYPE mlscale_serve_queue_duration_seconds histogram"}) {
    EXPECT_NE(metrics.body.find(line), std::string::npos) << line << "\n" << metrics.body;
  }
}

TEST_F(ServeProcessTest, MalformedRequestsGetTheRight4xxAsJsonErrors) {
  Model("digits/1", 8, 3);
  ServeProcess serve(root_ + "/serve.log", {"--model-repository", root_ + "/models", "--max-body-bytes", "4000"});
  ASSERT_NE(serve.port(), 0);
  struct Case {
    const char* name;
    std::string method, path, body;
    int status;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"malformed JSON", "POST", "/v2/models/digits/infer", "{\"inputs\": [", 400, "not valid JSON"},
      {"wrong shape", "POST", "/v2/models/digits/infer", testing::InferBody(1, 7), 400, "inputs[0].shape"},
      {"wrong datatype", "POST", "/v2/models/digits/infer",
       R"({"inputs":[{"name":"input","shape":[1,8],"datatype":"BYTES","data":["a","b","c","d","e","f","g","h"]}]})", 400,
       "inputs[0].datatype"},
      {"data of the wrong type", "POST", "/v2/models/digits/infer",
       R"({"inputs":[{"name":"input","shape":[1,8],"datatype":"INT32","data":[1,2,3,4,5,6,7,8.5]}]})", 400,
       "is not an integer"},
      {"unknown model", "POST", "/v2/models/nope/infer", testing::InferBody(1, 8), 404, "model 'nope' not found"},
      {"unknown version", "POST", "/v2/models/digits/versions/9/infer", testing::InferBody(1, 8), 404, "version 9"},
      {"bad version", "GET", "/v2/models/digits/versions/x1", "", 400, "not a version number"},
      {"body over the limit", "POST", "/v2/models/digits/infer", testing::InferBody(400, 8), 413, "too large"},
      {"GET on infer", "GET", "/v2/models/digits/infer", "", 405, "use POST"},
      {"POST on health", "POST", "/v2/health/live", "{}", 405, "use GET"},
      {"unknown path", "GET", "/v3/whatever", "", 404, "no such endpoint"},
      {"v1 unknown model", "POST", "/v1/models/nope:predict", R"({"instances":[[1]]})", 404, "not found"},
      {"v1 wrong row", "POST", "/v1/models/digits:predict", R"({"instances":[[1,2]]})", 400, "the model takes 8"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto answer = Exchange(serve.port(), c.method, c.path, c.body);
    EXPECT_EQ(answer.status, c.status) << answer.raw;
    auto body = json::parse(answer.body, nullptr, false);
    ASSERT_TRUE(body.is_object() && body["error"].is_string()) << answer.body;
    EXPECT_NE(body["error"].get<std::string>().find(c.message), std::string::npos) << answer.body;
  }
  EXPECT_EQ(Exchange(serve.port(), "GET", "/v2/health/ready").status, 200);  // still up
}

TEST_F(ServeProcessTest, SigtermDrainsUnderLoadWithoutAFailedRequest) {
  Model("digits/1", 64, 10);
  ServeProcess serve(root_ + "/serve.log",
                     {"--model-repository", root_ + "/models", "--drain-seconds", "3", "--max-batch-size", "8"});
  ASSERT_NE(serve.port(), 0);
  const std::string body = BodyFile(testing::InferBody(1, 64));
  auto load = std::async(std::launch::async, [&] { return RunWrk(serve.url() + "/v2/models/digits/infer", body, 8, 3); });
  std::this_thread::sleep_for(1s);
  serve.Signal(SIGTERM);
  std::this_thread::sleep_for(300ms);
  // Not ready at once, while inference goes on.
  EXPECT_EQ(Exchange(serve.port(), "GET", "/v2/health/ready").status, 503);
  EXPECT_EQ(Exchange(serve.port(), "GET", "/v2/models/digits/ready").status, 503);
  EXPECT_EQ(Exchange(serve.port(), "GET", "/v2/health/live").status, 200);
  EXPECT_EQ(Exchange(serve.port(), "POST", "/v2/models/digits/infer", testing::InferBody(1, 64)).status, 200);
  LoadResult result = load.get();
  EXPECT_GT(result.requests, 100) << result.output;
  EXPECT_EQ(result.non_2xx, 0) << result.output;
  EXPECT_EQ(result.socket_errors, 0) << result.output;
  EXPECT_EQ(serve.WaitForExit(10s), 0) << serve.log();
  EXPECT_NE(serve.log().find("drained: every request answered"), std::string::npos) << serve.log();
}

TEST_F(ServeProcessTest, NewVersionIsServedUnderLoadWithoutAFailedRequest) {
  Model("digits/1", 64, 10);
  ServeProcess serve(root_ + "/serve.log", {"--model-repository", root_ + "/models", "--poll-seconds", "0.2"});
  ASSERT_NE(serve.port(), 0);
  const std::string body = BodyFile(testing::InferBody(1, 64));
  auto load = std::async(std::launch::async, [&] { return RunWrk(serve.url() + "/v2/models/digits/infer", body, 8, 3); });
  std::this_thread::sleep_for(1s);
  Model("digits/2", 64, 10, 5);  // written in place, as the trainer writes it
  LoadResult result = load.get();
  EXPECT_GT(result.requests, 100) << result.output;
  EXPECT_EQ(result.non_2xx, 0) << result.output;
  EXPECT_EQ(result.socket_errors, 0) << result.output;
  auto infer = json::parse(Exchange(serve.port(), "POST", "/v2/models/digits/infer", testing::InferBody(1, 64)).body);
  EXPECT_EQ(infer["model_version"], "2") << serve.log();
  EXPECT_NE(serve.log().find("serving version 2 (was 1)"), std::string::npos) << serve.log();
}

TEST_F(ServeProcessTest, BadFlagsAreRefusedNamingTheFlag) {
  for (const auto& [flags, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{}, "no models"},
           {{"--model", "digits"}, "--model 'digits': expected NAME=VALUE"},
           {{"--model-repository", "/nonexistent"}, "is not a folder"},
           {{"--model-repository", "/tmp", "--max-batch-size", "0"}, "--max-batch-size"},
           {{"--bogus"}, "unrecognised option"},
       }) {
    std::vector<std::string> argv = {MLSCALE_SERVE_BINARY};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto run = mlscale::testing::RunCommand(argv);
    EXPECT_EQ(run.exit_code, 1) << run.output;
    EXPECT_NE(run.output.find(message), std::string::npos) << run.output;
  }
  auto help = mlscale::testing::RunCommand({MLSCALE_SERVE_BINARY, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("--model-repository"), std::string::npos);
}

}  // namespace
}  // namespace mlscale::serve
