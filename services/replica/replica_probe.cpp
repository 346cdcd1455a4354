#include "replica_probe.h"

#include <string>

#include "streamtrain/metrics/buckets.h"

namespace streamtrain::replica {
namespace {

constexpr const char* kTopicLabels[] = {"deltas", "snapshots", "records"};

prometheus::Counter& Counter(prometheus::Registry& r, const std::string& name,
                             const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Gauge& Gauge(prometheus::Registry& r, const std::string& name,
                         const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

prometheus::Histogram& Latency(prometheus::Registry& r, const std::string& name,
                               const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add(
      {}, metrics::LatencyBuckets());
}

}  // namespace

ReplicaProbe::ReplicaProbe(prometheus::Registry& r)
    : applied_version_(Gauge(r, "streamtrain_replica_applied_version",
                             "Model version (delta sequence) the replica serves")),
      lag_deltas_(Gauge(r, "streamtrain_replica_lag_deltas",
                        "Deltas on the deltas topic not yet read (high watermark - position)")),
      staleness_(Gauge(r, "streamtrain_replica_staleness_seconds",
                       "0 when caught up with the deltas topic, else now minus the producer "
                       "time of the served version")),
      publish_to_apply_(Latency(r, "streamtrain_replica_publish_to_apply_seconds",
                                "From the trainer encoding a delta to the replica applying it")),
      apply_seconds_(Latency(r, "streamtrain_replica_apply_seconds",
                             "Time to apply a fetched batch of deltas and publish it to serving")),
      applied_(Counter(r, "streamtrain_replica_deltas_applied_total",
                       "Deltas applied (in sequence, digest verified)")),
      duplicates_(Counter(r, "streamtrain_replica_delta_duplicates_total",
                          "Deltas ignored because their version was already applied")),
      gaps_(Counter(r, "streamtrain_replica_delta_gaps_total",
                    "Deltas ahead of the next expected version (a missing delta)")),
      resyncs_(Counter(r, "streamtrain_replica_resyncs_total",
                       "Resynchronisations from a snapshot after a gap or digest failure")),
      digest_failures_(Counter(r, "streamtrain_replica_digest_failures_total",
                               "Deltas whose digest after apply did not match the trainer's")),
      snapshots_loaded_(Counter(r, "streamtrain_replica_snapshots_loaded_total",
                                "Snapshots assembled, verified and loaded")),
      wrong_model_(Counter(r, "streamtrain_replica_wrong_model_messages_total",
                           "Deltas and snapshot chunks of another model id, ignored")),
      predictions_(Counter(r, "streamtrain_replica_predictions_total",
                           "Instances predicted through /v1/predict")),
      predict_seconds_(Latency(r, "streamtrain_replica_predict_seconds",
                               "Time to answer one /v1/predict request")),
      served_records_(Counter(r, "streamtrain_replica_served_records_total",
                              "Records scored by the served model (served accuracy)")),
      served_accuracy_(Gauge(r, "streamtrain_replica_served_accuracy",
                             "Accuracy of the served model on the records topic, cumulative")),
      served_window_accuracy_(
          Gauge(r, "streamtrain_replica_served_window_accuracy",
                "Accuracy of the served model over the last window of records")) {
  auto& corrupt = prometheus::BuildCounter()
                      .Name("streamtrain_replica_corrupt_messages_total")
                      .Help("Messages rejected as corrupt, unauthenticated or inconsistent")
                      .Register(r);
  auto& bytes = prometheus::BuildCounter()
                    .Name("streamtrain_replica_received_bytes_total")
                    .Help("Payload bytes read, by topic")
                    .Register(r);
  for (int i = 0; i < 3; ++i) {
    corrupt_[i] = &corrupt.Add({{"topic", kTopicLabels[i]}});
    received_bytes_[i] = &bytes.Add({{"topic", kTopicLabels[i]}});
  }
  auto& signature = prometheus::BuildCounter()
                        .Name("streamtrain_replica_rejected_signature_total")
                        .Help(
                            "Deltas and snapshot chunks rejected by the HMAC check: unsigned "
                            "while a key is configured, or forged (tag made with another key, "
                            "or bytes changed after signing)")
                        .Register(r);
  constexpr const char* kReasons[] = {"unsigned", "forged"};
  for (int t = 0; t < 2; ++t) {
    for (int reason = 0; reason < 2; ++reason) {
      signature_rejected_[t][reason] =
          &signature.Add({{"topic", kTopicLabels[t]}, {"reason", kReasons[reason]}});
    }
  }
}

void ReplicaProbe::SignatureRejected(Topic topic, SignatureFailure reason) {
  const int t = static_cast<int>(topic);
  if (t > 1) return;  // records carry no signature
  signature_rejected_[t][static_cast<int>(reason)]->Increment();
}

void ReplicaProbe::Received(Topic topic, uint64_t bytes) {
  received_bytes_[static_cast<int>(topic)]->Increment(static_cast<double>(bytes));
}

void ReplicaProbe::Corrupt(Topic topic) { corrupt_[static_cast<int>(topic)]->Increment(); }

void ReplicaProbe::DeltaApplied(double publish_to_apply_seconds) {
  applied_.Increment();
  publish_to_apply_.Observe(publish_to_apply_seconds);
}

void ReplicaProbe::Lag(int64_t deltas, double staleness_seconds) {
  lag_deltas_.Set(static_cast<double>(deltas));
  staleness_.Set(staleness_seconds);
}

void ReplicaProbe::Predicted(uint64_t instances, double seconds) {
  predictions_.Increment(static_cast<double>(instances));
  predict_seconds_.Observe(seconds);
}

void ReplicaProbe::Served(uint64_t records, double cumulative_accuracy, double window_accuracy) {
  served_records_.Increment(static_cast<double>(records));
  served_accuracy_.Set(cumulative_accuracy);
  served_window_accuracy_.Set(window_accuracy);
}

}  // namespace streamtrain::replica
