#include "node_agent.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "cluster_names.h"
#include "json_fields.h"
#include "mlscale/kube/base64.h"
#include "mlscale/kube/errors.h"
#include "mlscale/kube/objects.h"
#include "mlscale/kube/time_format.h"

namespace mlscale::nodeagent {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace resources = kube::resources;

constexpr const char* kLeaseNamespace = "kube-node-lease";
constexpr auto kNodeStatusPeriod = std::chrono::seconds(30);
constexpr auto kResyncPeriod = std::chrono::seconds(1);
constexpr auto kPlanRetryPeriod = std::chrono::seconds(2);

kube::PatchOptions StatusSubresource() {
  kube::PatchOptions options;
  options.subresource = "status";
  return options;
}

// Deletion with grace 0, as the kubelet finalizes a pod whose containers stopped; only
// this incarnation of the name (`uid`).
kube::DeleteOptions DeleteNow(const std::string& uid) {
  kube::DeleteOptions options;
  options.grace_period_seconds = 0;
  options.precondition_uid = uid;
  return options;
}

bool OnNode(const kube::ObjectPtr& pod, const std::string& node) {
  return pod && StringField(Field(*pod, "spec"), "nodeName") == node;
}

std::string Phase(const json& pod) { return StringField(Field(pod, "status"), "phase"); }

// "https://host:port" (or "https://[v6]:port") -> the in-cluster variables.
std::vector<std::string> ApiServerEnv(const std::string& server) {
  std::string rest = server.substr(server.find("://") == std::string::npos ? 0 : server.find("://") + 3);
  rest = rest.substr(0, rest.find('/'));
  std::string host = rest, port = "443";
  if (size_t colon = rest.rfind(':'); colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {"KUBERNETES_SERVICE_HOST=" + host, "KUBERNETES_SERVICE_PORT=" + port,
          "KUBERNETES_SERVICE_PORT_HTTPS=" + port};
}

}  // namespace

StatusOr<IssuedTokenValue> TokenFromTokenRequest(const json& answer) {
  const json& status = Field(answer, "status");
  if (!status.is_object()) return DataLoss("the TokenRequest answer has no status object");
  const json& token = Field(status, "token");
  if (!token.is_string() || token.get<std::string>().empty()) {
    return DataLoss("the TokenRequest answer has no status.token string");
  }
  const json& expiry = Field(status, "expirationTimestamp");
  std::optional<std::chrono::system_clock::time_point> expires =
      expiry.is_string() ? kube::ParseTime(expiry.get<std::string>()) : std::nullopt;
  if (!expires) return DataLoss("the TokenRequest answer has no valid status.expirationTimestamp");
  return IssuedTokenValue{token.get<std::string>(), *expires};
}

NodeAgent::NodeAgent(kube::Client& client, AgentConfig config)
    : client_(client),
      config_(std::move(config)),
      addresses_(config_.address_last == 0 ? AddressPool(config_.address_dir)
                                           : AddressPool(config_.address_dir, config_.address_first, config_.address_last)),
      api_server_env_(ApiServerEnv(client.config().server)) {}

NodeAgent::~NodeAgent() = default;

Status NodeAgent::RegisterNode() {
  json labels = {{"kubernetes.io/hostname", config_.node_name},
                 {"kubernetes.io/os", "linux"},
                 {"kubernetes.io/arch", "amd64"},
                 {"node.mlscale.io/test-node", "true"}};
  for (const auto& [key, value] : config_.labels) labels[key] = value;
  json taints = json::array();
  for (const Taint& taint : config_.taints) {
    json t = {{"key", taint.key}, {"effect", taint.effect}};
    if (!taint.value.empty()) t["value"] = taint.value;
    taints.push_back(t);
  }
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata", {{"name", config_.node_name}, {"labels", labels}}},
               {"spec", {{"taints", taints}}}};
  StatusOr<kube::Object> created = client_.Create(resources::Nodes(), "", node);
  if (!created.ok() && kube::IsAlreadyExists(created.status())) {
    // A node of this name from an earlier run: take it over with our labels and taints.
    created = client_.Patch(resources::Nodes(), "", config_.node_name, kube::PatchType::kMerge,
                            {{"metadata", {{"labels", labels}}}, {"spec", {{"taints", taints}}}});
  }
  if (!created.ok()) return created.status().WithContext("registering node " + config_.node_name);
  node_uid_ = kube::UidOf(*created);
  node_ready_since_ = kube::FormatTime(std::chrono::system_clock::now());
  return WriteNodeStatus();
}

