#include "mlscale/router/endpoints.h"

#include <gtest/gtest.h>

namespace mlscale::router {
namespace {

using nlohmann::json;

json Slice(const std::string& name, const std::string& revision, json endpoints, json ports = json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}})) {
  json slice = {{"metadata", {{"name", name}, {"labels", {{"mlscale.io/revision", revision}, {"kubernetes.io/service-name", "svc-" + revision}}}}},
                {"addressType", "IPv4"},
                {"ports", ports},
                {"endpoints", endpoints}};
  return slice;
}

json Endpoint(const std::string& ip, json conditions) { return {{"addresses", {ip}}, {"conditions", conditions}}; }

TEST(ParseEndpointSlice, ReadsAddressesConditionsAndPort) {
  auto parsed = ParseEndpointSlice(Slice("s1", "rev-a", json::array({
      Endpoint("127.64.0.1", {{"ready", true}, {"serving", true}, {"terminating", false}}),
      Endpoint("127.64.0.2", {{"ready", false}, {"serving", true}, {"terminating", true}}),
      Endpoint("127.64.0.3", json::object()),  // nil conditions: ready and serving
  })));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->name, "s1");
  EXPECT_EQ(parsed->revision, "rev-a");
  ASSERT_EQ(parsed->endpoints.size(), 3u);
  EXPECT_EQ(parsed->endpoints[0].address.ToString(), "127.64.0.1:8080");
  EXPECT_TRUE(parsed->endpoints[0].ready);
  EXPECT_FALSE(parsed->endpoints[1].ready);
  EXPECT_TRUE(parsed->endpoints[1].serving);
  EXPECT_TRUE(parsed->endpoints[1].terminating);
  EXPECT_TRUE(parsed->endpoints[2].ready);
  EXPECT_TRUE(parsed->endpoints[2].serving);
  EXPECT_FALSE(parsed->endpoints[2].terminating);
}

TEST(ParseEndpointSlice, RevisionFallsBackToServiceName) {
  json slice = Slice("s1", "rev-a", json::array());
  slice["metadata"]["labels"].erase("mlscale.io/revision");
  auto parsed = ParseEndpointSlice(slice);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->revision, "svc-rev-a");
}

TEST(ParseEndpointSlice, PortByNameElseFirstTcp) {
  json ports = json::array({{{"name", "grpc"}, {"port", 9000}, {"protocol", "UDP"}},
                            {{"name", "metrics"}, {"port", 9090}},
                            {{"name", "http"}, {"port", 8080}}});
  auto first = ParseEndpointSlice(Slice("s", "r", json::array({Endpoint("10.0.0.1", {})}), ports));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->endpoints[0].address.port, 9090);  // UDP skipped
  auto named = ParseEndpointSlice(Slice("s", "r", json::array({Endpoint("10.0.0.1", {})}), ports), "http");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->endpoints[0].address.port, 8080);
}

TEST(ParseEndpointSlice, NullEndpointsIsAnEmptySlice) {
  auto parsed = ParseEndpointSlice(Slice("s", "r", nullptr));
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->endpoints.empty());
}

TEST(ParseEndpointSlice, SkipsMalformedAddressesKeepsTheRest) {
  auto parsed = ParseEndpointSlice(Slice("s", "r", json::array({
      Endpoint("not-an-ip", {}), Endpoint("fd00::1", {}),  // IPv6 in an IPv4 slice
      json{{"addresses", json::array()}}, json{{"addresses", {42}}}, json("garbage"),
      Endpoint("10.1.2.3", {{"ready", "yes"}}),  // non-boolean: the default (ready)
  })));
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->endpoints.size(), 1u);
  EXPECT_EQ(parsed->endpoints[0].address.ip, "10.1.2.3");
  EXPECT_TRUE(parsed->endpoints[0].ready);
}

