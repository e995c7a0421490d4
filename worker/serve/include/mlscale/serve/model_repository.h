// The models mlscale-serve serves and the version of each it serves now.
//
// Layout (as Triton's and KServe's model repositories):
//   <repository>/<model>/<version>/{model.json,weights.bin}   versions are numbered folders
// A model may also be given by path (--model name=PATH): PATH is laid out like <model>
// above, or is itself an artifact folder (served as version 1).
//
// The newest version that loads is served, unless a version is pinned. A corrupt, truncated
// or mismatched artifact is refused with its reason (model status, log, a metric); a model
// serving a version keeps serving it when a newer one is refused; a model with no loadable
// version is not ready, and every other model keeps serving. Refresh() (called periodically)
// picks up new models and versions: the new version is loaded beside the old one and swapped
// in atomically; requests holding the old one finish on it, so none is dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/serve/batcher.h"
#include "mlscale/serve/inference_model.h"
#include "mlscale/serve/metrics.h"

namespace mlscale::serve {

struct ModelSource {
  std::string name;
  std::string path;
};

struct RepositoryOptions {
  std::string repository;              // folder of model folders; empty: none
  std::vector<ModelSource> models;     // models given by path
  std::map<std::string, int64_t> pinned_versions;       // model -> version to serve
  BatchingOptions batching;                             // for every model...
  std::map<std::string, BatchingOptions> model_batching;  // ...unless given here
};

// One version in service. Shared by the requests using it; the batcher (when batching is
// on) stops after answering its queue when the last holder lets go.
struct ServedModel {
  std::string name;
  int64_t version = 0;
  std::string version_text;
  std::shared_ptr<const InferenceModel> model;
  std::unique_ptr<Batcher> batcher;  // null without batching
  ModelMetrics* metrics = nullptr;   // owned by ServeMetrics
};

struct ModelStatus {
  std::string name;
  int64_t serving_version = -1;       // -1: not ready
  std::vector<int64_t> versions_found;
  std::string error;                  // why the newest (or pinned) version is not served; empty if it is
};

class ModelRepository {
 public:
  // `metrics` must outlive the repository; `log` receives one line per load and refusal.
  ModelRepository(RepositoryOptions options, ServeMetrics& metrics, std::function<void(const std::string&)> log);

  // Errors: InvalidArgument when the options name no model source at all, or a pinned or
  // batched model that does not exist after the first Refresh().
  Status CheckOptions() const;

  // Rescans the sources and loads what is new (outside the lock: requests keep flowing).
  void Refresh();

  // The version serving `name`, or exactly `version` when >= 0. Errors: NotFound (unknown
  // model; or that version is not the one served), Unavailable (no loadable version; the
  // message says why).
  StatusOr<std::shared_ptr<const ServedModel>> Find(const std::string& name, int64_t version) const;

  std::vector<ModelStatus> Statuses() const;
  // True when there is at least one model and every model serves a version.
  bool AllReady() const;

 private:
  struct FileSignature {
    int64_t json_mtime = 0, json_size = -1, weights_mtime = 0, weights_size = -1;
    bool operator==(const FileSignature&) const = default;
  };
  struct Entry {
    std::shared_ptr<const ServedModel> serving;
    FileSignature serving_signature;
    std::map<int64_t, std::pair<FileSignature, std::string>> refused;  // version -> (files when refused, why)
    ModelStatus status;
    ModelMetrics* metrics = nullptr;
  };
  std::vector<ModelSource> Sources() const;
  void RefreshModel(const ModelSource& source);
  BatchingOptions BatchingFor(const std::string& name) const;

  const RepositoryOptions options_;
  ServeMetrics& metrics_;
  const std::function<void(const std::string&)> log_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
  std::mutex refresh_mutex_;  // one Refresh at a time
};

}  // namespace mlscale::serve
