// ProcessGroup: W trainer processes (ranks) that run collectives together, on LibTorch's
// c10d: rank 0 hosts a TCPStore at the rendezvous address, every rank joins it, and Gloo runs
// the collectives over TCP. CPU only: callers hand over host memory (a CUDA build copies its
// gradients to the host for the exchange; see docs/distributed.md).
//
// Every collective is blocking and bounded by `timeout`. When a rank dies (kill -9) its
// peers' sockets close and the collective fails at once; when it hangs, the collective fails
// after the timeout. Either way the error names the rank(s) that stopped: each rank beats a
// heartbeat counter in the store, and a failed collective reads them (rank_liveness.h). A
// group that failed once stays failed: every later call returns the same error. Its
// destructor closes the connections at once (peers blocked on this rank fail now, not at
// their timeout) but keeps beating for 4 more heartbeats, and rank 0 keeps its store up
// until the live ranks reported their own diagnosis (bounded), so that no peer takes this
// rank's exit for the failure's cause.
//
// Thread safety: one thread runs the collectives (the trainer's loop); the heartbeat runs on
// a thread of its own.
//
//   ST_ASSIGN_OR_RETURN(auto group, ProcessGroup::Join({.world_size = 2, .rank = r,
//                                                       .host = "127.0.0.1", .port = 29500}));
//   ST_RETURN_IF_ERROR(group->AllreduceSum(gradient));
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "streamtrain/common/status.h"
#include "streamtrain/common/stop_source.h"

namespace streamtrain::distributed {

struct GroupOptions {
  int world_size = 1;
  int rank = 0;
  // Rendezvous: rank 0 listens here (TCPStore), the others connect. No default for the port
  // in the trainer's flags; 29500 is torch.distributed's usual one.
  std::string host = "127.0.0.1";
  uint16_t port = 29500;
  // The address this rank's Gloo endpoint binds (its peers connect to it). Empty: 127.0.0.1
  // when `host` is a loopback address, else the address the machine's hostname resolves to
  // (LibTorch's default; GLOO_SOCKET_IFNAME overrides it).
  std::string bind_address;
  // Bound on each collective, and on how long a silent heartbeat means a rank is gone.
  std::chrono::milliseconds timeout{60000};
  // Bound on waiting for every rank to join (they may start minutes apart).
  std::chrono::milliseconds join_timeout{300000};
  // Heartbeat period (liveness: a rank whose counter did not move in 3 periods is named).
  std::chrono::milliseconds heartbeat{500};
};

Status ValidateGroupOptions(const GroupOptions& options);

class ProcessGroup {
 public:
  // Connects to (rank 0: creates) the rendezvous store and forms the group. Blocks until all
  // world_size ranks joined or join_timeout passed (Timeout, naming the ranks missing).
  static Result<std::unique_ptr<ProcessGroup>> Join(const GroupOptions& options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int world_size() const;
  const GroupOptions& options() const;

  // Element-wise sum over the ranks, in place. Every rank receives the same bits.
  Status AllreduceSum(std::span<float> values);
  Status AllreduceSum(std::span<double> values);
  // Every rank's `mine` (the same length on every rank), concatenated in rank order into
  // `all` (world_size * mine.size() values).
  Status Allgather(std::span<const int64_t> mine, std::span<int64_t> all);
  Status Allgather(std::span<const double> mine, std::span<double> all);
  Status Allgather(std::span<const float> mine, std::span<float> all);
  Status Allgather(std::span<const int32_t> mine, std::span<int32_t> all);

  // Through the store, for rare large values no collective should wait for (the initial
  // model, which rank 0 trains while the others wait): Put sets `key`, Get waits for it
  // until `stop` (Cancelled) or, while the group's ranks are alive, indefinitely.
  Status Put(const std::string& key, std::string_view value);
  Result<std::string> Get(const std::string& key, StopSource& stop);

  // Which ranks are not beating their heartbeat now ("" when all are): what a failed
  // collective's error adds.
  std::string DescribeMissingRanks();

  struct Impl;

 private:
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamtrain::distributed