Status NodeAgent::WriteNodeStatus() {
  std::string now = kube::FormatTime(std::chrono::system_clock::now());
  json capacity = json::object();
  for (const auto& [name, quantity] : config_.capacity) capacity[name] = quantity;
  json conditions = json::array();
  for (const auto& [type, reason] : {std::pair{"MemoryPressure", "KubeletHasSufficientMemory"},
                                     std::pair{"DiskPressure", "KubeletHasNoDiskPressure"},
                                     std::pair{"PIDPressure", "KubeletHasSufficientPID"},
                                     std::pair{"Ready", "KubeletReady"}}) {
    conditions.push_back({{"type", type},
                          {"status", std::string(type) == "Ready" ? "True" : "False"},
                          {"reason", reason},
                          {"message", "mlscale-test-node runs pods as local processes"},
                          {"lastHeartbeatTime", now},
                          {"lastTransitionTime", node_ready_since_}});
  }
  json status = {
      {"capacity", capacity},
      {"allocatable", capacity},
      {"conditions", conditions},
      {"addresses", {{{"type", "InternalIP"}, {"address", config_.host_ip}},
                     {{"type", "Hostname"}, {"address", config_.node_name}}}},
      {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", log_server_ ? log_server_->port() : 0}}}}},
      {"nodeInfo", {{"machineID", ""}, {"systemUUID", ""}, {"bootID", ""},
                    {"kernelVersion", ""}, {"osImage", "mlscale-test-node"},
                    {"containerRuntimeVersion", "mlscale-test-node://0.1"},
                    {"kubeletVersion", "mlscale-test-node"}, {"kubeProxyVersion", ""},
                    {"operatingSystem", "linux"}, {"architecture", "amd64"}}}};
  StatusOr<kube::Object> written =
      client_.Patch(resources::Nodes(), "", config_.node_name, kube::PatchType::kMerge,
                    {{"status", status}}, StatusSubresource());
  return written.ok() ? Status::Ok() : written.status().WithContext("writing node status");
}

Status NodeAgent::RenewLease() {
  json spec = {{"holderIdentity", config_.node_name},
               {"leaseDurationSeconds", config_.lease_duration.count()},
               {"renewTime", kube::MicroTimeNow()}};
  StatusOr<kube::Object> renewed = client_.Patch(resources::Leases(), kLeaseNamespace, config_.node_name,
                                                 kube::PatchType::kMerge, {{"spec", spec}});
  if (renewed.ok()) return Status::Ok();
  if (!kube::IsNotFound(renewed.status())) return renewed.status().WithContext("renewing the node lease");
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", config_.node_name},
                              {"namespace", kLeaseNamespace},
                              {"ownerReferences", {{{"apiVersion", "v1"}, {"kind", "Node"},
                                                    {"name", config_.node_name}, {"uid", node_uid_}}}}}},
                {"spec", spec}};
  StatusOr<kube::Object> created = client_.Create(resources::Leases(), kLeaseNamespace, lease);
  return created.ok() ? Status::Ok() : created.status().WithContext("creating the node lease");
}

void NodeAgent::MarkDirty(const std::string& key, bool names_changed) {
  std::lock_guard lock(mutex_);
  if (!key.empty()) dirty_.insert(key);
  names_dirty_ |= names_changed;
  wake_.notify_all();
}

std::optional<std::string> NodeAgent::LogFileOf(const std::string& namespace_name, const std::string& pod,
                                                const std::string& container) {
  std::lock_guard lock(logs_mutex_);
  auto it = log_targets_.find(namespace_name + "/" + pod);
  if (it == log_targets_.end()) return std::nullopt;
  if (it->second.containers.count(container)) return it->second.pod_dir + "/" + container + ".log";
  if (it->second.init_containers.count(container)) return it->second.pod_dir + "/init-" + container + ".log";
  return std::nullopt;
}

