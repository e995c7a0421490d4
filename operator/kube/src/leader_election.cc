#include "mlscale/kube/leader_election.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <random>
#include <thread>

#include "mlscale/kube/errors.h"
#include "mlscale/kube/time_format.h"

namespace mlscale::kube {
namespace {

// Sleeps `base` to 1.2*`base` (jitter keeps standbys from polling in lockstep); false on stop.
bool SleepJittered(std::chrono::milliseconds base, std::stop_token stop) {
  thread_local std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int64_t> jitter(base.count(), base.count() * 6 / 5);
  std::mutex mutex;
  std::condition_variable_any cv;
  std::unique_lock lock(mutex);
  cv.wait_for(lock, stop, std::chrono::milliseconds(jitter(random)), [] { return false; });
  return !stop.stop_requested();
}

std::string SpecString(const Object& lease, const char* field) {
  if (!lease.contains("spec") || !lease["spec"].is_object()) return "";
  const Object& spec = lease["spec"];
  return spec.contains(field) && spec[field].is_string() ? spec[field].get<std::string>() : "";
}

int64_t SpecInt(const Object& lease, const char* field) {
  if (!lease.contains("spec") || !lease["spec"].is_object()) return 0;
  const Object& spec = lease["spec"];
  return spec.contains(field) && spec[field].is_number_integer() ? spec[field].get<int64_t>() : 0;
}

constexpr const char* kLeaderMetric = "mlscale_kube_leader_election_master_status";

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

StatusOr<std::unique_ptr<LeaderElector>> LeaderElector::Create(const ClientConfig& client_config,
                                                               LeaderElectionConfig config, LeaderCallbacks callbacks,
                                                               Metrics* metrics) {
  if (config.lease_namespace.empty() || config.lease_name.empty() || config.identity.empty()) {
    return InvalidArgument("leader election needs a lease namespace, a lease name and an identity");
  }
  if (!(config.lease_duration > config.renew_deadline && config.renew_deadline > config.retry_period &&
        config.retry_period.count() > 0)) {
    return InvalidArgument("leader election needs lease_duration > renew_deadline > retry_period > 0");
  }
  if (config.lease_duration < std::chrono::seconds(1)) {
    return InvalidArgument("leader election: lease_duration must be at least 1 s (the Lease counts whole seconds)");
  }
  // The elector's own client: a limiter nobody else drains, no retries (the renew loop
  // is the retry), and no attempt longer than the renew deadline.
  ClientConfig own = client_config;
  own.qps = 20;
  own.burst = 20;
  own.max_retries = 0;
  own.request_timeout = std::min<std::chrono::milliseconds>(client_config.request_timeout, config.renew_deadline);
  own.user_agent = client_config.user_agent + " leader-election";
  StatusOr<std::unique_ptr<Client>> client = Client::Create(own, metrics);
  if (!client.ok()) return client.status().WithContext("leader election client");
  return std::unique_ptr<LeaderElector>(
      new LeaderElector(std::move(*client), std::move(config), std::move(callbacks), metrics));
}

LeaderElector::LeaderElector(std::unique_ptr<Client> client, LeaderElectionConfig config, LeaderCallbacks callbacks,
                             Metrics* metrics)
    : client_(std::move(client)), metrics_(metrics), config_(std::move(config)), callbacks_(std::move(callbacks)) {
  if (metrics_ != nullptr) {
    metrics_->Describe(kLeaderMetric, "1 while this replica leads (its controllers run), else 0, by lease.");
    PublishLeading(false);
  }
}

void LeaderElector::PublishLeading(bool leading) {
  leading_ = leading;
  if (metrics_ != nullptr) metrics_->Set(kLeaderMetric, {{"name", config_.lease_name}}, leading ? 1 : 0);
}

std::string LeaderElector::ObservedLeader() const {
  std::lock_guard lock(mutex_);
  return observed_holder_;
}

bool LeaderElector::TryAcquireOrRenew(const CallOptions& call) {
  const Resource leases = resources::Leases();
  const std::string now_text = MicroTimeNow();
  const int64_t duration_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(config_.lease_duration).count();
  StatusOr<Object> current = client_->Get(leases, config_.lease_namespace, config_.lease_name, "", call);
  // Judged from when the read returned: a change the read shows happened before then,
  // so an expiry counted from here is never early.
  const auto read_at = std::chrono::steady_clock::now();
  if (!current.ok() && IsNotFound(current.status())) {
    Object lease = {{"apiVersion", "coordination.k8s.io/v1"},
                    {"kind", "Lease"},
                    {"metadata", {{"name", config_.lease_name}, {"namespace", config_.lease_namespace}}},
                    {"spec",
                     {{"holderIdentity", config_.identity},
                      {"leaseDurationSeconds", duration_seconds},
                      {"acquireTime", now_text},
                      {"renewTime", now_text},
                      {"leaseTransitions", 0}}}};
    StatusOr<Object> created = client_->Create(leases, config_.lease_namespace, lease, call);
    if (!created.ok()) {
      if (!IsAlreadyExists(created.status())) spdlog::warn("leader election: {}", created.status().ToString());
      return false;
    }
    std::lock_guard lock(mutex_);
    observed_holder_ = config_.identity;
    observed_at_ = read_at;
    return true;
  }
  if (!current.ok()) {
    spdlog::warn("leader election: reading lease {}/{}: {}", config_.lease_namespace, config_.lease_name,
                 current.status().ToString());
    return false;
  }
  const std::string holder = SpecString(*current, "holderIdentity");
  const std::string renew_time = SpecString(*current, "renewTime");
  {
    // Expiry is judged by our own clock since the record last changed, not by the
    // timestamps in it, so clock skew between processes does not matter.
    std::lock_guard lock(mutex_);
    if (holder != observed_holder_ || renew_time != observed_renew_time_) {
      observed_holder_ = holder;
      observed_renew_time_ = renew_time;
      observed_at_ = read_at;
    }
    int64_t held_for = SpecInt(*current, "leaseDurationSeconds");
    auto lease_duration = held_for > 0 ? std::chrono::seconds(held_for) : config_.lease_duration;
    if (!holder.empty() && holder != config_.identity && read_at < observed_at_ + lease_duration) return false;
  }
  Object lease = std::move(*current);
  if (holder != config_.identity) {
    lease["spec"]["acquireTime"] = now_text;
    lease["spec"]["leaseTransitions"] = SpecInt(lease, "leaseTransitions") + (holder.empty() ? 0 : 1);
  }
  lease["spec"]["holderIdentity"] = config_.identity;
  lease["spec"]["leaseDurationSeconds"] = duration_seconds;
  lease["spec"]["renewTime"] = now_text;
  StatusOr<Object> updated = client_->Update(leases, lease, "", call);
  if (!updated.ok()) {
    if (!IsConflict(updated.status())) spdlog::warn("leader election: {}", updated.status().ToString());
    return false;
  }
  std::lock_guard lock(mutex_);
  observed_holder_ = config_.identity;
  observed_renew_time_ = now_text;
  observed_at_ = read_at;
  return true;
}

void LeaderElector::Release() {
  StatusOr<Object> updated = client_->UpdateWithRetry(
      resources::Leases(), config_.lease_namespace, config_.lease_name, [this](Object& lease) {
        if (SpecString(lease, "holderIdentity") != config_.identity) return false;
        lease["spec"]["holderIdentity"] = nullptr;
        lease["spec"]["leaseDurationSeconds"] = 1;
        lease["spec"]["renewTime"] = MicroTimeNow();
        return true;
      }, "", 3, CallOptions::Within(config_.renew_deadline));
  if (!updated.ok()) {
    spdlog::warn("leader election: releasing the lease failed: {}", updated.status().ToString());
  } else {
    spdlog::info("leader election: released lease {}/{}", config_.lease_namespace, config_.lease_name);
  }
}

void LeaderElector::Lead(std::stop_token stop, std::chrono::steady_clock::time_point renewed_at) {
  using Clock = std::chrono::steady_clock;
  const int64_t started_ms = UnixMillis();
  PublishLeading(true);
  spdlog::info("leader election: {} became leader of {}/{}", config_.identity, config_.lease_namespace,
               config_.lease_name);
  if (callbacks_.on_new_leader) callbacks_.on_new_leader(config_.identity);
  std::stop_source leadership;
  std::jthread leader;
  if (callbacks_.on_started_leading) {
    leader = std::jthread([this, token = leadership.get_token()] { callbacks_.on_started_leading(token); });
  }
  bool lost = false;
  while (!stop.stop_requested()) {
    Clock::time_point deadline = renewed_at + config_.renew_deadline;
    // Sleep a retry period, but never past the renew deadline.
    auto pause = std::min<Clock::duration>(config_.retry_period, deadline - Clock::now());
    if (pause > Clock::duration::zero() &&
        !SleepJittered(std::chrono::duration_cast<std::chrono::milliseconds>(pause), stop)) {
      break;
    }
    if (Clock::now() >= deadline) {
      lost = true;
      break;
    }
    Clock::time_point sent = Clock::now();
    // Bounded by the renew deadline: a renew that would end later is abandoned.
    if (TryAcquireOrRenew(CallOptions{stop, deadline})) {
      renewed_at = sent;
    } else if (Clock::now() >= deadline) {
      lost = true;
      break;
    }
  }
  if (lost) {
    spdlog::error("leader election: {} could not renew within {} ms; stepping down", config_.identity,
                  config_.renew_deadline.count());
  }
  leadership.request_stop();
  if (leader.joinable()) leader.join();
  PublishLeading(false);
  spdlog::info("leader election: {} led {}/{} from {} to {}", config_.identity, config_.lease_namespace,
               config_.lease_name, started_ms, UnixMillis());
  if (lost && Clock::now() >= renewed_at + config_.lease_duration) {
    spdlog::error("leader election: stopping the controllers outlasted the lease ({} ms); another replica may "
                  "have led meanwhile", config_.lease_duration.count());
  }
  if (callbacks_.on_stopped_leading) callbacks_.on_stopped_leading();
  if (stop.stop_requested() && config_.release_on_stop) Release();
}

void LeaderElector::Run(std::stop_token stop) {
  std::string last_leader;
  while (!stop.stop_requested()) {
    auto sent = std::chrono::steady_clock::now();
    if (TryAcquireOrRenew(CallOptions::Within(config_.renew_deadline, stop))) {
      Lead(stop, sent);
      continue;
    }
    std::string leader = ObservedLeader();
    if (leader != last_leader) {
      last_leader = leader;
      if (callbacks_.on_new_leader && !leader.empty()) callbacks_.on_new_leader(leader);
    }
    if (!SleepJittered(config_.retry_period, stop)) break;
  }
}

}  // namespace mlscale::kube
