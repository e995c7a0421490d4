// scale_object_memory: how many heap bytes one object takes in mlscale-operator's informer
// caches, to explain the operator's RSS in tests/bench/results/scale.md. For each JSON file
// (an object as `kubectl get -o json --show-managed-fields` prints it) it prints the bytes the
// parsed nlohmann::json holds (malloc_usable_size of every live allocation, so allocator
// rounding included), as parsed, without managedFields (every informer drops them), for a
// Pod after kube::TrimPod (what the pod cache kept until session 4), and what one entry of
// the TrainingJob controller's cache costs now: the object after that cache's transform
// (ProjectWorkerPod, KeepMetadataOnly, ProjectTokenSecret; a TrainingJob whole), packed
// (kube::InformerOptions::packed), with its index entries.
//   scale_object_memory FILE.json ...
#include <malloc.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <new>
#include <string>

#include <nlohmann/json.hpp>

#include "mlscale/controllers/trainingjob/children.h"
#include "mlscale/controllers/trainingjob/job_state.h"
#include "mlscale/kube/cache.h"
#include "mlscale/kube/informer.h"

namespace {
std::atomic<long long> live_bytes{0};
}  // namespace

void* operator new(std::size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  live_bytes += static_cast<long long>(malloc_usable_size(p));
  return p;
}
void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  live_bytes -= static_cast<long long>(malloc_usable_size(p));
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace {

// The heap bytes `make()` leaves behind while its result is alive.
template <typename Make>
long long Held(Make make) {
  const long long before = live_bytes.load();
  auto object = make();
  return live_bytes.load() - before;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: scale_object_memory FILE.json ...\n");
    return 2;
  }
  std::printf(
      "| object | compact JSON bytes | parsed | without managedFields | TrimPod | in the cache now (projected, packed, "
      "indexed; per entry of 1,000) |\n|---|---|---|---|---|---|\n");
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i]);
    const nlohmann::json source = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (source.is_discarded()) {
      std::fprintf(stderr, "scale_object_memory: %s is not JSON\n", argv[i]);
      return 2;
    }
    const std::string text = source.dump();
    const long long parsed = Held([&] { return nlohmann::json::parse(text); });
    const long long stripped = Held([&] {
      nlohmann::json copy = nlohmann::json::parse(text);
      copy["metadata"].erase("managedFields");
      return copy;
    });
    std::string trimmed = "-";
    if (source.value("kind", "") == "Pod") {
      trimmed = std::to_string(Held([&] {
        nlohmann::json copy = nlohmann::json::parse(text);
        mlscale::kube::TrimPod(copy);
        return copy;
      }));
    }
    const std::string kind = source.value("kind", "");
    auto cache_transform = [&kind](nlohmann::json& object) {
      namespace tj = mlscale::controllers::trainingjob;
      if (kind == "Pod") tj::ProjectWorkerPod(object);
      if (kind == "Service" || kind == "ConfigMap") mlscale::kube::KeepMetadataOnly(object);
      if (kind == "Secret") tj::ProjectTokenSecret(object);
    };
    using mlscale::kube::ObjectCache;
    const long long empty_cache = Held([] { return std::make_unique<ObjectCache>(ObjectCache::Storage::kPacked); });
    // Per entry of a cache of kCopies (names and uids vary; labels and owners are shared,
    // so index entries shared by many objects, as at scale, are counted once).
    constexpr int kCopies = 1000;
    const long long cached = (Held([&] {
                                auto cache = std::make_unique<ObjectCache>(ObjectCache::Storage::kPacked);
                                for (int copy_index = 0; copy_index < kCopies; ++copy_index) {
                                  nlohmann::json copy = nlohmann::json::parse(text);
                                  copy["metadata"].erase("managedFields");
                                  copy["metadata"]["name"] = copy["metadata"].value("name", "") + "-" + std::to_string(copy_index);
                                  copy["metadata"]["uid"] = copy["metadata"].value("uid", "") + std::to_string(copy_index);
                                  cache_transform(copy);
                                  cache->Upsert(std::make_shared<const nlohmann::json>(std::move(copy)));
                                }
                                return cache;
                              }) - empty_cache) / kCopies;
    std::printf("| %s %s | %zu | %lld | %lld | %s | %lld |\n", kind.c_str(), source["metadata"].value("name", "?").c_str(),
                text.size(), parsed, stripped, trimmed.c_str(), cached);
  }
  return 0;
}
