// rank_probe: the test peer of the launcher tests. A real program run by mlscale-launch
// (and by `mlscale run --trainer`) in place of mlscale-train, which checks what the
// launcher promises a trainer and writes what it found to a JSON report:
//   - the environment (WORLD_SIZE, RANK, LOCAL_RANK, MLSCALE_PEERS, MLSCALE_RUN_ID, ...;
//     MLSCALE_RUN_TOKEN too: the report is a test artifact);
//   - MLSCALE_LISTEN_FD is an inherited, listening, blocking socket bound to the port
//     that MLSCALE_PEERS lists for this rank;
//   - the data plane works: it connects to every other rank's endpoint, sends its rank,
//     and accepts one connection from every other rank.
// It is not a trainer: what it does after that is chosen by PROBE_BEHAVIOR:
//   exchange (default)  exit 0 (rank 0 first writes a result and a progress file when
//                       MLSCALE_RESULT_FILE / MLSCALE_PROGRESS_FILE are set)
//   wait-for-term       write its pid to <report dir>/ready-<rank>, wait for SIGTERM, exit 143
//   exit=<code>         exit with that code
//   die-rank=<r>        rank r kills itself with SIGKILL; the others wait for SIGTERM
// PROBE_REPORT_DIR is where rank-<rank>.json goes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/launcher/socket.h"

namespace {

using nlohmann::json;
using mlscale::launcher::Clock;

volatile std::sig_atomic_t terminated = 0;
void OnTerminate(int) { terminated = 1; }

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(separator, start);
    if (end == std::string::npos) end = text.size();
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

void WriteAtomically(const std::string& path, const json& value) {
  std::string temporary = path + ".tmp";
  std::ofstream(temporary) << value.dump();
  std::rename(temporary.c_str(), path.c_str());
}

// Checks the inherited data-plane socket and exchanges ranks with every peer.
void CheckDataPlane(json& report, int rank, const std::vector<std::string>& peers) {
  int fd = std::atoi(Env("MLSCALE_LISTEN_FD").c_str());
  int listening = 0;
  socklen_t length = sizeof listening;
  report["listenFdIsListening"] =
      ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0 && listening == 1;
  report["listenFdBlocking"] = (::fcntl(fd, F_GETFL) & O_NONBLOCK) == 0;
  auto port = mlscale::launcher::LocalPort(fd);
  auto own = mlscale::launcher::ParseEndpoint(peers.at(static_cast<std::size_t>(rank)));
  report["listenPortMatchesPeers"] = port.ok() && own.ok() && *port == own->port;

  auto deadline = Clock::now() + std::chrono::seconds(20);
  json sent_to = json::array();
  for (std::size_t peer = 0; peer < peers.size(); ++peer) {
    if (static_cast<int>(peer) == rank) continue;
    auto endpoint = mlscale::launcher::ParseEndpoint(peers[peer]);
    if (!endpoint.ok()) continue;
    auto connection = mlscale::launcher::ConnectTcp(endpoint->host, endpoint->port, deadline);
    if (!connection.ok()) continue;
    pollfd writable{connection->get(), POLLOUT, 0};
    ::poll(&writable, 1, 5000);
    if (::send(connection->get(), &rank, sizeof rank, MSG_NOSIGNAL) == sizeof rank) sent_to.push_back(peer);
  }
  report["sentTo"] = sent_to;
  json received_from = json::array();
  for (std::size_t i = 0; i + 1 < peers.size(); ++i) {
    pollfd readable{fd, POLLIN, 0};
    if (::poll(&readable, 1, 20000) <= 0) break;
    mlscale::launcher::FileDescriptor connection(::accept(fd, nullptr, nullptr));
    int peer_rank = -1;
    if (connection.valid() && ::recv(connection.get(), &peer_rank, sizeof peer_rank, MSG_WAITALL) == sizeof peer_rank) {
      received_from.push_back(peer_rank);
    }
  }
  report["receivedFrom"] = received_from;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGTERM, OnTerminate);
  int rank = std::atoi(Env("RANK").c_str());
  std::string behavior = Env("PROBE_BEHAVIOR");
  std::string report_dir = Env("PROBE_REPORT_DIR");
  std::vector<std::string> peers = Split(Env("MLSCALE_PEERS"), ',');

  json report;
  for (const char* name : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                           "MASTER_PORT", "MLSCALE_PEERS", "MLSCALE_LISTEN_FD", "MLSCALE_RUN_ID",
                           "MLSCALE_TERMINATION_LOG", "MLSCALE_PROGRESS_FILE", "MLSCALE_RESULT_FILE",
                           "MLSCALE_RUN_TOKEN"}) {
    if (std::getenv(name) != nullptr) report["env"][name] = Env(name);
  }
  report["argv"] = std::vector<std::string>(argv + 1, argv + argc);
  if (!Env("MLSCALE_PEERS").empty()) CheckDataPlane(report, rank, peers);
  if (!report_dir.empty()) std::ofstream(report_dir + "/rank-" + std::to_string(rank) + ".json") << report.dump(2);

  if (behavior.starts_with("exit=")) return std::atoi(behavior.c_str() + 5);
  bool dies = behavior.starts_with("die-rank=");
  if (dies && std::atoi(behavior.c_str() + 9) == rank) ::raise(SIGKILL);
  if (behavior == "wait-for-term" || dies) {
    if (!report_dir.empty()) WriteAtomically(report_dir + "/ready-" + std::to_string(rank), ::getpid());
    while (terminated == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!report_dir.empty()) std::ofstream(report_dir + "/terminated-" + std::to_string(rank));
    return 143;
  }
  if (rank == 0 && !Env("MLSCALE_PROGRESS_FILE").empty()) {
    WriteAtomically(Env("MLSCALE_PROGRESS_FILE"), {{"step", 10}, {"totalSteps", 10}, {"epoch", 1}, {"epochs", 1},
                                                   {"loss", 0.5}, {"samplesPerSecond", 100.0}, {"etaSeconds", 0},
                                                   {"elapsedSeconds", 1}, {"phase", "done"}});
  }
  if (rank == 0 && !Env("MLSCALE_RESULT_FILE").empty()) {
    WriteAtomically(Env("MLSCALE_RESULT_FILE"),
                    {{"metrics", {{"testAccuracy", 0.5}}}, {"accuracy", 0.5}, {"loss", 0.25}, {"steps", 10}});
  }
  return 0;
}