void NodeAgent::ForgetLogs(const std::string& key, const std::string& uid) {
  std::lock_guard lock(logs_mutex_);
  auto it = log_targets_.find(key);
  if (it != log_targets_.end() && it->second.uid == uid) log_targets_.erase(it);
}

Status NodeAgent::Run(std::stop_token stop) {
  if (!config_.tls_cert_file.empty()) {
    LogServerOptions options;
    options.address = config_.host_ip;
    options.port = config_.kubelet_port;
    options.cert_file = config_.tls_cert_file;
    options.key_file = config_.tls_key_file;
    options.client_ca_file = config_.client_ca_file;
    options.log_file = [this](const std::string& ns, const std::string& pod, const std::string& container) {
      return LogFileOf(ns, pod, container);
    };
    StatusOr<std::unique_ptr<LogServer>> server = LogServer::Start(std::move(options));
    if (!server.ok()) return server.status();
    log_server_ = std::move(*server);
    spdlog::info("log endpoint on {}:{}", config_.host_ip, log_server_->port());
  }
  MLSCALE_RETURN_IF_ERROR(RegisterNode());
  MLSCALE_RETURN_IF_ERROR(RenewLease());
  spdlog::info("node {} registered (capacity {})", config_.node_name, json(config_.capacity).dump());

  pods_ = std::make_unique<kube::SharedInformer>(client_, resources::Pods(), "", kube::InformerOptions{});
  services_ = std::make_unique<kube::SharedInformer>(client_, resources::Services(), "", kube::InformerOptions{});
  auto pod_changed = [this](const kube::ObjectPtr& pod) {
    // Every pod can matter for names; only our pods need a sync.
    MarkDirty(OnNode(pod, config_.node_name) ? kube::KeyOf(*pod) : "", true);
  };
  pods_->AddHandler({.on_add = pod_changed,
                     .on_update = [this, pod_changed](const kube::ObjectPtr& old_pod, const kube::ObjectPtr& new_pod) {
                       // A pod moved to or from this node needs a sync either way.
                       if (OnNode(old_pod, config_.node_name)) MarkDirty(kube::KeyOf(*old_pod), false);
                       pod_changed(new_pod);
                     },
                     .on_delete = [pod_changed](const kube::ObjectPtr& pod, bool) { pod_changed(pod); }});
  auto service_changed = [this](const kube::ObjectPtr&) { MarkDirty("", true); };
  services_->AddHandler({.on_add = service_changed,
                         .on_update = [service_changed](const kube::ObjectPtr&, const kube::ObjectPtr& s) { service_changed(s); },
                         .on_delete = [service_changed](const kube::ObjectPtr& s, bool) { service_changed(s); }});
  pods_->Start();
  services_->Start();
  if (!pods_->WaitForSync(std::chrono::seconds(60), stop) ||
      !services_->WaitForSync(std::chrono::seconds(60), stop)) {
    return DeadlineExceeded("the pod and service caches did not sync");
  }
  if (!config_.ready_file.empty()) std::ofstream(config_.ready_file) << "ready\n";
  spdlog::info("node {} ready", config_.node_name);

  Clock::time_point next_lease = Clock::now() + config_.lease_duration / 4;
  Clock::time_point next_node_status = Clock::now() + kNodeStatusPeriod;
  Clock::time_point next_resync = Clock::now();
  while (!stop.stop_requested()) {
    Clock::time_point now = Clock::now();
    if (now >= next_lease) {
      if (Status s = RenewLease(); !s.ok()) spdlog::warn("{}", s.ToString());
      next_lease = now + config_.lease_duration / 4;
    }
    if (now >= next_node_status) {
      if (Status s = WriteNodeStatus(); !s.ok()) spdlog::warn("{}", s.ToString());
      next_node_status = now + kNodeStatusPeriod;
    }
    std::set<std::string> dirty;
    bool names = false;
    {
      std::lock_guard lock(mutex_);
      dirty.swap(dirty_);
      std::swap(names, names_dirty_);
    }
    if (now >= next_resync) {  // level-triggered: every pod we run is looked at again
      for (auto& [key, entry] : entries_) {
        dirty.insert(key);
        if (!entry.runtime->Done()) RefreshTokens(key, entry);
      }
      next_resync = now + kResyncPeriod;
    }
    if (names) RefreshNames();
    for (const std::string& key : dirty) SyncPod(key);
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, stop, std::chrono::milliseconds(200),
                   [this] { return !dirty_.empty() || names_dirty_; });
  }

  pods_->Stop();
  services_->Stop();
  for (auto& [key, entry] : entries_) {
    entry.runtime.reset();  // kills every container and joins the runtime
    addresses_.Release(entry.address);
  }
  entries_.clear();
  log_server_.reset();  // ends every follow
  if (config_.delete_node_on_exit) {
    for (const auto& [resource, namespace_name] : {std::pair{resources::Leases(), kLeaseNamespace},
                                                   std::pair{resources::Nodes(), ""}}) {
      Status deleted = client_.Delete(resource, namespace_name, config_.node_name);
      if (!deleted.ok() && !kube::IsNotFound(deleted)) {
        spdlog::warn("deleting {} {}: {}", resource.plural, config_.node_name, deleted.ToString());
      }
    }
  }
  return Status::Ok();
}

