#include "ingest_probe.h"

#include "streamtrain/metrics/buckets.h"

namespace streamtrain::ingest {
namespace {

prometheus::Counter& Counter(prometheus::Registry& r, const std::string& name,
                             const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Gauge& Gauge(prometheus::Registry& r, const std::string& name,
                         const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

IngestProbe::IngestProbe(prometheus::Registry& r)
    : consumed_(Counter(r, "streamtrain_ingest_records_consumed_total",
                        "Messages read from the records topics")),
      consumed_bytes_(Counter(r, "streamtrain_ingest_consumed_bytes_total",
                              "Payload bytes read from the records topics")),
      stored_(Counter(r, "streamtrain_ingest_records_stored_total",
                      "Records appended to the historical store")),
      duplicates_(Counter(r, "streamtrain_ingest_records_duplicate_total",
                          "Records skipped because their offset was already stored (replays)")),
      rejected_family_(prometheus::BuildCounter()
                           .Name("streamtrain_ingest_records_rejected_total")
                           .Help("Records rejected as invalid, by reason")
                           .Register(r)),
      evicted_(Counter(r, "streamtrain_store_evicted_records_total",
                       "Records removed from the store by retention")),
      dead_lettered_(Counter(r, "streamtrain_ingest_dead_lettered_total",
                             "Rejected records sent to the dead-letter topic")),
      dead_letter_truncated_(
          Counter(r, "streamtrain_ingest_dead_letter_truncated_total",
                  "Rejected records the dead-letter topic refused whole (too large, invalid, "
                  "policy), dead-lettered with a truncated payload")),
      lost_family_(prometheus::BuildCounter()
                       .Name("streamtrain_ingest_records_lost_total")
                       .Help("Records that left Kafka's log (retention) before ingest read "
                             "them, by topic and partition")
                       .Register(r)),
      loss_events_family_(prometheus::BuildCounter()
                              .Name("streamtrain_ingest_data_loss_events_total")
                              .Help("Gaps of lost records found, by topic and partition")
                              .Register(r)),
      commit_failures_(Counter(r, "streamtrain_ingest_commit_failures_total",
                               "Kafka offset commits that failed (replays are deduplicated)")),
      batch_seconds_(prometheus::BuildHistogram()
                         .Name("streamtrain_ingest_batch_duration_seconds")
                         .Help("Time to validate, store and commit one batch")
                         .Register(r)
                         .Add({}, metrics::LatencyBuckets())),
      store_records_(Gauge(r, "streamtrain_store_records", "Records retained in the store")),
      store_bytes_(Gauge(r, "streamtrain_store_bytes", "Bytes of records retained in the store")),
      store_next_seq_(Gauge(r, "streamtrain_store_next_sequence",
                            "Sequence number the next stored record gets (high-water mark)")),
      lag_(Gauge(r, "streamtrain_ingest_consumer_lag_messages",
                 "Messages in the assigned partitions not yet consumed")),
      assigned_(Gauge(r, "streamtrain_ingest_assigned_partitions",
                      "Partitions of the records topics assigned to this ingest")) {
  // Create every reason's series up front so dashboards see zeros, not gaps.
  for (int i = 0; i <= static_cast<int>(schema::RejectReason::kInvalidTimestamp); ++i) {
    auto reason = static_cast<schema::RejectReason>(i);
    rejected_[reason] =
        &rejected_family_.Add({{"reason", std::string(schema::RejectReasonName(reason))}});
  }
}

void IngestProbe::MessagesConsumed(uint64_t n, uint64_t bytes) {
  consumed_.Increment(static_cast<double>(n));
  consumed_bytes_.Increment(static_cast<double>(bytes));
}

void IngestProbe::PartitionAssigned(const std::string& topic, int32_t partition) {
  const std::map<std::string, std::string> labels{{"topic", topic},
                                                  {"partition", std::to_string(partition)}};
  lost_family_.Add(labels);
  loss_events_family_.Add(labels);
}

void IngestProbe::RecordsLost(const std::string& topic, int32_t partition, uint64_t n) {
  const std::map<std::string, std::string> labels{{"topic", topic},
                                                  {"partition", std::to_string(partition)}};
  lost_family_.Add(labels).Increment(static_cast<double>(n));
  loss_events_family_.Add(labels).Increment();
}

void IngestProbe::RecordRejected(schema::RejectReason reason) { rejected_.at(reason)->Increment(); }

void IngestProbe::StoreState(const store::StoreStats& stats) {
  store_records_.Set(static_cast<double>(stats.records));
  store_bytes_.Set(static_cast<double>(stats.bytes));
  store_next_seq_.Set(static_cast<double>(stats.next_seq.value()));
}

}  // namespace streamtrain::ingest
