// Runs functions at given times on one thread of its own (the router's queue timeouts
// and retry rounds). Functions run in time order; those still pending at destruction do
// not run.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace mlscale::router {

class Scheduler {
 public:
  Scheduler() : thread_([this] { Run(); }) {}
  ~Scheduler() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  void RunAt(std::chrono::steady_clock::time_point when, std::function<void()> function) {
    {
      std::lock_guard lock(mutex_);
      pending_.emplace(when, std::move(function));
    }
    wake_.notify_all();
  }

 private:
  void Run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (pending_.empty()) {
        wake_.wait(lock);  // woken by RunAt or the destructor; the loop re-checks
        continue;
      }
      auto first = pending_.begin();
      if (first->first > std::chrono::steady_clock::now()) {
        wake_.wait_until(lock, first->first);  // an earlier entry or stopping wakes it too
        continue;
      }
      auto function = std::move(first->second);
      pending_.erase(first);
      lock.unlock();
      function();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> pending_;
  std::thread thread_;  // last: started after the rest exists
};

}  // namespace mlscale::router
