// Cluster DNS without a DNS server: the names a pod would resolve through CoreDNS,
// written as a hosts file that the agent bind-mounts over the pod's /etc/hosts.
// Pure: records in, file text out.
//
// Names served, as Kubernetes' DNS specification defines them:
//   <hostname>.<subdomain>.<ns>.svc.<domain>   a pod with spec.subdomain, when a headless
//                                              Service of that name in its namespace
//                                              selects it and lists it as an endpoint
//   <service>.<ns>.svc.<domain>                a Service with a selector: the addresses
//                                              of the pods it lists as endpoints (the
//                                              agent has no service proxy, so ClusterIP
//                                              services also resolve to pod addresses and
//                                              ports are not translated)
//   the pod's own hostname (and FQDN)          always, to its own address
// plus the shorter forms the pod's resolv.conf search path (<ns>.svc.<domain>,
// svc.<domain>, <domain>) would expand, since a hosts file has no search path.
// A pod is listed as an endpoint when it has an address, is not terminated and is
// Ready, or the Service sets publishNotReadyAddresses.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mlscale::nodeagent {

struct PodRecord {
  std::string namespace_name;
  std::string name;
  std::string hostname;
  std::string subdomain;
  std::string ip;       // "" until the pod has an address
  bool ready = false;   // the Ready condition is True
  bool terminated = false;  // phase Succeeded or Failed, or being deleted
  std::map<std::string, std::string> labels;
  bool operator==(const PodRecord&) const = default;
};

struct ServiceRecord {
  std::string namespace_name;
  std::string name;
  std::map<std::string, std::string> selector;  // empty: no endpoints are derived
  bool publish_not_ready_addresses = false;
  bool operator==(const ServiceRecord&) const = default;
};

PodRecord PodRecordFromObject(const nlohmann::json& pod);
ServiceRecord ServiceRecordFromObject(const nlohmann::json& service);

// The hosts file for `self` (whose ip must be set) given everything known in the cluster.
std::string HostsFileFor(const PodRecord& self, const std::vector<PodRecord>& pods,
                         const std::vector<ServiceRecord>& services,
                         const std::string& cluster_domain = "cluster.local");

}  // namespace mlscale::nodeagent
