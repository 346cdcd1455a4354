// IngestProbe: the ingest service's metrics. Code says what happened
// (probe.RecordsStored(n)); the probe owns the prometheus families.
// Thread-safe (prometheus-cpp metrics are atomic).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <string>

#include "streamtrain/schema/rejection.h"
#include "streamtrain/store/historical_store.h"

namespace streamtrain::ingest {

class IngestProbe {
 public:
  explicit IngestProbe(prometheus::Registry& registry);

  void MessagesConsumed(uint64_t n, uint64_t bytes);
  void RecordsStored(uint64_t n) { stored_.Increment(static_cast<double>(n)); }
  void RecordsDuplicate(uint64_t n) { duplicates_.Increment(static_cast<double>(n)); }
  void RecordRejected(schema::RejectReason reason);
  void RecordsEvicted(uint64_t n) { evicted_.Increment(static_cast<double>(n)); }
  void DeadLettered(uint64_t n) { dead_lettered_.Increment(static_cast<double>(n)); }
  void DeadLetterTruncated() { dead_letter_truncated_.Increment(); }
  // A partition was assigned: its loss series exist from now on, at 0 until a loss.
  void PartitionAssigned(const std::string& topic, int32_t partition);
  // `n` records of the partition left the log before ingest read them (one loss event).
  void RecordsLost(const std::string& topic, int32_t partition, uint64_t n);
  void CommitFailed() { commit_failures_.Increment(); }
  void BatchDone(double seconds) { batch_seconds_.Observe(seconds); }
  void StoreState(const store::StoreStats& stats);
  void ConsumerState(int64_t lag_messages, int assigned_partitions) {
    lag_.Set(static_cast<double>(lag_messages));
    assigned_.Set(assigned_partitions);
  }

 private:
  prometheus::Counter& consumed_;
  prometheus::Counter& consumed_bytes_;
  prometheus::Counter& stored_;
  prometheus::Counter& duplicates_;
  prometheus::Family<prometheus::Counter>& rejected_family_;
  std::map<schema::RejectReason, prometheus::Counter*> rejected_;
  prometheus::Counter& evicted_;
  prometheus::Counter& dead_lettered_;
  prometheus::Counter& dead_letter_truncated_;
  prometheus::Family<prometheus::Counter>& lost_family_;
  prometheus::Family<prometheus::Counter>& loss_events_family_;
  prometheus::Counter& commit_failures_;
  prometheus::Histogram& batch_seconds_;
  prometheus::Gauge& store_records_;
  prometheus::Gauge& store_bytes_;
  prometheus::Gauge& store_next_seq_;
  prometheus::Gauge& lag_;
  prometheus::Gauge& assigned_;
};

}  // namespace streamtrain::ingest
