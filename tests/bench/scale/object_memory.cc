// scale_object_memory: how many heap bytes one object takes in mlscale-operator's informer
// caches, to explain the operator's RSS in tests/bench/results/scale.md. For each JSON file
// (an object as `kubectl get -o json --show-managed-fields` prints it) it prints the bytes the
// parsed nlohmann::json holds (malloc_usable_size of every live allocation, so allocator
// rounding included), as parsed, without managedFields (every informer drops them), and for a
// Pod after kube::TrimPod (what the TrainingJob controller's pod cache keeps).
//   scale_object_memory FILE.json ...
#include <malloc.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <string>

#include <nlohmann/json.hpp>

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
  std::printf("| object | compact JSON bytes | parsed | without managedFields | TrimPod |\n|---|---|---|---|---|\n");
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
    std::printf("| %s %s | %zu | %lld | %lld | %s |\n", source.value("kind", "?").c_str(),
                source["metadata"].value("name", "?").c_str(), text.size(), parsed, stripped, trimmed.c_str());
  }
  return 0;
}
