// Which model-server pods can take requests, per revision, as EndpointSlices
// (discovery.k8s.io/v1) describe them. Pure: JSON in, sets out; the watch that feeds it
// lives in kube_source.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"

namespace mlscale::router {

// Labels the router reads on an EndpointSlice.
inline constexpr const char* kRevisionLabel = "mlscale.io/revision";
inline constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";

struct EndpointAddress {
  std::string ip;  // IPv4 or IPv6 literal
  uint16_t port = 0;
  // "10.0.0.1:8080" or "[fd00::1]:8080".
  std::string ToString() const;
  auto operator<=>(const EndpointAddress&) const = default;
};

// One address of a slice with its conditions (the API's nil `ready`/`serving` read as
// true, nil `terminating` as false, as the API documents).
struct SliceEndpoint {
  EndpointAddress address;
  bool ready = true;
  bool serving = true;
  bool terminating = false;
};

struct ParsedSlice {
  std::string name;      // metadata.name
  std::string revision;  // label mlscale.io/revision, else kubernetes.io/service-name
  std::vector<SliceEndpoint> endpoints;
};

// Reads an EndpointSlice. The port is the one named `port_name` when given and present,
// else the slice's first TCP port. Slices of addressType FQDN, without a port, or without
// a revision are errors (InvalidArgument naming the field); malformed addresses are
// skipped, not fatal, so one bad entry cannot hide the others.
StatusOr<ParsedSlice> ParseEndpointSlice(const nlohmann::json& slice, const std::string& port_name = "");

// What a revision can be sent to now.
struct RevisionEndpoints {
  std::vector<EndpointAddress> ready;  // conditions.ready
  // Terminating pods still serving: used only while `ready` is empty, so that requests
  // are not held while a revision's last pods drain (as kube-proxy does).
  std::vector<EndpointAddress> serving_terminating;
  bool operator==(const RevisionEndpoints&) const = default;
};

// The union of every slice of an InferenceService, by revision. An address in several
// slices (a pod moving between slices) counts once, ready if any slice says so.
class EndpointTable {
 public:
  void Upsert(ParsedSlice slice);  // replaces the slice of the same name
  void Remove(const std::string& slice_name);
  // Revision -> endpoints, sorted; revisions whose slices list no address are present
  // with empty lists.
  std::map<std::string, RevisionEndpoints> Revisions() const;

 private:
  std::map<std::string, ParsedSlice> slices_;
};

}  // namespace mlscale::router
