// Two real manager processes compete for one Lease: exactly one leads (its /readyz is
// ready); SIGKILL the leader and the other leads within lease duration + retry period;
// a leader stopped with SIGTERM releases the lease and a standby takes over at once.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <thread>

#include "kube_test_support.h"
#include "mlscale/kube/leader_election.h"

namespace mlscale::kube {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::Eventually;
using testing::HttpGet;

struct Candidate {
  std::string identity;
  std::unique_ptr<ChildProcess> process;
  int port = 0;
  bool Ready() const { return HttpGet(port, "/readyz", 1s).status == 200; }
};

Candidate Launch(const std::string& kubeconfig, const std::string& ns, const std::string& identity) {
  Candidate candidate{identity, nullptr, 0};
  StatusOr<std::unique_ptr<ChildProcess>> process =
      ChildProcess::Start({MLSCALE_MANAGER_PROBE, kubeconfig, ns, "probe-lease", identity});
  EXPECT_TRUE(process.ok()) << process.status().ToString();
  if (!process.ok()) return candidate;
  candidate.process = std::move(*process);
  StatusOr<std::string> port = candidate.process->WaitForLine("health-port ", 30s);
  EXPECT_TRUE(port.ok()) << port.status().ToString();
  if (port.ok()) candidate.port = std::stoi(*port);
  return candidate;
}

std::string LeaseHolder(Client& client, const std::string& ns) {
  StatusOr<Object> lease = client.Get(resources::Leases(), ns, "probe-lease");
  if (!lease.ok()) return "";
  return lease->value("spec", Object::object()).value("holderIdentity", "");
}

TEST(LeaderElectionTest, ExactlyOneLeadsAndAStandbyTakesOver) {
  StatusOr<mlscale::testing::TestCluster> cluster = mlscale::testing::CurrentCluster();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto client = testing::AdminClient();
  ASSERT_NE(client, nullptr);
  testing::ScopedNamespace ns(*client, "leader");
  const LeaderElectionConfig defaults;

  Candidate first = Launch(cluster->admin_kubeconfig, ns.name(), "first");
  Candidate second = Launch(cluster->admin_kubeconfig, ns.name(), "second");
  ASSERT_NE(first.port, 0);
  ASSERT_NE(second.port, 0);
  ASSERT_TRUE(Eventually([&] { return first.Ready() || second.Ready(); }, 30s)) << "nobody leads";
  // For a few renewals, never both.
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(first.Ready() && second.Ready()) << "two leaders";
    std::this_thread::sleep_for(200ms);
  }
  Candidate& leader = first.Ready() ? first : second;
  Candidate& standby = first.Ready() ? second : first;
  EXPECT_FALSE(standby.Ready());
  EXPECT_EQ(LeaseHolder(*client, ns.name()), leader.identity);
  // The leader's /metrics shows API requests by verb and code, its queue and reconciles.
  std::string metrics = HttpGet(leader.port, "/metrics").body;
  EXPECT_NE(metrics.find("mlscale_kube_api_requests_total{verb=\"get\",code=\"200\"}"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("mlscale_kube_workqueue_depth{name=\"noop\"}"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("mlscale_kube_reconcile_total{controller=\"noop\",result=\"success\"}"), std::string::npos)
      << metrics;
  EXPECT_EQ(HttpGet(standby.port, "/readyz").status, 503);
  EXPECT_EQ(HttpGet(standby.port, "/healthz").status, 200);

  // SIGKILL: the lease is not released; the standby must wait for it to expire.
  leader.process->Signal(SIGKILL);
  auto killed_at = std::chrono::steady_clock::now();
  const auto bound = defaults.lease_duration + defaults.retry_period * 6 / 5 + 1500ms;
  ASSERT_TRUE(Eventually([&] { return standby.Ready(); }, bound + 5s)) << "the standby never took over";
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
  RecordProperty("takeover_ms", static_cast<int>(took.count()));
  std::printf("takeover after SIGKILL: %lld ms\n", static_cast<long long>(took.count()));
  EXPECT_LE(took, bound) << "takeover after SIGKILL took " << took.count() << " ms";
  EXPECT_GE(took, defaults.lease_duration - defaults.retry_period * 2)
      << "the standby took a lease that had not expired";
  EXPECT_EQ(LeaseHolder(*client, ns.name()), standby.identity);

  // SIGTERM: the leader releases the lease on its way out; a new standby takes over
  // within about one retry period instead of a whole lease duration.
  Candidate third = Launch(cluster->admin_kubeconfig, ns.name(), "third");
  ASSERT_NE(third.port, 0);
  std::this_thread::sleep_for(1s);
  EXPECT_FALSE(third.Ready());
  standby.process->Signal(SIGTERM);
  auto terminated_at = std::chrono::steady_clock::now();
  EXPECT_EQ(standby.process->Wait(15s), 0) << "the manager did not exit cleanly on SIGTERM";
  ASSERT_TRUE(Eventually([&] { return third.Ready(); }, 10s));
  auto handover = std::chrono::steady_clock::now() - terminated_at;
  EXPECT_LT(handover, defaults.retry_period * 6 / 5 + 2s) << "the lease was not released on SIGTERM";
}

TEST(LeaderElectionTest, RejectsInconsistentDurations) {
  auto client = testing::AdminClient();
  ASSERT_NE(client, nullptr);
  LeaderElectionConfig config{"ns", "lease", "me"};
  config.renew_deadline = config.lease_duration;
  EXPECT_EQ(LeaderElector::Create(*client, config, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LeaderElector::Create(*client, {"", "lease", "me"}, {}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mlscale::kube
