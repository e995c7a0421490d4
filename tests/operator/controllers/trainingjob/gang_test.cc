// GangDiscovery: which PodGroup flavour is installed, cached for a TTL, looked up again
// after it and after Invalidate(), an unknown answer keeping the previous one. The CRD
// look-up is a function here (the e2e test drives it against the real API server).
#include "mlscale/controllers/trainingjob/gang.h"

#include <gtest/gtest.h>

#include <map>

namespace mlscale::controllers::trainingjob {
namespace {

using namespace std::chrono_literals;

struct FakeCrds {
  std::map<std::string, StatusOr<bool>> answers;
  int lookups = 0;
  GangDiscovery::CrdLookup Lookup() {
    return [this](const std::string& crd) -> StatusOr<bool> {
      ++lookups;
      auto it = answers.find(crd);
      return it == answers.end() ? StatusOr<bool>(false) : it->second;
    };
  }
};

TEST(GangDiscoveryTest, FindsTheInstalledFlavourAndLooksAgainAfterTheTtl) {
  FakeCrds crds;
  GangDiscovery discovery({.ttl = 30s}, crds.Lookup());
  const auto t0 = GangDiscovery::Clock::time_point{} + 1h;
  EXPECT_EQ(discovery.Current(t0).flavour, GangFlavour::kNone);
  EXPECT_EQ(crds.lookups, 2) << "both flavours asked for";
  crds.answers.insert_or_assign("podgroups.scheduling.volcano.sh", StatusOr<bool>(true));
  EXPECT_EQ(discovery.Current(t0 + 10s).flavour, GangFlavour::kNone) << "cached within the TTL";
  EXPECT_EQ(crds.lookups, 2);
  GangScheduling volcano = discovery.Current(t0 + 31s);
  EXPECT_EQ(volcano.flavour, GangFlavour::kVolcano) << "installed after start: found without a restart";
  EXPECT_EQ(volcano.scheduler_name, "volcano");
  // Both installed: coscheduling first.
  crds.answers.insert_or_assign("podgroups.scheduling.x-k8s.io", StatusOr<bool>(true));
  discovery.Invalidate();
  GangScheduling both = discovery.Current(t0 + 32s);
  EXPECT_EQ(both.flavour, GangFlavour::kCoscheduling);
  EXPECT_EQ(both.scheduler_name, "scheduler-plugins-scheduler");
  // Removed: a miss (Invalidate) looks again at once.
  crds.answers.clear();
  EXPECT_EQ(discovery.Current(t0 + 33s).flavour, GangFlavour::kCoscheduling) << "still cached";
  discovery.Invalidate();
  EXPECT_EQ(discovery.Current(t0 + 33s).flavour, GangFlavour::kNone);
}

TEST(GangDiscoveryTest, AnUnknownAnswerKeepsThePreviousOneAndAsksAgain) {
  FakeCrds crds;
  crds.answers.insert_or_assign("podgroups.scheduling.x-k8s.io", StatusOr<bool>(true));
  GangDiscovery discovery({.ttl = 30s}, crds.Lookup());
  const auto t0 = GangDiscovery::Clock::time_point{} + 1h;
  EXPECT_EQ(discovery.Current(t0).flavour, GangFlavour::kCoscheduling);
  crds.answers.insert_or_assign("podgroups.scheduling.x-k8s.io", StatusOr<bool>(Unavailable("the API server is down")));
  EXPECT_EQ(discovery.Current(t0 + 31s).flavour, GangFlavour::kCoscheduling) << "kept";
  const int lookups = crds.lookups;
  EXPECT_EQ(discovery.Current(t0 + 32s).flavour, GangFlavour::kCoscheduling);
  EXPECT_GT(crds.lookups, lookups) << "an unknown answer is not cached";
  crds.answers.insert_or_assign("podgroups.scheduling.x-k8s.io", StatusOr<bool>(false));
  EXPECT_EQ(discovery.Current(t0 + 33s).flavour, GangFlavour::kNone);
}

TEST(GangDiscoveryTest, AFlavourWithoutASchedulerIsNeverUsed) {
  FakeCrds crds;
  crds.answers.insert_or_assign("podgroups.scheduling.x-k8s.io", StatusOr<bool>(true));
  crds.answers.insert_or_assign("podgroups.scheduling.volcano.sh", StatusOr<bool>(true));
  GangDiscovery discovery({.coscheduling_scheduler = "", .ttl = 30s}, crds.Lookup());
  EXPECT_EQ(discovery.Current().flavour, GangFlavour::kVolcano);
  GangDiscovery off({.coscheduling_scheduler = "", .volcano_scheduler = "", .ttl = 30s}, crds.Lookup());
  EXPECT_EQ(off.Current().flavour, GangFlavour::kNone);
  EXPECT_EQ(PodGroupCrdName(GangFlavour::kCoscheduling), "podgroups.scheduling.x-k8s.io");
  EXPECT_EQ(PodGroupCrdName(GangFlavour::kVolcano), "podgroups.scheduling.volcano.sh");
}

}  // namespace
}  // namespace mlscale::controllers::trainingjob
