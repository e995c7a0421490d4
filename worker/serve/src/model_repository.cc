#include "mlscale/serve/model_repository.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>

namespace mlscale::serve {
namespace {

namespace fs = std::filesystem;

bool IsVersionName(const std::string& name) {
  return !name.empty() && name.size() <= 18 && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Folder names that can be models: what a URL path segment and a metric label carry as is.
bool IsModelName(const std::string& name) {
  if (name.empty() || name.size() > 128 || name[0] == '.' || name[0] == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
  });
}

// version -> artifact folder. A folder holding model.json itself is version 1.
std::map<int64_t, std::string> ListVersions(const std::string& path) {
  std::map<int64_t, std::string> versions;
  std::error_code error;
  if (fs::exists(fs::path(path) / "model.json", error)) {
    versions[1] = path;
    return versions;
  }
  for (const auto& child : fs::directory_iterator(path, error)) {
    const std::string name = child.path().filename().string();
    if (child.is_directory(error) && IsVersionName(name)) versions[std::stoll(name)] = child.path().string();
  }
  return versions;
}

}  // namespace

ModelRepository::ModelRepository(RepositoryOptions options, ServeMetrics& metrics,
                                 std::function<void(const std::string&)> log)
    : options_(std::move(options)), metrics_(metrics), log_(std::move(log)) {}

Status ModelRepository::CheckOptions() const {
  if (options_.repository.empty() && options_.models.empty()) {
    return InvalidArgument("no models: give --model-repository DIR or --model NAME=PATH");
  }
  std::error_code error;
  if (!options_.repository.empty() && !fs::is_directory(options_.repository, error)) {
    return InvalidArgument("--model-repository: '" + options_.repository + "' is not a folder");
  }
  for (const auto& model : options_.models) {
    if (!IsModelName(model.name)) {
      return InvalidArgument("--model: '" + model.name + "' is not a model name (letters, digits, '_', '-', '.')");
    }
    if (!fs::is_directory(model.path, error)) return InvalidArgument("--model " + model.name + ": '" + model.path + "' is not a folder");
  }
  std::lock_guard lock(mutex_);
  for (const auto& [name, version] : options_.pinned_versions) {
    if (!entries_.count(name)) return InvalidArgument("--pin " + name + "=" + std::to_string(version) + ": no such model");
  }
  for (const auto& [name, batching] : options_.model_batching) {
    if (!entries_.count(name)) return InvalidArgument("--model-batching " + name + ": no such model");
  }
  return Status::Ok();
}

std::vector<ModelSource> ModelRepository::Sources() const {
  std::vector<ModelSource> sources = options_.models;
  std::set<std::string> named;
  for (const auto& s : sources) named.insert(s.name);
  if (!options_.repository.empty()) {
    std::error_code error;
    for (const auto& child : fs::directory_iterator(options_.repository, error)) {
      const std::string name = child.path().filename().string();
      if (child.is_directory(error) && IsModelName(name) && !named.count(name)) sources.push_back({name, child.path().string()});
    }
  }
  return sources;
}

BatchingOptions ModelRepository::BatchingFor(const std::string& name) const {
  auto it = options_.model_batching.find(name);
  return it == options_.model_batching.end() ? options_.batching : it->second;
}

void ModelRepository::Refresh() {
  std::lock_guard refreshing(refresh_mutex_);
  const auto sources = Sources();
  std::set<std::string> present;
  for (const auto& source : sources) {
    present.insert(source.name);
    RefreshModel(source);
  }
  std::vector<Entry> retired;  // released after the lock
  std::lock_guard lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (present.count(it->first)) {
      ++it;
      continue;
    }
    log_("model " + it->first + ": its folder is gone; no longer served");
    it->second.metrics->ready_version = -1;
    retired.push_back(std::move(it->second));
    it = entries_.erase(it);
  }
}

