#include "corpus.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

namespace mlscale::api::testing {

std::vector<CorpusCase> ReadCorpus(const std::filesystem::path& folder) {
  std::vector<CorpusCase> cases;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() != ".yaml") continue;
    CorpusCase c;
    c.name = entry.path().stem().string();
    c.path = entry.path();
    std::ifstream in(entry.path(), std::ios::binary);
    bool has_verdict = false;
    for (std::string line; std::getline(in, line) && line.starts_with("# ");) {
      auto value = [&](std::string_view key) { return line.substr(key.size()); };
      if (line.starts_with("# verdict: ")) {
        c.valid = value("# verdict: ") == "valid";
        has_verdict = true;
      } else if (line.starts_with("# field: ")) {
        c.field = value("# field: ");
      } else if (line.starts_with("# kubectl-says: ")) {
        c.kubectl_says = value("# kubectl-says: ");
      } else if (line.starts_with("# api-server-differs: ")) {
        c.api_server_differs = value("# api-server-differs: ");
      }
    }
    EXPECT_TRUE(has_verdict) << entry.path() << " has no '# verdict:' line";
    EXPECT_TRUE(c.valid || !c.field.empty()) << entry.path() << ": an invalid case names the field";
    cases.push_back(std::move(c));
  }
  std::sort(cases.begin(), cases.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return cases;
}

}  // namespace mlscale::api::testing