void NodeAgent::SyncPod(const std::string& key) {
  kube::ObjectPtr pod = pods_->cache().Get(key);
  bool mine = OnNode(pod, config_.node_name);
  auto it = entries_.find(key);
  if (it != entries_.end() && (!mine || kube::UidOf(*pod) != it->second.uid)) {
    // Gone from the API (force-deleted or finalized), moved, or replaced by a new pod of
    // the same name: nothing of it may keep running.
    PodEntry& entry = it->second;
    entry.runtime->Terminate(std::chrono::milliseconds(0));
    if (!entry.runtime->Finished()) return;  // the runtime reports when it is
    ForgetLogs(key, entry.uid);
    addresses_.Release(entry.address);
    entries_.erase(it);
    it = entries_.end();
  }
  if (!mine) return;
  const json& metadata = Field(*pod, "metadata");
  bool deleting = metadata.contains("deletionTimestamp");
  if (it == entries_.end()) {
    std::string phase = Phase(*pod);
    if (deleting) {
      // Nothing of it runs here (finished before we started, or never started).
      Status s = client_.Delete(resources::Pods(), kube::NamespaceOf(*pod), kube::NameOf(*pod),
                                DeleteNow(kube::UidOf(*pod)));
      if (!s.ok() && !kube::IsNotFound(s)) spdlog::warn("finalizing pod {}: {}", key, s.ToString());
      return;
    }
    if (phase == "Succeeded" || phase == "Failed") return;  // finished in an earlier run
    StartPod(key, *pod, "");
    return;
  }
  PodEntry& entry = it->second;
  if (!deleting && entry.retry_plan_at && Clock::now() >= *entry.retry_plan_at) {
    std::string address = entry.address;
    ForgetLogs(key, entry.uid);
    entries_.erase(it);  // nothing runs in a pod without a plan
    StartPod(key, *pod, address);
    return;
  }
  if (deleting) {
    const json& grace = Field(metadata, "deletionGracePeriodSeconds");
    int64_t seconds = grace.is_number_integer() ? grace.get<int64_t>()
                                                : entry.runtime->plan().termination_grace_seconds;
    entry.runtime->Terminate(std::chrono::seconds(std::max<int64_t>(seconds, 0)));
  }
  WriteStatus(key, entry);
  if (deleting && entry.runtime->Finished() && !entry.delete_sent) {
    Status s = client_.Delete(resources::Pods(), kube::NamespaceOf(*pod), kube::NameOf(*pod),
                              DeleteNow(entry.uid));
    if (s.ok() || kube::IsNotFound(s)) {
      entry.delete_sent = true;
      spdlog::info("pod {} stopped and removed", key);
    } else {
      spdlog::warn("finalizing pod {}: {}", key, s.ToString());
    }
  }
}

