#include "json_fields.h"
#include "cluster_names.h"

#include <algorithm>
#include <set>

#include "pod_plan.h"

namespace mlscale::nodeagent {
namespace {

using nlohmann::json;

std::map<std::string, std::string> StringMap(const json& object) {
  std::map<std::string, std::string> out;
  if (!object.is_object()) return out;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

bool Selects(const ServiceRecord& service, const PodRecord& pod) {
  if (service.selector.empty() || pod.namespace_name != service.namespace_name) return false;
  for (const auto& [key, value] : service.selector) {
    auto it = pod.labels.find(key);
    if (it == pod.labels.end() || it->second != value) return false;
  }
  return true;
}

bool IsEndpoint(const ServiceRecord& service, const PodRecord& pod) {
  return Selects(service, pod) && !pod.ip.empty() && !pod.terminated &&
         (pod.ready || service.publish_not_ready_addresses);
}

// "<relative>.svc.<domain>" and the forms a resolver with the pod's search path would
// complete to it. `relative` ends in the namespace ("web.ns", "w-0.job.ns").
std::vector<std::string> NamesFor(const std::string& relative, const std::string& name_namespace,
                                  const std::string& self_namespace, const std::string& domain) {
  std::vector<std::string> names = {relative + ".svc." + domain, relative + ".svc", relative};
  if (name_namespace == self_namespace) {
    names.push_back(relative.substr(0, relative.size() - name_namespace.size() - 1));
  }
  return names;
}

}  // namespace

PodRecord PodRecordFromObject(const json& pod) {
  PodRecord record;
  const json& metadata = Field(pod, "metadata");
  const json& spec = Field(pod, "spec");
  const json& status = Field(pod, "status");
  record.namespace_name = StringField(metadata, "namespace");
  record.name = StringField(metadata, "name");
  record.hostname = PodHostname(pod);
  record.subdomain = StringField(spec, "subdomain");
  record.ip = StringField(status, "podIP");
  record.labels = StringMap(Field(metadata, "labels"));
  std::string phase = StringField(status, "phase");
  record.terminated = phase == "Succeeded" || phase == "Failed" || metadata.contains("deletionTimestamp");
  for (const json& condition : ListField(status, "conditions")) {
    if (StringField(condition, "type") == "Ready") record.ready = StringField(condition, "status") == "True";
  }
  return record;
}

ServiceRecord ServiceRecordFromObject(const json& service) {
  ServiceRecord record;
  const json& metadata = Field(service, "metadata");
  const json& spec = Field(service, "spec");
  record.namespace_name = StringField(metadata, "namespace");
  record.name = StringField(metadata, "name");
  record.selector = StringMap(Field(spec, "selector"));
  record.publish_not_ready_addresses = BoolField(spec, "publishNotReadyAddresses");
  return record;
}

std::string HostsFileFor(const PodRecord& self, const std::vector<PodRecord>& pods,
                         const std::vector<ServiceRecord>& services, const std::string& domain) {
  // address -> names, in a stable order so an unchanged cluster gives an unchanged file.
  std::map<std::string, std::vector<std::string>> lines;
  auto add = [&lines](const std::string& ip, std::vector<std::string> names) {
    std::vector<std::string>& line = lines[ip];
    for (std::string& name : names) {
      if (std::find(line.begin(), line.end(), name) == line.end()) line.push_back(std::move(name));
    }
  };

  // The pod's own names, as the kubelet writes them into its managed /etc/hosts.
  if (!self.subdomain.empty()) {
    std::string relative = self.hostname + "." + self.subdomain + "." + self.namespace_name;
    add(self.ip, NamesFor(relative, self.namespace_name, self.namespace_name, domain));
  }
  add(self.ip, {self.hostname});

  for (const ServiceRecord& service : services) {
    std::string service_relative = service.name + "." + service.namespace_name;
    for (const PodRecord& pod : pods) {
      if (!IsEndpoint(service, pod)) continue;
      add(pod.ip, NamesFor(service_relative, service.namespace_name, self.namespace_name, domain));
      if (pod.subdomain == service.name && !pod.hostname.empty()) {
        add(pod.ip, NamesFor(pod.hostname + "." + service_relative, service.namespace_name,
                             self.namespace_name, domain));
      }
    }
  }

  std::string text =
      "# Kubernetes-managed hosts file (written by mlscale-test-node).\n"
      "127.0.0.1\tlocalhost\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const auto& [ip, names] : lines) {
    text += ip + "\t";
    for (size_t i = 0; i < names.size(); ++i) text += (i ? " " : "") + names[i];
    text += "\n";
  }
  return text;
}

}  // namespace mlscale::nodeagent
