// The rendezvous with real mlscale-launch processes on loopback, each running the
// rank_probe test peer, and with hand-written malformed messages sent to a live rank 0.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

#include "mlscale/launcher/socket.h"
#include "mlscale/launcher/wire.h"
#include "support.h"

namespace mlscale::launcher {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace testing;
using namespace std::chrono_literals;

class RendezvousTest : public ::testing::Test {
 protected:
  // Starts mlscale-launch for `rank` of `world_size` with the probe as its command.
  Started StartRank(int rank, int world_size, const std::string& timeout = "20",
                    std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> env{{"WORLD_SIZE", std::to_string(world_size)},
                                           {"RANK", std::to_string(rank)},
                                           {"MASTER_ADDR", "127.0.0.1"},
                                           {"MASTER_PORT", std::to_string(port_)},
                                           {"MLSCALE_RUN_ID", "test-run"},
                                           {"PROBE_REPORT_DIR", scratch_.path().string()}};
    for (auto& [name, value] : extra) env[name] = value;
    return StartProgram({kLaunchProgram, "--bind-address", "127.0.0.1", "--timeout", timeout, "--", kProbeProgram},
                        env, scratch_.path() / ("launcher-" + std::to_string(rank) + ".log"));
  }

  ScratchDirectory scratch_;
  std::uint16_t port_ = FreePort();
};

TEST_F(RendezvousTest, FourProcessesLearnEveryEndpointAndReachEachOther) {
  constexpr int kWorld = 4;
  std::vector<Started> ranks;
  // Rank 0 last: the others retry until it listens.
  for (int rank = kWorld - 1; rank >= 0; --rank) ranks.push_back(StartRank(rank, kWorld));
  for (auto& started : ranks) {
    EXPECT_EQ(WaitFor(started.process, 30s), 0) << ReadText(started.output);
  }
  std::set<std::string> peer_lists;
  for (int rank = 0; rank < kWorld; ++rank) {
    json report = ReadJson(scratch_.path() / ("rank-" + std::to_string(rank) + ".json"));
    ASSERT_TRUE(report.is_object()) << "rank " << rank << " wrote no report";
    const json& env = report["env"];
    EXPECT_EQ(env["WORLD_SIZE"], "4");
    EXPECT_EQ(env["RANK"], std::to_string(rank));
    EXPECT_EQ(env["LOCAL_RANK"], "0");
    EXPECT_EQ(env["MLSCALE_RUN_ID"], "test-run");
    peer_lists.insert(env["MLSCALE_PEERS"].get<std::string>());
    EXPECT_TRUE(report["listenFdIsListening"].get<bool>()) << "rank " << rank;
    EXPECT_TRUE(report["listenFdBlocking"].get<bool>()) << "rank " << rank;
    EXPECT_TRUE(report["listenPortMatchesPeers"].get<bool>()) << "rank " << rank;
    EXPECT_EQ(report["sentTo"].size(), 3u) << report.dump();
    std::set<int> received(report["receivedFrom"].begin(), report["receivedFrom"].end());
    std::set<int> others;
    for (int peer = 0; peer < kWorld; ++peer) {
      if (peer != rank) others.insert(peer);
    }
    EXPECT_EQ(received, others) << "rank " << rank;
  }
  EXPECT_EQ(peer_lists.size(), 1u) << "every rank must get the same table";
}

TEST_F(RendezvousTest, AMissingRankIsNamedOnEveryRankWithinTheTimeout) {
  std::vector<Started> ranks;
  for (int rank : {0, 1, 3}) ranks.push_back(StartRank(rank, 4, "2"));
  auto start = Clock::now();
  for (auto& started : ranks) {
    EXPECT_EQ(WaitFor(started.process, 15s), 1) << ReadText(started.output);
    std::string output = ReadText(started.output);
    EXPECT_NE(output.find("rank 2 of 4 never joined"), std::string::npos) << output;
  }
  EXPECT_LT(Clock::now() - start, 10s);
  EXPECT_FALSE(fs::exists(scratch_.path() / "rank-0.json")) << "no trainer may start without its peers";
}

TEST_F(RendezvousTest, ARankWithoutRankZeroGivesUpNamingWhereItLooked) {
  Started rank = StartRank(1, 2, "1");
  EXPECT_EQ(WaitFor(rank.process, 15s), 1);
  std::string output = ReadText(rank.output);
  EXPECT_NE(output.find("could not reach rank 0's launcher at 127.0.0.1:" + std::to_string(port_)), std::string::npos)
      << output;
}

TEST_F(RendezvousTest, RankZeroRejectsMalformedAndConflictingJoinsAndStillCompletes) {
  Started rank0 = StartRank(0, 2);
  auto send_raw = [&](const std::string& bytes) -> std::string {
    auto deadline = Clock::now() + 10s;
    StatusOr<FileDescriptor> connection = Unavailable("not tried");
    while (Clock::now() < deadline) {
      connection = ConnectTcp("127.0.0.1", port_, deadline);
      if (connection.ok()) break;
      std::this_thread::sleep_for(50ms);
    }
    if (!connection.ok()) return "no connection: " + connection.status().message();
    EXPECT_TRUE(SetNonBlocking(connection->get(), true).ok());
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(connection->get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    FrameReader reader;
    auto reply = ReceiveMessage(connection->get(), reader, Clock::now() + 10s);
    if (!reply.ok()) return "no reply: " + reply.status().message();
    return reply->value("type", "") + ": " + reply->value("message", "");
  };
  auto join = [](std::string run_id, int rank, int world_size) {
    return EncodeFrame(ToJson(JoinRequest{run_id, rank, world_size, Endpoint{"127.0.0.1", 9}, ""}));
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {std::string("\0\0\0\0", 4), "error: malformed message: empty frame"},
      {std::string("\x7f\xff\xff\xff", 4), "error: malformed message: 2147483647 bytes exceeds the limit"},
      {std::string("\0\0\0\x05hello", 9), "error: malformed message: not valid JSON"},
      {EncodeFrame(json::array()), "error: malformed message: not a JSON object"},
      {EncodeFrame({{"type", "join"}}), "error: malformed join message: missing field 'protocol'"},
      {join("other-run", 1, 2), "error: rank 1 belongs to run 'other-run', rank 0 to run 'test-run'"},
      {join("test-run", 1, 3), "error: rank 1 has world size 3, rank 0 has 2"},
      {join("test-run", 0, 2), "error: a second rank 0"},
  };
  for (const auto& [bytes, expected] : cases) {
    std::string reply = send_raw(bytes);
    EXPECT_TRUE(reply.starts_with(expected)) << "expected '" << expected << "', got '" << reply << "'";
  }
  // A real rank 1 still joins.
  Started rank1 = StartRank(1, 2, "20", {{"PROBE_BEHAVIOR", "wait-for-term"}});
  ASSERT_TRUE(WaitForFile(scratch_.path() / "ready-1", 20s)) << ReadText(rank1.output);
  EXPECT_EQ(WaitFor(rank0.process, 10s), 0) << ReadText(rank0.output);  // exchanged ranks with rank 1
  rank1.process.Signal(SIGTERM);
  EXPECT_EQ(WaitFor(rank1.process, 10s), 143);
}

// MLSCALE_RUN_TOKEN: a rank with another token (or none) is refused at once, both
// are logged without the token, and the rank with the right one then completes the job.
TEST_F(RendezvousTest, RankZeroRefusesAWrongTokenAndAdmitsTheRightOne) {
  const std::string token(64, 'e'), wrong(64, 'f');
  Started rank0 = StartRank(0, 2, "20", {{"MLSCALE_RUN_TOKEN", token}});
  for (const std::string& presented : {wrong, std::string()}) {
    std::map<std::string, std::string> extra{{"MLSCALE_RUN_TOKEN", presented}};
    Started stranger = StartRank(1, 2, "20", extra);
    EXPECT_EQ(WaitFor(stranger.process, 15s), 1) << ReadText(stranger.output);
    std::string output = ReadText(stranger.output);
    EXPECT_NE(output.find(presented.empty() ? "has no run token" : "has a wrong run token"), std::string::npos)
        << output;
    EXPECT_EQ(output.find(token), std::string::npos) << output;
    if (!presented.empty()) {
      EXPECT_EQ(output.find(presented), std::string::npos) << output;
    }
  }
  EXPECT_FALSE(fs::exists(scratch_.path() / "rank-1.json")) << "a refused rank must not start its command";
  Started rank1 = StartRank(1, 2, "20", {{"MLSCALE_RUN_TOKEN", token}});
  EXPECT_EQ(WaitFor(rank1.process, 30s), 0) << ReadText(rank1.output);
  EXPECT_EQ(WaitFor(rank0.process, 30s), 0) << ReadText(rank0.output);
  std::string rank0_output = ReadText(rank0.output);
  EXPECT_NE(rank0_output.find("refused a join from 127.0.0.1: a join that claims rank 1 has a wrong run token"),
            std::string::npos) << rank0_output;
  EXPECT_EQ(rank0_output.find(token), std::string::npos) << rank0_output;
  EXPECT_EQ(rank0_output.find(wrong), std::string::npos) << rank0_output;
  EXPECT_EQ(ReadJson(scratch_.path() / "rank-1.json")["receivedFrom"].size(), 1u);
}

TEST_F(RendezvousTest, ADuplicateRankIsTurnedAway) {
  Started rank0 = StartRank(0, 3, "5");
  // Rank 1 joins by hand (and stays connected) before a launcher for rank 1 starts.
  auto deadline = Clock::now() + 10s;
  StatusOr<FileDescriptor> first = Unavailable("not tried");
  while (Clock::now() < deadline && !(first = ConnectTcp("127.0.0.1", port_, deadline)).ok()) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(SendMessage(first->get(), ToJson(JoinRequest{"test-run", 1, 3, Endpoint{"127.0.0.1", 9}, ""}), deadline).ok());
  std::this_thread::sleep_for(300ms);
  Started second = StartRank(1, 3, "5");
  EXPECT_EQ(WaitFor(second.process, 15s), 1);
  std::string output = ReadText(second.output);
  EXPECT_NE(output.find("rank 1 has already joined from 127.0.0.1"), std::string::npos) << output;
  // Rank 2 never comes: rank 0 names it, mentions what it turned away, and tells rank 1.
  EXPECT_EQ(WaitFor(rank0.process, 15s), 1);
  std::string rank0_output = ReadText(rank0.output);
  EXPECT_NE(rank0_output.find("rank 2 of 3 never joined"), std::string::npos) << rank0_output;
  EXPECT_NE(rank0_output.find("rejected"), std::string::npos) << rank0_output;
  FrameReader reader;
  auto reply = ReceiveMessage(first->get(), reader, Clock::now() + 5s);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ((*reply)["type"], "error");
  EXPECT_NE((*reply)["message"].get<std::string>().find("rank 2 of 3 never joined"), std::string::npos);
}

TEST_F(RendezvousTest, ARankThatLeavesBeforeTheTableIsSentCanJoinAgain) {
  Started rank0 = StartRank(0, 3);
  // Rank 1 joins and goes away (its pod restarts) while rank 2 is still missing...
  auto deadline = Clock::now() + 10s;
  StatusOr<FileDescriptor> gone = Unavailable("not tried");
  while (Clock::now() < deadline && !(gone = ConnectTcp("127.0.0.1", port_, deadline)).ok()) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  ASSERT_TRUE(SendMessage(gone->get(), ToJson(JoinRequest{"test-run", 1, 3, Endpoint{"127.0.0.1", 9}, ""}), deadline).ok());
  std::this_thread::sleep_for(200ms);
  gone->Reset();
  std::this_thread::sleep_for(200ms);
  // ...and its replacement takes its place.
  Started rank1 = StartRank(1, 3);
  Started rank2 = StartRank(2, 3);
  for (Started* started : {&rank0, &rank1, &rank2}) {
    EXPECT_EQ(WaitFor(started->process, 30s), 0) << ReadText(started->output);
  }
  EXPECT_EQ(ReadJson(scratch_.path() / "rank-1.json")["receivedFrom"].size(), 2u);
}

// Rank 0's name does not resolve when rank 1 starts (a pod's DNS record appears late):
// rank 1 keeps retrying and joins once the name resolves. Rank 1 runs with its own
// /etc/hosts (a mount namespace, as root), to which the name is added after a while.
TEST_F(RendezvousTest, ARankWaitsForRankZerosNameToResolve) {
  if (::geteuid() != 0 || std::system("unshare -m --propagation private true 2>/dev/null") != 0) {
    GTEST_SKIP() << "needs root and unshare to give one process its own /etc/hosts";
  }
  fs::path hosts = scratch_.path() / "hosts";
  std::ofstream(hosts) << "127.0.0.1 localhost\n";
  const std::string name = "job-worker-0.job.test.svc.cluster.local";
  std::string script = "mount --bind " + hosts.string() + " /etc/hosts && exec \"$@\"";
  Started rank1 = StartProgram({"unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", kLaunchProgram,
                                "--timeout", "20", "--", kProbeProgram},
                               {{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", name},
                                {"MASTER_PORT", std::to_string(port_)}, {"MLSCALE_RUN_ID", "test-run"},
                                {"PROBE_REPORT_DIR", scratch_.path().string()}},
                               scratch_.path() / "launcher-1.log");
  Started rank0 = StartRank(0, 2);
  std::this_thread::sleep_for(1500ms);
  EXPECT_FALSE(rank1.process.Poll().has_value()) << "rank 1 must keep retrying: " << ReadText(rank1.output);
  // Appended in place: the bind mount shows the same file.
  std::ofstream(hosts, std::ios::app) << "127.0.0.1 " << name << "\n";
  EXPECT_EQ(WaitFor(rank1.process, 30s), 0) << ReadText(rank1.output);
  EXPECT_EQ(WaitFor(rank0.process, 30s), 0) << ReadText(rank0.output);
  auto report = ReadJson(scratch_.path() / "rank-1.json");
  EXPECT_EQ(report["receivedFrom"], nlohmann::json::array({0}));
}

}  // namespace
}  // namespace mlscale::launcher
