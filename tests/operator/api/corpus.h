// The validation corpus (tests/operator/api/corpus): one manifest per file, each with
// its expected verdict in leading comment lines:
//   # verdict: valid | invalid
//   # field: spec.runPolicy.backoffLimit    (invalid: what every message must name)
//   # kubectl-says: no matches for kind     (optional: what the API server's message
//                                            contains instead, when it cannot name a field)
//   # api-server-differs: <why>             (optional: kubectl/the API server accepts what
//                                            we refuse, for the reason given; the test
//                                            checks that it still does)
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace mlscale::api::testing {

struct CorpusCase {
  std::string name;  // the file name without .yaml
  std::filesystem::path path;
  bool valid = false;
  std::string field;         // empty for valid cases
  std::string kubectl_says;  // empty: the API server's message names `field`
  std::string api_server_differs;  // why kubectl accepts this invalid case; empty: it refuses
};

// Every case of the corpus folder, sorted by name; fails the calling test (and returns
// what it read) on a file without a verdict.
std::vector<CorpusCase> ReadCorpus(const std::filesystem::path& folder);

}  // namespace mlscale::api::testing