void ModelRepository::RefreshModel(const ModelSource& source) {
  const auto versions = ListVersions(source.path);
  auto signature_of = [](const std::string& dir) {
    FileSignature s;
    struct stat info {};
    if (::stat((fs::path(dir) / "model.json").c_str(), &info) == 0) {
      s.json_mtime = int64_t(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec;
      s.json_size = int64_t(info.st_size);
    }
    if (::stat((fs::path(dir) / "weights.bin").c_str(), &info) == 0) {
      s.weights_mtime = int64_t(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec;
      s.weights_size = int64_t(info.st_size);
    }
    return s;
  };

  // Versions taken out of service are released after the lock (a batcher answers its queue
  // as it stops).
  std::vector<std::shared_ptr<const ServedModel>> retired;
  std::unique_lock lock(mutex_);
  Entry& entry = entries_[source.name];
  if (entry.metrics == nullptr) entry.metrics = &metrics_.ForModel(source.name);
  entry.status.name = source.name;
  entry.status.versions_found.clear();
  for (const auto& [version, dir] : versions) entry.status.versions_found.push_back(version);
  if (entry.serving && !versions.count(entry.serving->version)) {
    log_("model " + source.name + ": version " + entry.serving->version_text + " is gone; no longer served");
    retired.push_back(std::move(entry.serving));
    entry.status.serving_version = -1;
    entry.metrics->ready_version = -1;
  }

  std::vector<int64_t> candidates;
  auto pinned = options_.pinned_versions.find(source.name);
  if (pinned != options_.pinned_versions.end()) {
    if (versions.count(pinned->second)) candidates.push_back(pinned->second);
  } else {
    for (auto it = versions.rbegin(); it != versions.rend(); ++it) candidates.push_back(it->first);
  }
  std::string error;
  if (versions.empty()) {
    error = "no artifact in '" + source.path + "' (numbered version folders holding model.json and weights.bin)";
  } else if (candidates.empty()) {
    error = "pinned version " + std::to_string(pinned->second) + " not found in '" + source.path + "'";
  }
  for (int64_t version : candidates) {
    const std::string& dir = versions.at(version);
    const FileSignature signature = signature_of(dir);
    if (entry.serving && entry.serving->version == version && entry.serving_signature == signature) break;
    if (auto refused = entry.refused.find(version); refused != entry.refused.end() && refused->second.first == signature) {
      if (error.empty()) error = refused->second.second;
      continue;  // refused before and unchanged since
    }
    lock.unlock();  // loading reads and hashes the weights: let requests flow meanwhile
    auto loaded = InferenceModel::Load(dir);
    lock.lock();
    Entry& current = entries_[source.name];  // the reference stays valid: only Refresh erases, and we hold refresh_mutex_
    if (!loaded.ok()) {
      const std::string reason = "version " + std::to_string(version) + " refused: " + loaded.status().ToString();
      current.refused[version] = {signature, reason};
      current.metrics->load_failures.fetch_add(1);
      log_("model " + source.name + ": " + reason);
      if (error.empty()) error = reason;
      continue;
    }
    auto served = std::make_shared<ServedModel>();
    served->name = source.name;
    served->version = version;
    served->version_text = std::to_string(version);
    served->model = std::move(loaded).value();
    served->metrics = current.metrics;
    const BatchingOptions batching = BatchingFor(source.name);
    if (batching.enabled()) served->batcher = std::make_unique<Batcher>(served->model, batching, *current.metrics);
    const bool replacing = current.serving != nullptr;
    const std::string previous = replacing ? current.serving->version_text : "";
    retired.push_back(std::move(current.serving));
    current.serving = std::move(served);
    current.serving_signature = signature;
    current.refused.erase(version);
    current.status.serving_version = version;
    current.metrics->ready_version = version;
    log_("model " + source.name + ": serving version " + std::to_string(version) +
         (replacing ? " (was " + previous + ")" : "") + " from " + dir);
    break;
  }
  entry.status.error = error;
}

StatusOr<std::shared_ptr<const ServedModel>> ModelRepository::Find(const std::string& name, int64_t version) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return NotFound("model '" + name + "' not found");
  const Entry& entry = it->second;
  if (!entry.serving) {
    return Unavailable("model '" + name + "' is not ready: " +
                       (entry.status.error.empty() ? std::string("not loaded yet") : entry.status.error));
  }
  if (version >= 0 && version != entry.serving->version) {
    return NotFound("model '" + name + "' version " + std::to_string(version) + " is not served (serving version " +
                    entry.serving->version_text + ")");
  }
  return entry.serving;
}

std::vector<ModelStatus> ModelRepository::Statuses() const {
  std::lock_guard lock(mutex_);
  std::vector<ModelStatus> statuses;
  for (const auto& [name, entry] : entries_) statuses.push_back(entry.status);
  return statuses;
}

bool ModelRepository::AllReady() const {
  std::lock_guard lock(mutex_);
  if (entries_.empty()) return false;
  return std::all_of(entries_.begin(), entries_.end(), [](const auto& e) { return e.second.serving != nullptr; });
}

}  // namespace mlscale::serve