StatusOr<std::map<std::string, std::string>> NodeAgent::ReadValues(const std::string& kind,
                                                                   const std::string& namespace_name,
                                                                   const std::string& name) {
  bool secret = kind == "secrets";
  StatusOr<kube::Object> object =
      client_.Get(secret ? resources::Secrets() : resources::ConfigMaps(), namespace_name, name);
  if (!object.ok()) return object.status();
  std::map<std::string, std::string> values;
  const json& data = Field(*object, "data");
  if (data.is_object()) {
    for (auto entry = data.begin(); entry != data.end(); ++entry) {
      if (!entry.value().is_string()) continue;
      std::string value = entry.value().get<std::string>();
      if (secret) {
        std::optional<std::string> decoded = kube::Base64Decode(value);
        if (!decoded) return InvalidArgument("secret " + name + " key " + entry.key() + " is not base64");
        value = *decoded;
      }
      values[entry.key()] = value;
    }
  }
  return values;
}

std::string NodeAgent::HostsFor(const kube::Object& pod, const std::string& address) const {
  std::vector<PodRecord> records;
  for (const kube::ObjectPtr& other : pods_->cache().List()) records.push_back(PodRecordFromObject(*other));
  std::vector<ServiceRecord> services;
  for (const kube::ObjectPtr& service : services_->cache().List()) {
    services.push_back(ServiceRecordFromObject(*service));
  }
  PodRecord self = PodRecordFromObject(pod);
  self.ip = address;  // the cache may not have seen our status write yet
  return HostsFileFor(self, records, services, config_.cluster_domain);
}

