// The manager without an API server: default addresses, and SIGTERM still ends the
// process when setup fails after the signal handlers were installed.
#include "mlscale/kube/manager.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <thread>
#include <vector>

#include "kube_test_support.h"

namespace mlscale::kube {
namespace {

TEST(ManagerTest, DefaultAddressesAreControllerRuntimes) {
  ManagerOptions options;
  EXPECT_EQ(options.metrics_address, ":8080") << "all interfaces: kubelet probes and scrapers must reach it";
  EXPECT_EQ(options.health_probe_address, ":8081");
}

// Runs a manager whose leader election is misconfigured (Run fails after installing the
// handlers), then gets SIGTERM as kubelet would send it. Exits 0 only when it survives.
void FailSetupThenGetSigterm() {
  ManagerOptions options;
  options.client.server = "https://127.0.0.1:1";  // never reached
  options.metrics_address = "127.0.0.1:0";
  options.health_probe_address = "127.0.0.1:0";
  LeaderElectionConfig election{"ns", "lease", "me"};
  election.renew_deadline = election.lease_duration;  // invalid
  options.leader_election = election;
  StatusOr<std::unique_ptr<Manager>> manager = Manager::Create(options);
  if (!manager.ok()) std::_Exit(3);
  if ((*manager)->Run().ok()) std::_Exit(4);
  std::raise(SIGTERM);
  std::this_thread::sleep_for(std::chrono::seconds(5));
  std::_Exit(0);  // SIGTERM was swallowed
}

// The endpoints are served by the shared HTTP server: clients that connect and send
// half a request (or nothing) do not keep a probe from being answered.
TEST(ManagerTest, SlowClientsDoNotBlockTheProbes) {
  ManagerOptions options;
  options.client.server = "https://127.0.0.1:1";  // no informers, no API calls
  options.metrics_address = "127.0.0.1:0";
  options.health_probe_address = "127.0.0.1:0";
  StatusOr<std::unique_ptr<Manager>> manager = Manager::Create(options);
  ASSERT_TRUE(manager.ok()) << manager.status().ToString();
  std::stop_source stop;
  std::jthread running([&] { EXPECT_TRUE((*manager)->Run(stop.get_token(), false).ok()); });
  ASSERT_TRUE(mlscale::testing::WaitFor([&] { return (*manager)->health_port() != 0; }, std::chrono::seconds(5)));
  const int port = (*manager)->health_port();
  std::vector<int> slow;
  for (int i = 0; i < 8; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    if (i % 2 == 0) send(fd, "GET /hea", 8, MSG_NOSIGNAL);
    slow.push_back(fd);
  }
  auto started = std::chrono::steady_clock::now();
  testing::HttpResult health = testing::HttpGet(port, "/healthz", std::chrono::seconds(3));
  EXPECT_EQ(health.status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1)) << "a slow client held the server";
  EXPECT_EQ(testing::HttpGet(port, "/readyz").status, 200) << "no informers: synced";
  EXPECT_EQ(testing::HttpGet((*manager)->metrics_port(), "/metrics").status, 200);
  EXPECT_EQ(testing::HttpGet(port, "/metrics").status, 404) << "metrics have their own address";
  for (int fd : slow) close(fd);
  stop.request_stop();
}

TEST(ManagerDeathTest, SigtermEndsTheProcessWhenSetupFailedAfterTheHandlersWereInstalled) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(FailSetupThenGetSigterm(), ::testing::KilledBySignal(SIGTERM), "");
}

}  // namespace
}  // namespace mlscale::kube
