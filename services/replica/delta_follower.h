// DeltaFollower: the replica's reader thread. Bootstraps from the newest snapshot, then
// applies deltas in sequence (DESIGN.md, invariant 3) and publishes them to ServedModels.
//
// One PartitionReader reads partition 0 of the deltas and the snapshots topic. Deltas go
// through deploy::ReplicaState: the next one is applied, duplicates are ignored, a gap or a
// digest mismatch starts a resync: the newest snapshot is fetched; if it is ahead of the
// served version it is loaded, otherwise it is loaded into a staging copy that replays
// deltas from the snapshot's deltas_offset until it reaches the served version, and only
// then replaces it, so the replica never serves an older version than it did. If the replay
// hits the same gap, the replica keeps serving and waits for a newer snapshot. Any complete
// snapshot ahead of the served version is loaded when it arrives (a trainer restart's
// "rebase", --deploy dense); chunks of older ones are skipped with PeekSnapshotChunk.
// Everything fetched in one poll is applied, then published once.
//
// Until it has a model it looks for its snapshot every second; what it saw on the snapshots
// topic meanwhile (SnapshotCensus) is logged every 30 s and reported by waiting(), and a look
// reads only what was added since the previous one found nothing of its model.
//
// Threads: Run() on the reader thread; models(), status() from any thread.
//
//   auto follower = DeltaFollower::Create(options, probe).value();
//   std::thread t([&] { follower->Run(stop); });
//   auto models = follower->models();  // null until the first snapshot is loaded
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "replica_options.h"
#include "replica_probe.h"
#include "served_models.h"
#include "snapshot_census.h"
#include "streamtrain/common/status.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/deploy/replica_state.h"
#include "streamtrain/kafka/partition_reader.h"
#include "streamtrain/wire/snapshot.h"

namespace streamtrain::replica {

// What /v1/model and /healthz report.
struct FollowerStatus {
  bool loaded = false;           // a snapshot was loaded and published
  uint64_t version = 0;          // served version
  uint64_t digest = 0;           // served digest
  uint64_t parameter_count = 0;  // served parameters
  double staleness_seconds = 0;  // 0 when caught up, else now - producer time of version
};

// Why a replica has no model yet, for /healthz and /v1/model.
struct WaitingReport {
  // E.g. `no snapshot of model "fashon" on model.snapshots yet; seen there: "fashion"
  // (version 1250)`; empty before the first look at the topic and once a model is loaded.
  std::string reason;
  // Model id -> newest version of its chunks seen on the snapshots topic (SnapshotCensus).
  std::map<std::string, uint64_t> snapshot_models;
};

class DeltaFollower {
 public:
  static Result<std::unique_ptr<DeltaFollower>> Create(const ReplicaOptions& options,
                                                       ReplicaProbe& probe);
  ~DeltaFollower();

  // Reads until `stop`; returns only a fatal error (Kafka fatal errors).
  Status Run(StopSource& stop);
  // The serving models, null until the first snapshot is loaded.
  std::shared_ptr<ServedModels> models() const;
  FollowerStatus status() const;
  // Why there is no model yet (meaningful while status().loaded is false).
  WaitingReport waiting() const;

 private:
  struct FetchedSnapshot {
    wire::AssembledSnapshot snapshot;
    int64_t next_offset = 0;  // snapshots-topic offset after its last chunk
    int64_t time_ms = 0;      // Kafka timestamp of its last chunk
  };
  enum class Mode { kFollowing, kReplaying, kWaitingForSnapshot };
  enum class Next { kContinue, kReposition, kResync };

  DeltaFollower(ReplicaOptions options, ReplicaProbe& probe);

  // The newest complete snapshot of our model on the topic, nullopt when there is none.
  Result<std::optional<FetchedSnapshot>> FetchNewestSnapshot(StopSource& stop);
  // Logs (every kWaitingLogInterval) and records why there is no model yet.
  void ReportWaiting(const Status& fetch_status);
  // Assembles the snapshot whose first chunk is at `start` (or a newer one that follows);
  // nullopt when none completes within snapshot_timeout.
  Result<std::optional<FetchedSnapshot>> AssembleFrom(int64_t start, int64_t end, StopSource& stop);
  // The offset and header of the last chunk of our model before `end`, if any.
  Result<std::optional<std::pair<int64_t, wire::SnapshotChunkHeader>>> LastChunkBefore(
      int64_t low, int64_t end, StopSource& stop);
  Status Bootstrap(FetchedSnapshot fetched);
  Status FollowOnce(StopSource& stop);
  Next OnDelta(const kafka::Message& m, bool* changed);
  Next OnChunk(const kafka::Message& m, bool* changed);
  Status Resync(StopSource& stop, bool* changed);
  Status Reposition();
  // Counts and logs a snapshot chunk the assembler refused (signature failures by reason).
  void RejectChunk(int64_t offset, const Status& why);
  Status Publish();
  void UpdateLag();

  ReplicaOptions options_;
  ReplicaProbe& probe_;
  kafka::TopicPartition deltas_tp_, snapshots_tp_;
  std::unique_ptr<kafka::PartitionReader> reader_;

  // Reader thread only.
  std::unique_ptr<deploy::ReplicaState> served_;
  std::unique_ptr<deploy::ReplicaState> staging_;
  std::optional<wire::SnapshotAssembler> assembler_;
  Mode mode_ = Mode::kFollowing;
  std::optional<uint64_t> resynced_at_;  // served version when the last resync started
  int64_t deltas_next_ = 0, snapshots_next_ = 0;
  std::chrono::steady_clock::time_point last_lag_update_{};
  SnapshotCensus census_;
  // Before the first snapshot: no chunk of our model lies below this snapshots-topic offset
  // (a look read it all), so the next look starts there.
  int64_t unscanned_from_ = 0;
  std::chrono::steady_clock::time_point next_waiting_log_{};

  mutable std::mutex mutex_;  // guards models_, status_ and waiting_
  std::shared_ptr<ServedModels> models_;
  FollowerStatus status_;
  WaitingReport waiting_;
};

}  // namespace streamtrain::replica
