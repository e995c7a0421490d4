// Choosing one model-server pod of a revision: least outstanding requests by the power of
// two random choices (as Envoy's LEAST_REQUEST): two distinct candidates drawn at random,
// the one with fewer requests in flight wins, a tie is decided at random. It needs no
// global scan or lock, and unlike a strict minimum it does not send every router's next
// request to the same idle pod.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <span>

#include "mlscale/router/endpoints.h"

namespace mlscale::router {

// A pod as the router sees it; shared by every request in flight to it.
struct Upstream {
  explicit Upstream(EndpointAddress where) : address(std::move(where)) {}
  const EndpointAddress address;
  std::atomic<int64_t> outstanding{0};  // requests sent and not yet answered
};
using UpstreamPtr = std::shared_ptr<Upstream>;

// Picks from `candidates` those for which `eligible` (may be empty: all) holds; nullptr
// when none is. With one eligible candidate it is chosen; with two or more, two distinct
// ones are drawn uniformly and the one with fewer outstanding requests wins (ties: either,
// at random).
template <typename Eligible>
UpstreamPtr PickLeastOutstanding(std::span<const UpstreamPtr> candidates, const Eligible& eligible,
                                 std::mt19937_64& random) {
  // Indices of eligible candidates, on the stack for the usual small revision.
  size_t stack_indices[64];
  std::unique_ptr<size_t[]> heap_indices;
  size_t* indices = stack_indices;
  if (candidates.size() > 64) {
    heap_indices = std::make_unique<size_t[]>(candidates.size());
    indices = heap_indices.get();
  }
  size_t count = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (eligible(*candidates[i])) indices[count++] = i;
  }
  if (count == 0) return nullptr;
  if (count == 1) return candidates[indices[0]];
  std::uniform_int_distribution<size_t> first_draw(0, count - 1), second_draw(0, count - 2);
  size_t a = first_draw(random);
  size_t b = second_draw(random);
  if (b >= a) ++b;  // distinct from a, uniform over the rest
  const auto& x = candidates[indices[a]];
  const auto& y = candidates[indices[b]];
  const int64_t ox = x->outstanding.load(std::memory_order_relaxed);
  const int64_t oy = y->outstanding.load(std::memory_order_relaxed);
  if (ox != oy) return ox < oy ? x : y;
  return (random() & 1) ? x : y;
}

}  // namespace mlscale::router
