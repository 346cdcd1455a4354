// StopSource: a stop request that background loops can poll and wait on.
//
// RequestStop() may be called from any thread (and, through InstallSignalStop, on
// SIGINT/SIGTERM). Loops check stop_requested() or block in WaitFor(), which returns early
// when a stop is requested, so shutdown never waits out a sleep.
//
//   StopSource stop;
//   while (!stop.stop_requested()) { DoBatch(); }
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace streamtrain {

class StopSource {
 public:
  void RequestStop();
  bool stop_requested() const { return stopped_.load(std::memory_order_acquire); }
  // Waits up to `timeout`; returns true if a stop was requested.
  bool WaitFor(std::chrono::milliseconds timeout);
  // Waits until a stop is requested.
  void Wait();

 private:
  std::atomic<bool> stopped_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
};

// Blocks SIGINT and SIGTERM in the calling thread (call it in main() before starting any
// thread, so every thread inherits the mask) and starts a thread that turns the first of
// them into stop.RequestStop(). A second signal exits the process at once with status 130,
// for an operator who means it. The returned guard joins that thread.
class SignalStopGuard {
 public:
  explicit SignalStopGuard(StopSource& stop);
  ~SignalStopGuard();
  SignalStopGuard(const SignalStopGuard&) = delete;
  SignalStopGuard& operator=(const SignalStopGuard&) = delete;

 private:
  std::thread waiter_;
};

}  // namespace streamtrain
