#include "support.h"

#include <unistd.h>

#include <csignal>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "mlscale/launcher/socket.h"

namespace mlscale::launcher::testing {

namespace fs = std::filesystem;

ScratchDirectory::ScratchDirectory() {
  std::random_device random;
  path_ = fs::temp_directory_path() / ("mlscale-launcher-test-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(random()));
  fs::create_directories(path_);
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

Started StartProgram(const std::vector<std::string>& argv, const std::map<std::string, std::string>& environment,
                     const fs::path& output, pid_t process_group) {
  CommandSpec spec{argv, environment, output.string(), process_group, std::nullopt};
  auto process = ChildProcess::Start(spec);
  if (!process.ok()) ADD_FAILURE() << "cannot start " << argv[0] << ": " << process.status().ToString();
  EXPECT_TRUE(process.ok());
  return Started{std::move(process).value(), output};
}

int WaitFor(ChildProcess& process, std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (auto exit_code = process.Poll()) return *exit_code;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string ReadText(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

nlohmann::json ReadJson(const fs::path& path) {
  return nlohmann::json::parse(ReadText(path), nullptr, /*allow_exceptions=*/false);
}

bool WaitForFile(const fs::path& path, std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return fs::exists(path);
}

std::uint16_t FreePort() {
  auto socket = ListenTcp("127.0.0.1", 0);
  EXPECT_TRUE(socket.ok());
  auto port = LocalPort(socket->get());
  EXPECT_TRUE(port.ok());
  return *port;
}

}  // namespace mlscale::launcher::testing
