// Suggestions off the reconcile hot path. hpo::Suggest is deterministic for a given
// config, space, history and count, but a Gaussian process over hundreds of trials costs
// tens to hundreds of milliseconds, and a batch more: a reconcile worker must not wait for
// it. So a reconcile asks the Suggester for the answer to exactly its inputs; when that
// answer is ready it gets it at once, otherwise the request is queued (replacing an older
// request of the same sweep, whose history is stale anyway), the reconcile returns, and
// the Suggester calls `on_ready(key)` (which enqueues the sweep) once it has computed it.
// Because the answer is keyed by a fingerprint of the inputs, a result never applies to a
// history other than the one it was computed for. One thread computes, one request at a
// time, in arrival order. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/hpo/sampler.h"

namespace mlscale::controllers::sweep {

class Suggester {
 public:
  using Result = StatusOr<std::vector<hpo::Assignment>>;
  // `on_ready` runs on the Suggester's thread after each computation; `on_latency`
  // (may be empty) gets each computation's wall time in seconds.
  Suggester(std::function<void(const std::string& key)> on_ready, std::function<void(double seconds)> on_latency);
  ~Suggester();  // stops the thread (a computation in progress is finished first)
  Suggester(const Suggester&) = delete;
  Suggester& operator=(const Suggester&) = delete;

  // Suggest(config, space, history, count) for sweep `key` if computed already; nullopt
  // after queueing it otherwise. `history` is copied only when queued.
  std::optional<Result> Get(const std::string& key, const hpo::SamplerConfig& config, const hpo::SearchSpace& space,
                            const std::vector<hpo::Trial>& history, int count);
  // Drops the sweep's result and pending request (the sweep was deleted).
  void Forget(const std::string& key);

  // The fingerprint of Suggest's inputs (exposed for tests).
  static std::string Fingerprint(const hpo::SamplerConfig& config, const hpo::SearchSpace& space,
                                 const std::vector<hpo::Trial>& history, int count);

 private:
  struct Request {
    std::string fingerprint;
    hpo::SamplerConfig config;
    hpo::SearchSpace space;
    std::vector<hpo::Trial> history;
    int count = 0;
  };
  struct Entry {
    std::optional<Request> pending;  // waiting for the thread
    std::string computing;           // the fingerprint being computed ("" none)
    std::string done_fingerprint;
    std::optional<Result> done;
  };
  void Loop(std::stop_token stop);

  std::function<void(const std::string&)> on_ready_;
  std::function<void(double)> on_latency_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::map<std::string, Entry> entries_;
  std::deque<std::string> order_;  // keys with a pending request, oldest first
  std::jthread thread_;
};

}  // namespace mlscale::controllers::sweep
