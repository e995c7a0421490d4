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
  EXPECT_NE(flags->usage.find("--status-write-qps"), std::string::npos);
  EXPECT_NE(flags->usage.find("--leader-election-namespace"), std::string::npos);
}

TEST(OperatorFlagsTest, ReadsEveryFlag) {
  StatusOr<OperatorFlags> flags = ParseOperatorFlags(
      {"--kubeconfig", "/k", "--namespace", "a", "--namespace=b", "--leader-elect", "--leader-election-namespace", "ops",
       "--leader-election-id", "lease", "--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:9", "--kube-api-qps", "100", "--kube-api-burst",
       "200", "--workers", "8", "--log-level", "debug", "--log-format", "json", "--status-write-qps", "5",
       "--restart-backoff", "0.5", "--max-restart-backoff", "30", "--start-timeout", "20", "--controllers",
       "TrainingJob", "--trainer-command", "/bin/t", "--progress-interval", "2"});
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
      {{"--leader-elect", "--leader-election-id", ""}, "--leader-elect"},
  };
  for (const auto& [arguments, expected] : cases) {
    StatusOr<OperatorFlags> flags = ParseOperatorFlags(arguments);
    ASSERT_FALSE(flags.ok()) << arguments[0];
    EXPECT_NE(flags.status().message().find(expected), std::string::npos) << flags.status().message();
  }
}

}  // namespace
}  // namespace mlscale::operator_cmd
