// Recording Kubernetes Events on the object they are about, as client-go's recorder
// does: Record() never blocks and never fails the caller. It puts the event on a
// bounded queue that one thread of the recorder writes to the API server; repeats of
// the same event (same object, type, reason and message) are aggregated into one Event
// whose count and lastTimestamp grow (firstTimestamp stays), like EventCorrelator;
// similar events (same object, type and reason, different messages) are aggregated too:
// from the 10th distinct message within 10 minutes on, they are written as one Event
// "(combined from similar events): <latest message>" whose count grows (client-go's
// EventAggregator, with its defaults); each
// object may record a burst of events, then one per refill period (client-go's spam
// filter: 25, then one per 5 minutes). What cannot be queued or is rate limited is
// dropped and counted (mlscale_kube_events_dropped_total{reason}); write errors are logged.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <set>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "mlscale/kube/client.h"
#include "mlscale/kube/metrics.h"

namespace mlscale::kube {

// client-go's EventAggregator, without I/O (so it is unit-tested with a clock of its
// own): events with the same similarity key (object, type, reason; the source is the
// recorder's) but other messages are counted per key; once `max_events` distinct
// messages were seen with no gap longer than `max_interval`, each further one is
// combined.
class SimilarEventAggregator {
 public:
  static constexpr const char* kCombinedPrefix = "(combined from similar events): ";
  struct Options {
    size_t max_events = 10;
    std::chrono::milliseconds max_interval{600'000};
  };
  struct Result {
    bool combined = false;  // when true, `message` is the combined message
    std::string message;
  };
  explicit SimilarEventAggregator(Options options) : options_(options) {}
  Result Aggregate(const std::string& similar_key, const std::string& message,
                   std::chrono::steady_clock::time_point now);

 private:
  struct Record {
    std::set<std::string> messages;  // at most max_events - 1 kept
    std::chrono::steady_clock::time_point last;
  };
  Options options_;
  std::unordered_map<std::string, Record> records_;
};

struct EventRecorderOptions {
  size_t queue_size = 1000;  // distinct events waiting to be written
  int per_object_burst = 25;
  std::chrono::milliseconds per_object_refill{300'000};  // one more event per object this often
  std::chrono::milliseconds flush_on_destroy{5'000};     // how long the destructor writes what is queued
  SimilarEventAggregator::Options similar{};              // when similar events are combined
};

class EventRecorder {
 public:
  // `component` appears as the event's source (e.g. "mlscale-operator"). `client` and
  // `metrics` (optional) must outlive the recorder.
  EventRecorder(Client& client, std::string component, EventRecorderOptions options = {},
                Metrics* metrics = nullptr);
  // Writes what is queued (for up to options.flush_on_destroy), then stops the writer
  // (a write in flight is cancelled).
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  void Normal(const Object& involved, const std::string& reason, const std::string& message) {
    Record(involved, "Normal", reason, message);
  }
  void Warning(const Object& involved, const std::string& reason, const std::string& message) {
    Record(involved, "Warning", reason, message);
  }
  void Record(const Object& involved, const std::string& type, const std::string& reason,
              const std::string& message);
  // Waits until everything recorded so far has been written (or `timeout`); true when so.
  bool Flush(std::chrono::milliseconds timeout);

 private:
  struct Pending {
    Object involved;  // the object reference
    std::string namespace_name;
    std::string type, reason, message;
    int count = 0;  // occurrences not yet written
    std::string first_timestamp, last_timestamp;
  };
  struct Written {
    std::string name;
    int count = 0;
  };
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled;
  };
  bool AllowLocked(const std::string& uid);
  void Drop(const char* reason);
  void Run(std::stop_token stop);
  void Write(const std::string& key, Pending pending, std::stop_token stop);

  Client& client_;
  std::string component_;
  EventRecorderOptions options_;
  Metrics* metrics_;
  std::mutex mutex_;
  std::condition_variable_any changed_;
  std::deque<std::string> order_;                      // keys of pending_, oldest first
  std::unordered_map<std::string, Pending> pending_;   // aggregation key -> not yet written
  std::unordered_map<std::string, Bucket> buckets_;    // object uid -> its rate limit
  std::map<std::string, Written> written_;             // aggregation key -> the Event written (writer thread only)
  SimilarEventAggregator similar_;                     // guarded by mutex_
  bool writing_ = false;
  std::jthread writer_;  // last: started after everything it uses
};

}  // namespace mlscale::kube