StatusOr<std::string> NodeAgent::RequestToken(const PodPlan& plan, const TokenProjection& projection,
                                              std::chrono::system_clock::time_point& refresh_at) {
  json spec = {{"expirationSeconds", projection.expiration_seconds},
               {"boundObjectRef", {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", plan.name}, {"uid", plan.uid}}}};
  if (!projection.audience.empty()) spec["audiences"] = {projection.audience};
  json request = {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", spec}};
  auto issued = std::chrono::system_clock::now();
  StatusOr<kube::Object> answer = client_.CreateSubresource(resources::ServiceAccounts(), plan.namespace_name,
                                                            plan.service_account, "token", request);
  std::string what = "requesting a token for service account " + plan.namespace_name + "/" + plan.service_account;
  if (!answer.ok()) return answer.status().WithContext(what);
  StatusOr<IssuedTokenValue> value = TokenFromTokenRequest(*answer);
  if (!value.ok()) return value.status().WithContext(what);
  refresh_at = TokenRefreshTime(issued, value->expires, config_.token_refresh_percent);
  return std::move(value->token);
}

Status NodeAgent::IssueTokens(PodPlan& plan, const std::string& pod_dir, PodEntry& entry) {
  for (VolumePlan& volume : plan.volumes) {
    for (const TokenProjection& projection : volume.tokens) {
      IssuedToken issued{pod_dir + "/volumes/" + volume.name + "/" + projection.path, projection, {}};
      StatusOr<std::string> token = RequestToken(plan, projection, issued.refresh_at);
      // As the kubelet fails the volume's mount: the pod waits and the plan is retried.
      if (!token.ok()) return InvalidArgument(token.status().ToString());
      volume.files[projection.path] = *token;
      entry.tokens.push_back(std::move(issued));
    }
  }
  return Status::Ok();
}

void NodeAgent::RefreshTokens(const std::string& key, PodEntry& entry) {
  auto now = std::chrono::system_clock::now();
  for (IssuedToken& issued : entry.tokens) {
    if (now < issued.refresh_at) continue;
    StatusOr<std::string> token = RequestToken(entry.runtime->plan(), issued.projection, issued.refresh_at);
    if (!token.ok()) {
      spdlog::warn("pod {}: {} (retrying in 10 s)", key, token.status().ToString());
      issued.refresh_at = now + std::chrono::seconds(10);
      continue;
    }
    // A reader sees the old token or the new one, never half of one; the pod's bind mount
    // is of the folder, so the renamed file is what it sees.
    std::string staging = issued.file + ".new";
    {
      std::ofstream out(staging, std::ios::binary | std::ios::trunc);
      out << *token;
    }
    std::error_code error;
    std::filesystem::rename(staging, issued.file, error);
    if (error) spdlog::warn("pod {}: replacing {}: {}", key, issued.file, error.message());
    else spdlog::info("pod {}: service-account token refreshed", key);
  }
}

void NodeAgent::StartPod(const std::string& key, const kube::Object& pod, const std::string& address) {
  PodEntry entry;
  entry.uid = kube::UidOf(pod);
  entry.address = address;
  if (entry.address.empty()) {
    StatusOr<std::string> leased = addresses_.Acquire(entry.uid);
    if (!leased.ok()) {
      spdlog::error("pod {}: {}", key, leased.status().ToString());
      return;  // retried at the next sync
    }
    entry.address = *leased;
  }
  PlanInputs inputs;
  inputs.images = config_.images;
  inputs.pod_ip = entry.address;
  inputs.host_ip = config_.host_ip;
  inputs.node_name = config_.node_name;
  inputs.node_allocatable = config_.capacity;
  inputs.base_env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"};
  inputs.lookup = [this](const std::string& kind, const std::string& ns, const std::string& name) {
    return ReadValues(kind, ns, name);
  };
  inputs.base_env.insert(inputs.base_env.end(), api_server_env_.begin(), api_server_env_.end());
  StatusOr<PodPlan> plan = BuildPodPlan(pod, inputs);
  RuntimeOptions options;
  options.pod_dir = config_.state_dir + "/pods/" + kube::NamespaceOf(pod) + "_" + kube::NameOf(pod) + "_" + entry.uid;
  if (plan.ok()) {
    if (Status issued = IssueTokens(*plan, options.pod_dir, entry); !issued.ok()) plan = issued;
  }
  options.pod_ip = entry.address;
  options.host_ip = config_.host_ip;
  options.restart_backoff = config_.restart_backoff;
  options.max_restart_backoff = config_.max_restart_backoff;
  entry.hosts_text = HostsFor(pod, entry.address);
  options.hosts_text = entry.hosts_text;
  options.on_change = [this, key] { MarkDirty(key, false); };
  if (!plan.ok()) {
    spdlog::warn("pod {}: {} (retrying)", key, plan.status().ToString());
    options.plan_error = plan.status();
    entry.retry_plan_at = Clock::now() + kPlanRetryPeriod;
  }
  entry.runtime = std::make_unique<PodRuntime>(plan.ok() ? std::move(*plan) : PlanSkeleton(pod), options);
  {
    LogTarget target{entry.uid, options.pod_dir, {}, {}};
    for (const ContainerPlan& c : entry.runtime->plan().containers) target.containers.insert(c.name);
    for (const ContainerPlan& c : entry.runtime->plan().init_containers) target.init_containers.insert(c.name);
    std::lock_guard lock(logs_mutex_);
    log_targets_[key] = std::move(target);
  }
  spdlog::info("pod {} starting at {} (files in {})", key, entry.address, options.pod_dir);
  entry.runtime->Start();
  PodEntry& stored = entries_[key] = std::move(entry);
  WriteStatus(key, stored);
}

void NodeAgent::WriteStatus(const std::string& key, PodEntry& entry) {
  kube::ObjectPtr pod = pods_->cache().Get(key);
  if (!pod) return;
  const json& previous = entry.last_status.is_null() ? Field(*pod, "status") : entry.last_status;
  json status = PodStatusObject(entry.runtime->Observe(), entry.runtime->plan().restart_policy, previous,
                                std::chrono::system_clock::now());
  if (status == entry.last_status) return;
  StatusOr<kube::Object> written =
      client_.Patch(resources::Pods(), kube::NamespaceOf(*pod), kube::NameOf(*pod), kube::PatchType::kMerge,
                    {{"status", status}}, StatusSubresource());
  if (written.ok()) {
    std::string phase = StringField(status, "phase");
    if (phase != StringField(entry.last_status, "phase")) spdlog::info("pod {} is {}", key, phase);
    entry.last_status = std::move(status);
  } else if (!kube::IsNotFound(written.status())) {
    spdlog::warn("writing the status of pod {}: {}", key, written.status().ToString());
  }
}

void NodeAgent::RefreshNames() {
  for (auto& [key, entry] : entries_) {
    kube::ObjectPtr pod = pods_->cache().Get(key);
    if (!pod) continue;
    std::string text = HostsFor(*pod, entry.address);
    if (text == entry.hosts_text) continue;
    entry.runtime->UpdateHosts(text);
    entry.hosts_text = std::move(text);
  }
}

}  // namespace mlscale::nodeagent
