// What the launcher tests share: a scratch folder, and running the real binaries
// (mlscale-launch, mlscale, rank_probe) as processes with a time limit.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/launcher/process.h"

namespace mlscale::launcher::testing {

// Paths of the programs under test, set by the build.
inline const std::string kLaunchProgram = MLSCALE_LAUNCH_PROGRAM;
inline const std::string kCliProgram = MLSCALE_CLI_PROGRAM;
inline const std::string kProbeProgram = RANK_PROBE_PROGRAM;

// A fresh folder under the system's temp folder, removed when destroyed.
class ScratchDirectory {
 public:
  ScratchDirectory();
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A started program whose output goes to a file.
struct Started {
  ChildProcess process;
  std::filesystem::path output;
};
Started StartProgram(const std::vector<std::string>& argv, const std::map<std::string, std::string>& environment,
                     const std::filesystem::path& output, pid_t process_group = -1);

// Waits up to `limit` for the process; -1 when it is still running then (it is killed).
int WaitFor(ChildProcess& process, std::chrono::milliseconds limit);

std::string ReadText(const std::filesystem::path& path);
nlohmann::json ReadJson(const std::filesystem::path& path);
// Waits up to `limit` for a file to appear.
bool WaitForFile(const std::filesystem::path& path, std::chrono::milliseconds limit);
// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t FreePort();

// One HTTP exchange over a plain socket, so that malformed requests can be sent too.
struct HttpReply {
  int status = 0;       // 0: no status line came back (e.g. the server closed at once)
  std::string headers;  // the header block, lower-cased names as sent
  std::string body;
  std::string error;    // why nothing came back, when status is 0
};
// Connects to host:port (retrying until `limit` while nothing listens), sends `request`
// as it is, and reads until the server closes the connection or `limit` passes.
HttpReply HttpExchange(const std::string& host, std::uint16_t port, const std::string& request,
                       std::chrono::milliseconds limit = std::chrono::seconds(10));
// A well-formed GET with an optional bearer token and "Connection: close".
std::string HttpGet(const std::string& path, const std::string& token = "");

}  // namespace mlscale::launcher::testing
