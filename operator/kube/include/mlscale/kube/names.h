// Names of the objects a controller creates for an owner.
#pragma once

#include <string>
#include <string_view>

namespace mlscale::kube {

// Pod hostnames and label values are DNS-1123 labels: at most 63 characters of
// [a-z0-9-], beginning and ending alphanumeric. Service names are DNS-1035 labels: the
// same, beginning with a letter.
inline constexpr size_t kMaxLabelLength = 63;

// The child name "<base>-<suffix>" (e.g. ChildName("train", "worker-3") =
// "train-worker-3") as a DNS-1035 label (so it may name a Service as well as a pod). When that is longer than 63 characters, `base`
// is cut and a 8-hex-digit hash of the whole untruncated name is inserted before the
// suffix ("<base prefix>-<hash>-<suffix>"), so names stay distinct and the suffix (a
// rank, a role) stays readable. Characters a label cannot hold ('.', upper case) are
// mapped to '-' / lower case; a name that would begin with a digit gets an 'x' in
// front and the hash ("1job" -> "x1job-<hash>-worker"). Deterministic: the same inputs give the same name, so a
// controller finds its children again. `suffix` must itself be a short label (<= 40).
std::string ChildName(std::string_view base, std::string_view suffix);

// True when `name` is a DNS-1123 label.
bool IsDnsLabel(std::string_view name);
// True when `name` is a DNS-1035 label (a DNS-1123 label beginning with a letter).
bool IsDns1035Label(std::string_view name);

}  // namespace mlscale::kube
