// RankLiveness: each rank's heartbeat in the rendezvous store, and the reading of all of
// them that names the ranks that stopped (process_group.h). It uses TCPStore clients of its
// own: the group's client may be stuck in the failed collective's socket.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "streamtrain/distributed/process_group.h"

namespace streamtrain::distributed {

class RankLiveness {
 public:
  explicit RankLiveness(const GroupOptions& options);
  ~RankLiveness();
  // Starts beating this rank's counter every options.heartbeat. Each beat also publishes
  // `*collectives` (how many collectives this rank has entered), when given.
  void Start(const std::atomic<int64_t>* collectives = nullptr);
  void Stop();
  // Reads every rank's counter twice, 3 heartbeats apart: "" when all moved, else e.g.
  // "rank 2 stopped (no heartbeat for 1.5 s)"; when the store itself is unreachable, names
  // rank 0, which hosts it. When every heartbeat moved, names the live ranks that have not
  // entered this rank's collective number `collective` (busy or stuck in their own work).
  // `missing_ranks` (if given) receives how many ranks it named.
  std::string DescribeMissing(int* missing_ranks = nullptr, int64_t collective = 0) const;
  // After a failed collective: counts this rank's DescribeMissing as done in the store.
  // Nothing when the store is gone.
  void ReportDiagnosed() const;
  // Rank 0 after a failed collective: returns once `ranks` ranks (itself included) have
  // reported their diagnosis, or after `limit`. Rank 0 hosts the store; were it to exit
  // at once, a survivor still reading heartbeats would find the store gone and blame rank 0
  // instead of the rank that stopped.
  void AwaitDiagnoses(int ranks, std::chrono::milliseconds limit) const;

 private:
  void Beat();
  GroupOptions options_;
  const std::atomic<int64_t>* collectives_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// "hb/<rank>": the key of a rank's heartbeat counter.
std::string HeartbeatKey(int rank);
// "at/<rank>": how many collectives the rank has entered, as of its last heartbeat.
std::string AtKey(int rank);

}  // namespace streamtrain::distributed