TEST(ParseEndpointSlice, Ipv6) {
  json slice = Slice("s", "r", json::array({Endpoint("fd00::1", {})}));
  slice["addressType"] = "IPv6";
  auto parsed = ParseEndpointSlice(slice);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->endpoints.size(), 1u);
  EXPECT_EQ(parsed->endpoints[0].address.ToString(), "[fd00::1]:8080");
}

TEST(ParseEndpointSlice, ErrorsNameTheField) {
  struct Case {
    const char* what;
    json slice;
    const char* expected;
  };
  json no_labels = Slice("s", "r", json::array());
  no_labels["metadata"].erase("labels");
  json fqdn = Slice("s", "r", json::array());
  fqdn["addressType"] = "FQDN";
  json no_name = Slice("s", "r", json::array());
  no_name["metadata"].erase("name");
  json endpoints_object = Slice("s", "r", json::object());
  const Case cases[] = {
      {"not an object", json::array(), "not an object"},
      {"no name", no_name, "metadata.name"},
      {"no revision", no_labels, "metadata.labels"},
      {"FQDN", fqdn, "addressType"},
      {"no ports", Slice("s", "r", json::array(), json::array()), "ports"},
      {"port 0", Slice("s", "r", json::array(), json::array({{{"port", 0}}})), "ports"},
      {"port too big", Slice("s", "r", json::array(), json::array({{{"port", 70000}}})), "ports"},
      {"port string", Slice("s", "r", json::array(), json::array({{{"port", "80"}}})), "ports"},
      {"endpoints object", endpoints_object, "endpoints"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseEndpointSlice(c.slice);
    ASSERT_FALSE(parsed.ok()) << c.what;
    EXPECT_NE(parsed.status().message().find(c.expected), std::string::npos) << c.what << ": " << parsed.status().ToString();
  }
}

TEST(EndpointTable, UnionByRevisionReadyFirstThenDraining) {
  EndpointTable table;
  auto a1 = ParseEndpointSlice(Slice("a1", "rev-a", json::array({
      Endpoint("10.0.0.1", {{"ready", true}}), Endpoint("10.0.0.2", {{"ready", false}, {"serving", true}, {"terminating", true}}),
      Endpoint("10.0.0.3", {{"ready", false}, {"serving", false}, {"terminating", false}}),  // starting
  })));
  // The same pod in a second slice (moving between slices) counts once, ready wins.
  auto a2 = ParseEndpointSlice(Slice("a2", "rev-a", json::array({Endpoint("10.0.0.2", {{"ready", true}}), Endpoint("10.0.0.1", {{"ready", true}})})));
  auto b = ParseEndpointSlice(Slice("b", "rev-b", json::array({Endpoint("10.0.1.1", {{"ready", false}, {"serving", true}, {"terminating", true}})})));
  auto c = ParseEndpointSlice(Slice("c", "rev-c", nullptr));
  table.Upsert(*a1);
  table.Upsert(*b);
  table.Upsert(*c);
  auto revisions = table.Revisions();
  ASSERT_EQ(revisions.size(), 3u);
  ASSERT_EQ(revisions["rev-a"].ready.size(), 1u);
  EXPECT_EQ(revisions["rev-a"].ready[0].ip, "10.0.0.1");
  ASSERT_EQ(revisions["rev-a"].serving_terminating.size(), 1u);
  EXPECT_TRUE(revisions["rev-b"].ready.empty());
  ASSERT_EQ(revisions["rev-b"].serving_terminating.size(), 1u);
  EXPECT_TRUE(revisions["rev-c"].ready.empty());

  table.Upsert(*a2);
  revisions = table.Revisions();
  EXPECT_EQ(revisions["rev-a"].ready.size(), 2u);
  EXPECT_TRUE(revisions["rev-a"].serving_terminating.empty());

  table.Remove("a1");
  table.Remove("a2");
  table.Remove("b");
  revisions = table.Revisions();
  EXPECT_EQ(revisions.size(), 1u);
  EXPECT_TRUE(revisions.count("rev-c"));
}

}  // namespace
}  // namespace mlscale::router
