// mlscale-operator's flags (operator/cmd/operator_flags.h).
#include "operator_flags.h"

#include <gtest/gtest.h>

namespace mlscale::operator_cmd {
namespace {

using namespace std::chrono_literals;

TEST(OperatorFlagsTest, DefaultsAreWhatAnAdminExpects) {
  StatusOr<OperatorFlags> flags = ParseOperatorFlags({});
  ASSERT_TRUE(flags.ok()) << flags.status().ToString();
  EXPECT_TRUE(flags->namespaces.empty());
  EXPECT_EQ(flags->controllers, KnownControllers());
  EXPECT_FALSE(flags->leader_elect);
  EXPECT_EQ(flags->status_write_qps, 20);
  EXPECT_EQ(flags->restart_backoff, 10s);
  EXPECT_EQ(flags->gang_scheduler_name, "scheduler-plugins-scheduler");
  EXPECT_EQ(flags->volcano_scheduler_name, "volcano");
  EXPECT_EQ(flags->gang_discovery_interval, 30s);
  EXPECT_NE(flags->usage.find("--status-write-qps"), std::string::npos);
  EXPECT_NE(flags->usage.find("--leader-election-namespace"), std::string::npos);
  EXPECT_EQ(flags->leader_election_lease_duration, 15s);
  EXPECT_EQ(flags->leader_election_renew_deadline, 10s);
  EXPECT_EQ(flags->leader_election_retry_period, 2s);
  EXPECT_NE(flags->usage.find("--leader-election-renew-deadline"), std::string::npos);
}

TEST(OperatorFlagsTest, LeaseTimingReadsGoDurations) {
  StatusOr<OperatorFlags> flags =
      ParseOperatorFlags({"--leader-election-lease-duration", "1m", "--leader-election-renew-deadline=1.5s",
                          "--leader-election-retry-period", "500ms"});
  ASSERT_TRUE(flags.ok()) << flags.status().ToString();
  EXPECT_EQ(flags->leader_election_lease_duration, 60s);
  EXPECT_EQ(flags->leader_election_renew_deadline, 1500ms);
  EXPECT_EQ(flags->leader_election_retry_period, 500ms);
  flags = ParseOperatorFlags({"--leader-election-lease-duration", "30", "--leader-election-renew-deadline", "20"});
  ASSERT_TRUE(flags.ok()) << flags.status().ToString();
  EXPECT_EQ(flags->leader_election_lease_duration, 30s) << "a bare number is seconds";
  EXPECT_EQ(flags->leader_election_renew_deadline, 20s);
}

TEST(OperatorFlagsTest, ReadsEveryFlag) {
  StatusOr<OperatorFlags> flags = ParseOperatorFlags(
      {"--kubeconfig", "/k", "--namespace", "a", "--namespace=b", "--leader-elect", "--leader-election-namespace", "ops",
       "--leader-election-id", "lease", "--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:9", "--kube-api-qps", "100", "--kube-api-burst",
       "200", "--workers", "8", "--log-level", "debug", "--log-format", "json", "--status-write-qps", "5",
       "--restart-backoff", "0.5", "--max-restart-backoff", "30", "--start-timeout", "20", "--controllers",
       "TrainingJob", "--trainer-command", "/bin/t", "--progress-interval", "2", "--volcano-scheduler-name", "vc",
       "--gang-scheduler-name", "", "--gang-discovery-interval", "5"});
  ASSERT_TRUE(flags.ok()) << flags.status().ToString();
  EXPECT_EQ(flags->kubeconfig, "/k");
  EXPECT_EQ(flags->namespaces, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(flags->leader_elect);
  EXPECT_EQ(flags->leader_election_namespace, "ops");
  EXPECT_EQ(flags->leader_election_id, "lease");
  EXPECT_EQ(flags->metrics_bind_address, "127.0.0.1:0");
  EXPECT_EQ(flags->health_probe_bind_address, "127.0.0.1:9");
  EXPECT_EQ(flags->kube_api_qps, 100);
  EXPECT_EQ(flags->kube_api_burst, 200);
  EXPECT_EQ(flags->workers, 8);
  EXPECT_EQ(flags->log_format, "json");
  EXPECT_EQ(flags->status_write_qps, 5);
  EXPECT_EQ(flags->restart_backoff, 500ms);
  EXPECT_EQ(flags->max_restart_backoff, 30s);
  EXPECT_EQ(flags->start_timeout, 20s);
  EXPECT_EQ(flags->progress_interval, 2s);
  EXPECT_EQ(flags->trainer_command, "/bin/t");
  EXPECT_EQ(flags->volcano_scheduler_name, "vc");
  EXPECT_EQ(flags->gang_scheduler_name, "");
  EXPECT_EQ(flags->gang_discovery_interval, 5s);
}

TEST(OperatorFlagsTest, BadFlagsNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--no-such-flag"}, "no-such-flag"},
      {{"--workers", "0"}, "--workers"},
      {{"--workers", "x"}, "workers"},
      {{"--kube-api-qps", "-1"}, "--kube-api-qps"},
      {{"--status-write-qps", "0"}, "--status-write-qps"},
      {{"--log-format", "xml"}, "--log-format"},
      {{"--controllers", "Nope"}, "Nope"},
      {{"--restart-backoff", "0"}, "--restart-backoff"},
      {{"--restart-backoff", "20", "--max-restart-backoff", "10"}, "--max-restart-backoff"},
      {{"--start-timeout", "nan"}, "--start-timeout"},
      {{"--gang-discovery-interval", "0"}, "--gang-discovery-interval"},
      {{"--leader-elect", "--leader-election-id", ""}, "--leader-elect"},
      // The renew deadline must end before the lease does (else two leaders), and the
      // retry period inside the renew deadline.
      {{"--leader-election-renew-deadline", "15s"}, "--leader-election-renew-deadline: must be shorter"},
      {{"--leader-election-lease-duration", "5s"}, "--leader-election-renew-deadline: must be shorter"},
      {{"--leader-election-retry-period", "10s"}, "--leader-election-retry-period: must be shorter"},
      {{"--leader-election-lease-duration", "15x"}, "--leader-election-lease-duration: '15x'"},
      {{"--leader-election-retry-period", "-2s"}, "--leader-election-retry-period"},
      {{"--leader-election-retry-period", "0s"}, "--leader-election-retry-period"},
      {{"--leader-election-lease-duration", "1000h"}, "--leader-election-lease-duration"},
      {{"--leader-election-renew-deadline", ""}, "--leader-election-renew-deadline"},
  };
  for (const auto& [arguments, expected] : cases) {
    StatusOr<OperatorFlags> flags = ParseOperatorFlags(arguments);
    ASSERT_FALSE(flags.ok()) << arguments[0];
    EXPECT_NE(flags.status().message().find(expected), std::string::npos) << flags.status().message();
  }
}

}  // namespace
}  // namespace mlscale::operator_cmd
