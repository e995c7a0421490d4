// Two real manager processes compete for one Lease: exactly one leads (its leadership
// gauge is 1; both are ready); SIGKILL the leader and the other leads within lease
// duration + retry period; a leader stopped with SIGTERM releases the lease and a
// standby takes over at once; a leader whose traffic is delayed steps down before the
// other replica takes over (their logged leadership intervals never overlap).
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "kube_test_support.h"
#include "mlscale/kube/leader_election.h"

namespace mlscale::kube {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using mlscale::testing::WaitFor;
using testing::HttpGet;

struct Candidate {
  std::string identity;
  std::unique_ptr<ChildProcess> process;
  int metrics_port = 0;
  int port = 0;  // /healthz, /readyz
  bool Ready() const { return HttpGet(port, "/readyz", 1s).status == 200; }
  bool Leading() const {
    return HttpGet(metrics_port, "/metrics", 1s).body.find(
               "mlscale_kube_leader_election_master_status{name=\"probe-lease\"} 1") != std::string::npos;
  }
};

// `timings`: lease, renew deadline, retry period in ms (empty: the defaults).
Candidate Launch(const std::string& kubeconfig, const std::string& ns, const std::string& identity,
                 const std::vector<std::string>& timings = {}) {
  Candidate candidate{identity, nullptr, 0, 0};
  std::vector<std::string> argv = {MLSCALE_MANAGER_PROBE, kubeconfig, ns, "probe-lease", identity};
  argv.insert(argv.end(), timings.begin(), timings.end());
  StatusOr<std::unique_ptr<ChildProcess>> process = ChildProcess::Start(argv);
  EXPECT_TRUE(process.ok()) << process.status().ToString();
  if (!process.ok()) return candidate;
  candidate.process = std::move(*process);
  StatusOr<std::string> metrics_port = candidate.process->WaitForLine("metrics-port ", 30s);
  StatusOr<std::string> port = candidate.process->WaitForLine("health-port ", 5s);
  EXPECT_TRUE(port.ok() && metrics_port.ok()) << port.status().ToString();
  if (port.ok() && metrics_port.ok()) {
    candidate.port = std::stoi(*port);
    candidate.metrics_port = std::stoi(*metrics_port);
  }
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
  ASSERT_TRUE(WaitFor([&] { return first.Leading() || second.Leading(); }, 30s)) << "nobody leads";
  // For a few renewals, never both.
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(first.Leading() && second.Leading()) << "two leaders";
    std::this_thread::sleep_for(200ms);
  }
  Candidate& leader = first.Leading() ? first : second;
  Candidate& standby = first.Leading() ? second : first;
  EXPECT_FALSE(standby.Leading());
  EXPECT_EQ(LeaseHolder(*client, ns.name()), leader.identity);
  // Readiness is "caches synced": the standby is ready too (rolling updates proceed).
  EXPECT_TRUE(WaitFor([&] { return leader.Ready() && standby.Ready(); }, 10s)) << "a standby is not ready";
  EXPECT_EQ(HttpGet(standby.port, "/metrics").status, 404) << "metrics are on their own port";
  // The leader's /metrics shows API requests by verb and code, its queue and reconciles.
  std::string metrics = HttpGet(leader.metrics_port, "/metrics").body;
  EXPECT_NE(metrics.find("mlscale_kube_api_requests_total{verb=\"get\",code=\"200\"}"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("mlscale_kube_workqueue_depth{name=\"noop\"}"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("mlscale_kube_reconcile_total{controller=\"noop\",result=\"success\"}"), std::string::npos)
      << metrics;
  EXPECT_EQ(HttpGet(standby.port, "/healthz").status, 200);

  // SIGKILL: the lease is not released; the standby must wait for it to expire.
  leader.process->Signal(SIGKILL);
  auto killed_at = std::chrono::steady_clock::now();
  const auto bound = defaults.lease_duration + defaults.retry_period * 6 / 5 + 1500ms;
  ASSERT_TRUE(WaitFor([&] { return standby.Leading(); }, bound + 5s)) << "the standby never took over";
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
  EXPECT_FALSE(third.Leading());
  standby.process->Signal(SIGTERM);
  auto terminated_at = std::chrono::steady_clock::now();
  EXPECT_EQ(standby.process->Wait(15s), 0) << "the manager did not exit cleanly on SIGTERM";
  ASSERT_TRUE(WaitFor([&] { return third.Leading(); }, 10s));
  auto handover = std::chrono::steady_clock::now() - terminated_at;
  EXPECT_LT(handover, defaults.retry_period * 6 / 5 + 2s) << "the lease was not released on SIGTERM";
}

// "leader election: <identity> led <ns>/probe-lease from <ms> to <ms>" -> {from, to}.
std::pair<int64_t, int64_t> LeadershipInterval(ChildProcess& process, const std::string& identity,
                                               const std::string& ns, std::chrono::milliseconds timeout) {
  StatusOr<std::string> line =
      process.WaitForLine("leader election: " + identity + " led " + ns + "/probe-lease from ", timeout);
  EXPECT_TRUE(line.ok()) << identity << ": " << line.status().ToString();
  if (!line.ok()) return {0, 0};
  size_t to = line->find(" to ");
  return {std::stoll(line->substr(0, to)), std::stoll(line->substr(to + 4))};
}

// The fault: the leader's traffic to the API server is held up by a delaying TCP proxy
// (the test's fault injector: a real network cannot be slowed for one process here),
// so its renews stall. It must stop its controllers before the other replica, which
// talks to the API server directly, can acquire: the intervals both replicas log
// (wall clock, one machine) must not overlap. Timings are shortened: lease 3 s, renew
// deadline 2 s, retry 0.5 s.
TEST(LeaderElectionTest, ALeaderThatCannotRenewStepsDownBeforeAnotherLeads) {
  StatusOr<mlscale::testing::TestCluster> cluster = mlscale::testing::CurrentCluster();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto client = testing::AdminClient();
  ASSERT_NE(client, nullptr);
  testing::ScopedNamespace ns(*client, "stall");
  const std::string server = client->config().server;
  auto proxy = testing::DelayingProxy::Start(std::stoi(server.substr(server.rfind(':') + 1)));
  ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
  const std::string kubeconfig = cluster->admin_kubeconfig;
  StatusOr<std::string> proxied = testing::KubeconfigThrough(
      kubeconfig, (*proxy)->port(),
      std::filesystem::path(kubeconfig).parent_path() / ("proxied-" + ns.name() + ".kubeconfig"));
  ASSERT_TRUE(proxied.ok()) << proxied.status().ToString();
  const std::vector<std::string> timings = {"3000", "2000", "500"};

  Candidate slow = Launch(*proxied, ns.name(), "slow", timings);
  ASSERT_NE(slow.port, 0);
  ASSERT_TRUE(WaitFor([&] { return slow.Leading(); }, 20s)) << "the proxied replica never led";
  Candidate direct = Launch(kubeconfig, ns.name(), "direct", timings);
  ASSERT_NE(direct.port, 0);
  std::this_thread::sleep_for(1500ms);  // a few renewals go through
  EXPECT_FALSE(direct.Leading());

  (*proxy)->SetDelay(10s);  // longer than the lease: every renew of the leader stalls
  ASSERT_TRUE(WaitFor([&] { return direct.Leading(); }, 15s)) << "the direct replica never took over";
  std::pair<int64_t, int64_t> slow_led = LeadershipInterval(*slow.process, "slow", ns.name(), 10s);
  EXPECT_EQ(slow.process->Wait(10s), 1) << "a replica that lost the lease exits (kAborted) to stand by afresh";
  direct.process->Signal(SIGTERM);
  std::pair<int64_t, int64_t> direct_led = LeadershipInterval(*direct.process, "direct", ns.name(), 10s);
  EXPECT_EQ(direct.process->Wait(10s), 0);
  std::printf("slow led [%lld, %lld], direct led [%lld, %lld] (unix ms)\n", static_cast<long long>(slow_led.first),
              static_cast<long long>(slow_led.second), static_cast<long long>(direct_led.first),
              static_cast<long long>(direct_led.second));
  ASSERT_GT(slow_led.second, slow_led.first);
  ASSERT_GT(direct_led.second, direct_led.first);
  EXPECT_LT(slow_led.second, direct_led.first) << "two leaders at once: the stalled leader stopped "
                                               << slow_led.second - direct_led.first << " ms after the other started";
  std::filesystem::remove(*proxied);
}

TEST(LeaderElectionTest, RejectsInconsistentDurations) {
  auto client = testing::AdminClient();
  ASSERT_NE(client, nullptr);
  LeaderElectionConfig config{"ns", "lease", "me"};
  config.renew_deadline = config.lease_duration;
  EXPECT_EQ(LeaderElector::Create(client->config(), config, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LeaderElector::Create(client->config(), {"", "lease", "me"}, {}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mlscale::kube
