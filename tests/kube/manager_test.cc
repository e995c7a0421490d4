// The manager without an API server: default addresses, and SIGTERM still ends the
// process when setup fails after the signal handlers were installed.
#include "mlscale/kube/manager.h"

#include <gtest/gtest.h>

#include <csignal>
#include <thread>

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

TEST(ManagerDeathTest, SigtermEndsTheProcessWhenSetupFailedAfterTheHandlersWereInstalled) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(FailSetupThenGetSigterm(), ::testing::KilledBySignal(SIGTERM), "");
}

}  // namespace
}  // namespace mlscale::kube
