#include "mlscale/router/endpoints.h"

#include <set>

#include <boost/asio/ip/address.hpp>

namespace mlscale::router {

std::string EndpointAddress::ToString() const {
  const bool v6 = ip.find(':') != std::string::npos;
  return (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

namespace {

bool BoolOr(const nlohmann::json& object, const char* field, bool fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(field);
  return it != object.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

std::string LabelOf(const nlohmann::json& slice, const char* key) {
  const auto* labels = slice.contains("metadata") && slice["metadata"].is_object() &&
                               slice["metadata"].contains("labels") && slice["metadata"]["labels"].is_object()
                           ? &slice["metadata"]["labels"]
                           : nullptr;
  if (labels == nullptr) return "";
  auto it = labels->find(key);
  return it != labels->end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

StatusOr<ParsedSlice> ParseEndpointSlice(const nlohmann::json& slice, const std::string& port_name) {
  if (!slice.is_object()) return InvalidArgument("EndpointSlice: not an object");
  ParsedSlice parsed;
  if (slice.contains("metadata") && slice["metadata"].is_object() && slice["metadata"].contains("name") &&
      slice["metadata"]["name"].is_string()) {
    parsed.name = slice["metadata"]["name"].get<std::string>();
  }
  if (parsed.name.empty()) return InvalidArgument("EndpointSlice: metadata.name missing");
  const std::string context = "EndpointSlice " + parsed.name + ": ";
  parsed.revision = LabelOf(slice, kRevisionLabel);
  if (parsed.revision.empty()) parsed.revision = LabelOf(slice, kServiceNameLabel);
  if (parsed.revision.empty()) {
    return InvalidArgument(context + "metadata.labels: neither " + kRevisionLabel + " nor " + kServiceNameLabel);
  }
  auto type = slice.find("addressType");
  if (type == slice.end() || !type->is_string() || (*type != "IPv4" && *type != "IPv6")) {
    return InvalidArgument(context + "addressType: must be IPv4 or IPv6");
  }

  int64_t port = -1;
  auto ports = slice.find("ports");
  if (ports != slice.end() && ports->is_array()) {
    for (const auto& entry : *ports) {
      if (!entry.is_object() || !entry.contains("port") || !entry["port"].is_number_integer()) continue;
      const std::string protocol = entry.value("protocol", std::string("TCP"));
      if (protocol != "TCP") continue;
      const std::string name = entry.contains("name") && entry["name"].is_string() ? entry["name"].get<std::string>() : "";
      if (!port_name.empty() && name == port_name) {
        port = entry["port"].get<int64_t>();
        break;
      }
      if (port < 0) port = entry["port"].get<int64_t>();
    }
  }
  if (port < 1 || port > 65535) return InvalidArgument(context + "ports: no TCP port in 1..65535");

  auto endpoints = slice.find("endpoints");
  if (endpoints == slice.end() || endpoints->is_null()) return parsed;  // no addresses yet
  if (!endpoints->is_array()) return InvalidArgument(context + "endpoints: not a list");
  for (const auto& entry : *endpoints) {
    if (!entry.is_object() || !entry.contains("addresses") || !entry["addresses"].is_array()) continue;
    const auto& conditions = entry.contains("conditions") ? entry["conditions"] : nlohmann::json();
    SliceEndpoint endpoint;
    endpoint.ready = BoolOr(conditions, "ready", true);
    endpoint.serving = BoolOr(conditions, "serving", endpoint.ready);
    endpoint.terminating = BoolOr(conditions, "terminating", false);
    // The API allows several addresses per endpoint but consumers use the first (one pod).
    const auto& address = entry["addresses"].empty() ? nlohmann::json() : entry["addresses"][0];
    if (!address.is_string()) continue;
    boost::system::error_code ec;
    auto ip = boost::asio::ip::make_address(address.get<std::string>(), ec);
    if (ec || ip.is_v6() != (*type == "IPv6")) continue;
    endpoint.address = {ip.to_string(), uint16_t(port)};
    parsed.endpoints.push_back(std::move(endpoint));
  }
  return parsed;
}

void EndpointTable::Upsert(ParsedSlice slice) {
  std::string name = slice.name;
  slices_[name] = std::move(slice);
}

void EndpointTable::Remove(const std::string& slice_name) { slices_.erase(slice_name); }

std::map<std::string, RevisionEndpoints> EndpointTable::Revisions() const {
  std::map<std::string, std::set<EndpointAddress>> ready, draining;
  std::map<std::string, RevisionEndpoints> result;
  for (const auto& [name, slice] : slices_) {
    result[slice.revision];
    for (const auto& endpoint : slice.endpoints) {
      if (endpoint.ready && !endpoint.terminating) {
        ready[slice.revision].insert(endpoint.address);
      } else if (endpoint.serving && endpoint.terminating) {
        draining[slice.revision].insert(endpoint.address);
      }
    }
  }
  for (auto& [revision, endpoints] : result) {
    const auto& ready_set = ready[revision];
    endpoints.ready.assign(ready_set.begin(), ready_set.end());
    for (const auto& address : draining[revision]) {
      if (!ready_set.count(address)) endpoints.serving_terminating.push_back(address);
    }
  }
  return result;
}

}  // namespace mlscale::router
