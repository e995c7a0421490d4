#include "cluster_names.h"

#include <gtest/gtest.h>

#include <sstream>

namespace mlscale::nodeagent {
namespace {

using nlohmann::json;

// The address a hosts file gives `name`, or "" (first match, as glibc's files backend).
std::string Resolve(const std::string& hosts, const std::string& name) {
  std::istringstream lines(hosts);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string ip, word;
    words >> ip;
    while (words >> word) {
      if (word == name) return ip;
    }
  }
  return "";
}

PodRecord Worker(const std::string& name, const std::string& ip, bool ready = true) {
  PodRecord pod;
  pod.namespace_name = "ml";
  pod.name = name;
  pod.hostname = name;
  pod.subdomain = "job";
  pod.ip = ip;
  pod.ready = ready;
  pod.labels = {{"job", "mnist"}};
  return pod;
}

ServiceRecord Headless(const std::string& name, bool publish_not_ready = false) {
  return {"ml", name, {{"job", "mnist"}}, publish_not_ready};
}

TEST(ClusterNames, PodsResolveEachOtherThroughTheirHeadlessService) {
  std::vector<PodRecord> pods = {Worker("w-0", "127.64.0.1"), Worker("w-1", "127.64.0.2")};
  std::string hosts = HostsFileFor(pods[1], pods, {Headless("job")});
  EXPECT_EQ(Resolve(hosts, "w-0.job.ml.svc.cluster.local"), "127.64.0.1");
  EXPECT_EQ(Resolve(hosts, "w-0.job.ml.svc"), "127.64.0.1");
  EXPECT_EQ(Resolve(hosts, "w-0.job.ml"), "127.64.0.1");
  EXPECT_EQ(Resolve(hosts, "w-0.job"), "127.64.0.1");  // same namespace: search path
  EXPECT_EQ(Resolve(hosts, "w-1"), "127.64.0.2");      // its own hostname
  EXPECT_EQ(Resolve(hosts, "job.ml.svc.cluster.local"), "127.64.0.1");
  EXPECT_EQ(Resolve(hosts, "job"), "127.64.0.1");
  EXPECT_EQ(Resolve(hosts, "localhost"), "127.0.0.1");
  EXPECT_EQ(Resolve(hosts, "w-0"), "");  // a bare hostname of another pod is not a DNS name
}

TEST(ClusterNames, WithoutAServiceOnlyTheOwnNamesResolve) {
  std::vector<PodRecord> pods = {Worker("w-0", "127.64.0.1"), Worker("w-1", "127.64.0.2")};
  std::string hosts = HostsFileFor(pods[1], pods, {});
  EXPECT_EQ(Resolve(hosts, "w-0.job.ml.svc.cluster.local"), "");
  EXPECT_EQ(Resolve(hosts, "w-1.job.ml.svc.cluster.local"), "127.64.0.2");
}

TEST(ClusterNames, NotReadyAndFinishedPodsAreNoEndpointsUnlessPublished) {
  std::vector<PodRecord> pods = {Worker("w-0", "127.64.0.1", /*ready=*/false),
                                 Worker("w-1", "127.64.0.2"), Worker("w-2", "127.64.0.3")};
  pods[2].terminated = true;
  std::string hosts = HostsFileFor(pods[1], pods, {Headless("job")});
  EXPECT_EQ(Resolve(hosts, "w-0.job.ml.svc.cluster.local"), "");
  EXPECT_EQ(Resolve(hosts, "w-2.job.ml.svc.cluster.local"), "");
  hosts = HostsFileFor(pods[1], pods, {Headless("job", /*publish_not_ready=*/true)});
  EXPECT_EQ(Resolve(hosts, "w-0.job.ml.svc.cluster.local"), "127.64.0.1");
  EXPECT_EQ(Resolve(hosts, "w-2.job.ml.svc.cluster.local"), "");
}

TEST(ClusterNames, OtherNamespacesNeedTheNamespaceInTheName) {
  PodRecord other = Worker("srv", "127.64.0.7");
  other.namespace_name = "serving";
  other.subdomain = "";
  ServiceRecord service{"serving", "model", {{"job", "mnist"}}, false};
  PodRecord self = Worker("w-0", "127.64.0.1");
  std::string hosts = HostsFileFor(self, {self, other}, {service});
  EXPECT_EQ(Resolve(hosts, "model.serving"), "127.64.0.7");
  EXPECT_EQ(Resolve(hosts, "model.serving.svc.cluster.local"), "127.64.0.7");
  EXPECT_EQ(Resolve(hosts, "model"), "");
}

TEST(ClusterNames, RecordsFromObjects) {
  json pod = {{"metadata", {{"name", "p"}, {"namespace", "ml"}, {"labels", {{"a", "b"}}}}},
              {"spec", {{"hostname", "h"}, {"subdomain", "s"}}},
              {"status", {{"podIP", "127.64.0.3"}, {"phase", "Running"},
                          {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
  PodRecord record = PodRecordFromObject(pod);
  EXPECT_EQ(record.hostname, "h");
  EXPECT_EQ(record.subdomain, "s");
  EXPECT_EQ(record.ip, "127.64.0.3");
  EXPECT_TRUE(record.ready);
  EXPECT_FALSE(record.terminated);
  pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  EXPECT_TRUE(PodRecordFromObject(pod).terminated);
  json service = {{"metadata", {{"name", "s"}, {"namespace", "ml"}}},
                  {"spec", {{"clusterIP", "None"}, {"selector", {{"a", "b"}}},
                            {"publishNotReadyAddresses", true}}}};
  ServiceRecord svc = ServiceRecordFromObject(service);
  EXPECT_EQ(svc.selector.at("a"), "b");
  EXPECT_TRUE(svc.publish_not_ready_addresses);
  // Garbage in gives empty records, not exceptions.
  EXPECT_EQ(PodRecordFromObject(json::array()).name, "");
  EXPECT_EQ(ServiceRecordFromObject(json("x")).name, "");
}

}  // namespace
}  // namespace mlscale::nodeagent
