// Gang scheduling through a PodGroup, in the flavour the cluster serves:
// - scheduler-plugins' coscheduling: scheduling.x-k8s.io/v1alpha1 PodGroup (minMember,
//   scheduleTimeoutSeconds), pods labelled scheduling.x-k8s.io/pod-group=<group>;
// - Volcano: scheduling.volcano.sh/v1beta1 PodGroup (minMember), pods annotated
//   scheduling.k8s.io/group-name=<group>, scheduler "volcano".
// Which one is installed is found from the CRDs and looked up again after a TTL (and at
// once after a miss), so installing or removing a scheduler needs no operator restart.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "mlscale/common/status.h"
#include "mlscale/kube/resource.h"

namespace mlscale::controllers::trainingjob {

enum class GangFlavour { kNone, kCoscheduling, kVolcano };

// "none", "coscheduling", "volcano".
const char* GangFlavourName(GangFlavour flavour);

struct GangScheduling {
  GangFlavour flavour = GangFlavour::kNone;
  std::string scheduler_name;  // set on worker pods (unless their template names one)
};

// The PodGroup resource of a flavour (kNone: not used).
kube::Resource PodGroupResource(GangFlavour flavour);
// The CRD name of a flavour's PodGroup ("podgroups.scheduling.x-k8s.io", ...).
std::string PodGroupCrdName(GangFlavour flavour);

class GangDiscovery {
 public:
  struct Options {
    // Scheduler names per flavour; "" turns that flavour off.
    std::string coscheduling_scheduler = "scheduler-plugins-scheduler";
    std::string volcano_scheduler = "volcano";
    // How long an answer is trusted before the CRDs are looked at again.
    std::chrono::milliseconds ttl{30'000};
  };
  // Whether the named CRD is installed: true, false (NotFound), or an error (unknown).
  using CrdLookup = std::function<StatusOr<bool>(const std::string& crd_name)>;
  using Clock = std::chrono::steady_clock;

  GangDiscovery(Options options, CrdLookup lookup) : options_(std::move(options)), lookup_(std::move(lookup)) {}

  // The flavour to use now: the cached answer while fresh, else looked up (coscheduling
  // first when both are installed). When a look-up fails, the previous answer stays (none
  // at first) and the next call tries again. Thread-safe; the look-up runs outside the lock.
  GangScheduling Current(Clock::time_point now = Clock::now());
  // Forgets the cached answer (e.g. creating a PodGroup found its resource gone).
  void Invalidate();

 private:
  std::optional<GangScheduling> LookUp();

  Options options_;
  CrdLookup lookup_;
  std::mutex mutex_;
  GangScheduling current_;
  std::optional<Clock::time_point> checked_;  // when current_ was looked up; unset: never/invalidated
};

}  // namespace mlscale::controllers::trainingjob
