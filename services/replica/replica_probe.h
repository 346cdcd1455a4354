// ReplicaProbe: the replica's metrics (prefix streamtrain_replica_). Code says what happened
// (probe.DeltaApplied(...)); the probe owns the prometheus families. docs/replica.md lists
// every metric. Thread-safe (prometheus-cpp metrics are atomic).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>

namespace streamtrain::replica {

// Which topic a per-topic counter is about.
enum class Topic { kDeltas, kSnapshots, kRecords };

// Why a message failed the HMAC check, the `reason` label of
// streamtrain_replica_rejected_signature_total.
enum class SignatureFailure { kUnsigned, kForged };

class ReplicaProbe {
 public:
  explicit ReplicaProbe(prometheus::Registry& registry);

  void Received(Topic topic, uint64_t bytes);
  void Corrupt(Topic topic);
  // A delta (kDeltas) or snapshot chunk (kSnapshots) that failed the HMAC check; it is also
  // counted by Corrupt().
  void SignatureRejected(Topic topic, SignatureFailure reason);
  void WrongModel() { wrong_model_.Increment(); }
  // A delta applied `publish_to_apply_seconds` after the trainer encoded it.
  void DeltaApplied(double publish_to_apply_seconds);
  void Duplicate() { duplicates_.Increment(); }
  void Gap() { gaps_.Increment(); }
  void DigestFailure() { digest_failures_.Increment(); }
  void Resync() { resyncs_.Increment(); }
  void SnapshotLoaded() { snapshots_loaded_.Increment(); }
  // Time to apply one fetched batch of deltas and publish it to the serving models.
  void ApplyBatch(double seconds) { apply_seconds_.Observe(seconds); }
  void Version(uint64_t version) { applied_version_.Set(static_cast<double>(version)); }
  void Lag(int64_t deltas, double staleness_seconds);
  void Predicted(uint64_t instances, double seconds);
  void Served(uint64_t records, double cumulative_accuracy, double window_accuracy);

 private:
  prometheus::Gauge& applied_version_;
  prometheus::Gauge& lag_deltas_;
  prometheus::Gauge& staleness_;
  prometheus::Histogram& publish_to_apply_;
  prometheus::Histogram& apply_seconds_;
  prometheus::Counter& applied_;
  prometheus::Counter& duplicates_;
  prometheus::Counter& gaps_;
  prometheus::Counter& resyncs_;
  prometheus::Counter& digest_failures_;
  prometheus::Counter* corrupt_[3];
  prometheus::Counter* received_bytes_[3];
  prometheus::Counter* signature_rejected_[2][2];  // [deltas|snapshots][unsigned|forged]
  prometheus::Counter& snapshots_loaded_;
  prometheus::Counter& wrong_model_;
  prometheus::Counter& predictions_;
  prometheus::Histogram& predict_seconds_;
  prometheus::Counter& served_records_;
  prometheus::Gauge& served_accuracy_;
  prometheus::Gauge& served_window_accuracy_;
};

}  // namespace streamtrain::replica
