#include "mlscale/kube/names.h"

#include <algorithm>
#include <cctype>

#include "mlscale/common/hash.h"

namespace mlscale::kube {
namespace {

std::string Sanitized(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c)) out.push_back(static_cast<char>(std::tolower(c)));
    else out.push_back('-');
  }
  return out;
}

void TrimDashes(std::string& text) {
  while (!text.empty() && text.back() == '-') text.pop_back();
  size_t first = text.find_first_not_of('-');
  text.erase(0, first == std::string::npos ? text.size() : first);
}

}  // namespace

bool IsDns1035Label(std::string_view name) {
  return IsDnsLabel(name) && name.front() >= 'a' && name.front() <= 'z';
}

bool IsDnsLabel(std::string_view name) {
  if (name.empty() || name.size() > kMaxLabelLength) return false;
  auto alnum_lower = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum_lower(name.front()) || !alnum_lower(name.back())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return alnum_lower(c) || c == '-'; });
}

std::string ChildName(std::string_view base, std::string_view suffix) {
  std::string clean_suffix = Sanitized(suffix.substr(0, 40));
  TrimDashes(clean_suffix);
  std::string full = Sanitized(base);
  TrimDashes(full);
  std::string name = clean_suffix.empty() ? full : full.empty() ? clean_suffix : full + "-" + clean_suffix;
  if (name.size() <= kMaxLabelLength && IsDns1035Label(name) && Sanitized(base) == std::string(base) &&
      Sanitized(suffix) == std::string(suffix)) {
    return name;
  }
  // Too long, changed by sanitizing, or not starting with a letter: hash the caller's
  // original text so that two bases that sanitize alike ("a.b", "a-b") still get
  // different names.
  const std::string hash = HexDigits(Fnv1a32(std::string(base) + '\0' + std::string(suffix)), 8);
  const size_t tail = 1 + 8 + (clean_suffix.empty() ? 0 : 1 + clean_suffix.size());
  // A Service name must start with a letter (DNS-1035): a base starting with a digit
  // ("1job") gets a letter in front ("x1job-<hash>-worker"); the hash keeps it apart
  // from a job really named "x1job".
  const bool needs_letter = full.empty() || !(full.front() >= 'a' && full.front() <= 'z');
  std::string prefix = (needs_letter && !full.empty() ? "x" : "") + full;
  prefix = prefix.substr(0, kMaxLabelLength - tail);
  TrimDashes(prefix);
  // With no usable base the hash leads, so it must start with a letter too.
  std::string out = prefix.empty() ? "x" + hash.substr(0, 7) : prefix + "-" + hash;
  if (!clean_suffix.empty()) out += "-" + clean_suffix;
  return out;
}

}  // namespace mlscale::kube
