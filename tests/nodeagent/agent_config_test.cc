#include "agent_config.h"

#include <gtest/gtest.h>

namespace mlscale::nodeagent {
namespace {

TEST(AgentConfig, ConfigFileAndFlagsCombine) {
  AgentConfig config;
  ASSERT_TRUE(ParseConfigFile(R"(
images:
  mlscale/worker:dev: /opt/worker
  mlscale/python:dev: [/usr/bin/python3, -u]
capacity: {cpu: "16", nvidia.com/gpu: "2"}
labels: {pool: gpu}
taints: ["nvidia.com/gpu=present:NoSchedule", "dedicated:NoExecute"]
)", config).ok());
  EXPECT_EQ(config.images["mlscale/worker:dev"], (std::vector<std::string>{"/opt/worker"}));
  EXPECT_EQ(config.images["mlscale/python:dev"], (std::vector<std::string>{"/usr/bin/python3", "-u"}));
  EXPECT_EQ(config.capacity["cpu"], "16");
  EXPECT_EQ(config.capacity["memory"], "8Gi");  // default kept
  EXPECT_EQ(config.capacity["nvidia.com/gpu"], "2");
  EXPECT_EQ(config.labels["pool"], "gpu");
  ASSERT_EQ(config.taints.size(), 2u);
  EXPECT_EQ(config.taints[0].key, "nvidia.com/gpu");
  EXPECT_EQ(config.taints[0].value, "present");
  EXPECT_EQ(config.taints[1].effect, "NoExecute");

  StatusOr<AgentConfig> flags = ParseFlags({"--node-name", "n1", "--capacity=nvidia.com/gpu=4",
                                            "--image", "img=/bin/true", "--label", "a=b",
                                            "--restart-backoff-ms", "50", "--delete-node-on-exit",
                                            "--token-refresh-percent", "5"});
  ASSERT_TRUE(flags.ok()) << flags.status().ToString();
  EXPECT_EQ(flags->node_name, "n1");
  EXPECT_EQ(flags->capacity["nvidia.com/gpu"], "4");
  EXPECT_EQ(flags->images["img"], (std::vector<std::string>{"/bin/true"}));
  EXPECT_EQ(flags->restart_backoff.count(), 50);
  EXPECT_EQ(flags->token_refresh_percent, 5);
  EXPECT_TRUE(flags->delete_node_on_exit);
  EXPECT_EQ(flags->state_dir, "/tmp/mlscale-test-node/n1");
}

TEST(AgentConfig, MalformedConfigFilesAreClearErrors) {
  struct Case {
    const char* text;
    const char* mentions;
  };
  for (const Case& c : std::vector<Case>{
           {"images: [a, b]", "images"},
           {"images: {x: []}", "images.x"},
           {"images: {x: [[a]]}", "images.x"},
           {"capacity: [cpu]", "capacity"},
           {"capacity: {cpu: {a: 1}}", "capacity.cpu"},
           {"labels: 3", "labels"},
           {"taints: {a: b}", "taints"},
           {"taints: [\"a=b:Sometimes\"]", "effect"},
           {"taints: [\"=b:NoSchedule\"]", "no key"},
           {"imagez: {}", "unknown key 'imagez'"},
           {"- a\n- b", "must be a map"},
           {"images: {a: b", "not YAML"},
           {"\t: : :", "not YAML"},
       }) {
    AgentConfig config;
    Status status = ParseConfigFile(c.text, config);
    ASSERT_FALSE(status.ok()) << c.text;
    EXPECT_NE(status.message().find(c.mentions), std::string::npos) << c.text << " -> " << status.message();
  }
}

TEST(AgentConfig, BadFlagsAreClearErrors) {
  struct Case {
    std::vector<std::string> args;
    const char* mentions;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "--node-name is required"},
           {{"--node-name"}, "the required argument for option '--node-name' is missing"},
           {{"--node-name", "n", "--bogus", "1"}, "unrecognised option '--bogus'"},
           {{"--node-name", "n", "--capacity", "cpu"}, "NAME=VALUE"},
           {{"--node-name", "n", "--restart-backoff-ms", "soon"}, "non-negative integer"},
           {{"--node-name", "n", "--restart-backoff-ms=-5"}, "non-negative integer"},
           {{"--node-name", "n", "--taint", "k=v"}, "key[=value]:Effect"},
           {{"--node-name", "n", "--token-refresh-percent", "0"}, "--token-refresh-percent must be 1..100"},
           {{"--node-name", "n", "--token-refresh-percent=101"}, "--token-refresh-percent must be 1..100"},
           {{"--node-name", "n", "--config", "/nonexistent/agent.yaml"}, "cannot read"},
       }) {
    StatusOr<AgentConfig> config = ParseFlags(c.args);
    ASSERT_FALSE(config.ok());
    EXPECT_NE(config.status().message().find(c.mentions), std::string::npos) << config.status().message();
  }
}

TEST(AgentConfig, HelpIsGeneratedFromTheFlagDescriptions) {
  EXPECT_EQ(ParseFlags({"--help"}).status().message(), "help");
  const std::string help = FlagsHelp();
  for (const char* flag : {"--node-name NAME", "--kubeconfig PATH", "--capacity NAME=QUANTITY", "--taint",
                           "--delete-node-on-exit", "--restart-backoff-ms N", "--log-level LEVEL"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag << " missing from:\n" << help;
  }
  // Repeated and '='-joined values, in order: a later flag overrides an earlier one.
  StatusOr<AgentConfig> config =
      ParseFlags({"--node-name=n", "--label", "a=1", "--label=b=2", "--capacity", "cpu=2", "--capacity", "cpu=3"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->labels.at("a"), "1");
  EXPECT_EQ(config->labels.at("b"), "2");
  EXPECT_EQ(config->capacity.at("cpu"), "3");
}

}  // namespace
}  // namespace mlscale::nodeagent
