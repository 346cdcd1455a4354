#include "rank_liveness.h"

#include <optional>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <vector>

namespace streamtrain::distributed {
namespace {

c10::intrusive_ptr<c10d::TCPStore> Client(const GroupOptions& o,
                                          std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions so;
  so.port = o.port;
  so.isServer = false;
  so.waitWorkers = false;
  so.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(o.host, so);
}

}  // namespace

std::string HeartbeatKey(int rank) { return "hb/" + std::to_string(rank); }
std::string AtKey(int rank) { return "at/" + std::to_string(rank); }

// How many ranks finished naming the missing ones after the group failed.
constexpr const char* kDiagnosedKey = "hb/diagnosed";

RankLiveness::RankLiveness(const GroupOptions& options) : options_(options) {}

RankLiveness::~RankLiveness() { Stop(); }

void RankLiveness::Start(const std::atomic<int64_t>* collectives) {
  collectives_ = collectives;
  thread_ = std::thread([this] { Beat(); });
}

void RankLiveness::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void RankLiveness::Beat() {
  try {
    auto store = Client(options_, options_.timeout);
    int64_t published = 0;  // of *collectives_: "at/<rank>" holds it as a counter
    while (!stop_.load()) {
      store->add(HeartbeatKey(options_.rank), 1);
      if (collectives_ != nullptr) {
        const int64_t now = collectives_->load();
        if (now != published) store->add(AtKey(options_.rank), now - published);
        published = now;
      }
      // Sleep in short slices so Stop() does not wait a whole period.
      const auto until = std::chrono::steady_clock::now() + options_.heartbeat;
      while (!stop_.load() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  } catch (const std::exception&) {
    // The store went away (rank 0 stopped): nothing left to beat. A failed collective
    // reports it.
  }
}

std::string RankLiveness::DescribeMissing(int* missing_ranks, int64_t collective) const {
  if (missing_ranks) *missing_ranks = 0;
  const int w = options_.world_size;
  try {
    auto store = Client(options_, std::chrono::milliseconds(2000));
    auto read = [&] {
      std::vector<int64_t> counts(static_cast<size_t>(w));
      for (int r = 0; r < w; ++r) counts[static_cast<size_t>(r)] = store->add(HeartbeatKey(r), 0);
      return counts;
    };
    const std::vector<int64_t> before = read();
    const auto wait = options_.heartbeat * 3;
    std::this_thread::sleep_for(wait);
    const std::vector<int64_t> after = read();
    std::string missing;
    for (int r = 0; r < w; ++r) {
      if (r == options_.rank || after[static_cast<size_t>(r)] != before[static_cast<size_t>(r)]) {
        continue;
      }
      if (!missing.empty()) missing += ", ";
      if (missing_ranks) ++*missing_ranks;
      missing += "rank " + std::to_string(r) + " stopped (no heartbeat for " +
                 std::to_string(std::chrono::duration<double>(wait).count()).substr(0, 4) + " s)";
    }
    if (!missing.empty() || collective <= 0) return missing;
    // Every rank is alive: name those that never entered this collective (a rank computing
    // or blocked in its own work longer than the timeout).
    for (int r = 0; r < w; ++r) {
      if (r == options_.rank) continue;
      const int64_t at = store->add(AtKey(r), 0);
      if (at >= collective) continue;
      if (!missing.empty()) missing += ", ";
      if (missing_ranks) ++*missing_ranks;
      missing += "rank " + std::to_string(r) + " is alive but did not reach collective #" +
                 std::to_string(collective) + " (it is at #" + std::to_string(at) +
                 ": busy or stuck in its own work)";
    }
    return missing;
  } catch (const std::exception&) {
    if (missing_ranks) *missing_ranks = 1;
    return "rank 0 stopped (the rendezvous store it hosts at " + options_.host + ":" +
           std::to_string(options_.port) + " is unreachable)";
  }
}

void RankLiveness::ReportDiagnosed() const {
  try {
    Client(options_, std::chrono::milliseconds(2000))->add(kDiagnosedKey, 1);
  } catch (const std::exception&) {
    // The store went away with rank 0: nobody is waiting for the report.
  }
}

void RankLiveness::AwaitDiagnoses(int ranks, std::chrono::milliseconds limit) const {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  try {
    auto store = Client(options_, std::chrono::milliseconds(2000));
    while (store->add(kDiagnosedKey, 0) < ranks && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (const std::exception&) {
  }
}

}  // namespace streamtrain::distributed
