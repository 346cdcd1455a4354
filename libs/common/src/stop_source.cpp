#include "streamtrain/common/stop_source.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include "streamtrain/common/logging.h"

namespace streamtrain {

void StopSource::RequestStop() {
  {
    std::lock_guard lock(mutex_);
    stopped_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

bool StopSource::WaitFor(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [this] { return stop_requested(); });
}

void StopSource::Wait() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [this] { return stop_requested(); });
}

namespace {
sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);  // internal: wakes the waiter when the guard is destroyed
  return set;
}
}  // namespace

SignalStopGuard::SignalStopGuard(StopSource& stop) {
  sigset_t set = StopSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  waiter_ = std::thread([&stop, set] {
    int received = 0;
    bool first = true;
    std::chrono::steady_clock::time_point first_at;
    while (sigwait(&set, &received) == 0) {
      if (received == SIGUSR2) return;
      // A repeat within a second is the same request delivered twice (timeout(1) signals
      // the child and then its whole process group), not a user insisting.
      if (!first && std::chrono::steady_clock::now() - first_at < std::chrono::seconds(1)) {
        continue;
      }
      if (!first) {
        GetLogger("main")->warn("second signal {}: exiting now", received);
        std::_Exit(130);
      }
      first = false;
      first_at = std::chrono::steady_clock::now();
      GetLogger("main")->info("signal {} received: stopping (send again to exit at once)",
                              received);
      stop.RequestStop();
    }
  });
}

SignalStopGuard::~SignalStopGuard() {
  pthread_kill(waiter_.native_handle(), SIGUSR2);
  waiter_.join();
}

}  // namespace streamtrain
