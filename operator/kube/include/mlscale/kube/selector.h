// Label selectors, as the API server understands them: parsed from the query-string
// form ("app=web,tier!=db,env in (prod,staging),!canary,gpu") or from a
// metav1.LabelSelector object (matchLabels + matchExpressions), and matched against an
// object's labels. Used by the cache reader (reader.h) so that a controller lists from
// its cache exactly what a live list with the same selector would return.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/kube/resource.h"

namespace mlscale::kube {

class LabelSelector {
 public:
  enum class Operator { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist, kGreaterThan, kLessThan };
  struct Requirement {
    std::string key;
    Operator op = Operator::kEquals;
    std::vector<std::string> values;  // one for =, !=, >, <; one or more for in/notin; none for exists
  };

  // The empty selector: matches every object.
  LabelSelector() = default;
  // Parses the query-string form. Errors say what is wrong and where ("tier in (a:
  // missing ')' at 9"); keys and values are checked as the API server checks them.
  static StatusOr<LabelSelector> Parse(std::string_view text);
  // From a metav1.LabelSelector ({"matchLabels": {...}, "matchExpressions": [...]});
  // `field` names it in errors ("spec.selector"). An empty object matches everything.
  static StatusOr<LabelSelector> FromObject(const Object& selector, std::string_view field = "selector");
  // Every label in `labels` as an equality requirement.
  static LabelSelector FromLabels(const std::map<std::string, std::string>& labels);

  // True when every requirement holds for `labels` (a JSON object of strings; anything
  // else counts as no labels). != and notin hold when the key is absent, as upstream.
  bool Matches(const Object& labels) const;
  // Matches(object.metadata.labels).
  bool MatchesObject(const Object& object) const;
  bool Empty() const { return requirements_.empty(); }
  const std::vector<Requirement>& requirements() const { return requirements_; }
  // The query-string form, accepted by Parse and by the API server's labelSelector.
  std::string ToString() const;

 private:
  std::vector<Requirement> requirements_;
};

}  // namespace mlscale::kube
