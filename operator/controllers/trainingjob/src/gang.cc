#include "mlscale/controllers/trainingjob/gang.h"

#include <spdlog/spdlog.h>

namespace mlscale::controllers::trainingjob {

const char* GangFlavourName(GangFlavour flavour) {
  switch (flavour) {
    case GangFlavour::kNone: return "none";
    case GangFlavour::kCoscheduling: return "coscheduling";
    case GangFlavour::kVolcano: return "volcano";
  }
  return "none";
}

kube::Resource PodGroupResource(GangFlavour flavour) {
  if (flavour == GangFlavour::kVolcano) return {"scheduling.volcano.sh", "v1beta1", "podgroups", true, "PodGroup"};
  return {"scheduling.x-k8s.io", "v1alpha1", "podgroups", true, "PodGroup"};
}

std::string PodGroupCrdName(GangFlavour flavour) {
  const kube::Resource resource = PodGroupResource(flavour);
  return resource.plural + "." + resource.group;
}

std::optional<GangScheduling> GangDiscovery::LookUp() {
  for (GangFlavour flavour : {GangFlavour::kCoscheduling, GangFlavour::kVolcano}) {
    const std::string& scheduler =
        flavour == GangFlavour::kCoscheduling ? options_.coscheduling_scheduler : options_.volcano_scheduler;
    if (scheduler.empty()) continue;
    StatusOr<bool> installed = lookup_(PodGroupCrdName(flavour));
    if (!installed.ok()) {
      spdlog::warn("trainingjob: cannot tell whether the {} PodGroup CRD is installed ({}); asking again later",
                   GangFlavourName(flavour), installed.status().ToString());
      return std::nullopt;
    }
    if (*installed) return GangScheduling{flavour, scheduler};
  }
  return GangScheduling{};
}

GangScheduling GangDiscovery::Current(Clock::time_point now) {
  {
    std::lock_guard lock(mutex_);
    if (checked_ && now - *checked_ < options_.ttl) return current_;
  }
  std::optional<GangScheduling> found = LookUp();
  std::lock_guard lock(mutex_);
  if (!found) return current_;  // unknown: keep what we had, ask again next time
  if (found->flavour != current_.flavour && found->flavour == GangFlavour::kNone) {
    spdlog::info("trainingjob: no PodGroup CRD is installed any more; new worker groups get no PodGroup");
  } else if (found->flavour != current_.flavour) {
    spdlog::info("trainingjob: PodGroup CRD found: {}; new worker groups get {} PodGroups and scheduler {}",
                 PodGroupCrdName(found->flavour), GangFlavourName(found->flavour), found->scheduler_name);
  }
  current_ = *found;
  checked_ = now;
  return current_;
}

void GangDiscovery::Invalidate() {
  std::lock_guard lock(mutex_);
  checked_.reset();
}

}  // namespace mlscale::controllers::trainingjob
