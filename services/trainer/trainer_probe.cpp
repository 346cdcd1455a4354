#include "trainer_probe.h"

#include "streamtrain/metrics/buckets.h"

namespace streamtrain::trainer {
namespace {

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& r, const std::string& name,
                                                   const std::string& help,
                                                   const std::string& mode) {
  return prometheus::BuildGauge().Name(name).Help(help).Labels({{"mode", mode}}).Register(r);
}

prometheus::Counter& Counter(prometheus::Registry& r, const std::string& name,
                             const std::string& help, const std::string& mode) {
  return prometheus::BuildCounter()
      .Name(name)
      .Help(help)
      .Labels({{"mode", mode}})
      .Register(r)
      .Add({});
}

constexpr const char* kPhaseNames[kPhaseCount] = {"sample",   "forward_backward", "optimizer",
                                                  "evaluate", "publish",          "checkpoint"};

}  // namespace

TrainerProbe::TrainerProbe(prometheus::Registry& r, const std::string& mode)
    : accuracy_family_(GaugeFamily(r, "streamtrain_trainer_prequential_accuracy",
                                   "Prequential (test-then-train) accuracy of the trainer's "
                                   "model: cumulative since the stream began, or over the "
                                   "sliding window",
                                   mode)),
      loss_family_(GaugeFamily(r, "streamtrain_trainer_prequential_loss",
                               "Prequential mean cross-entropy, cumulative or sliding window",
                               mode)),
      accuracy_cumulative_(accuracy_family_.Add({{"window", "cumulative"}})),
      accuracy_window_(accuracy_family_.Add({{"window", "sliding"}})),
      loss_cumulative_(loss_family_.Add({{"window", "cumulative"}})),
      loss_window_(loss_family_.Add({{"window", "sliding"}})),
      scored_(GaugeFamily(r, "streamtrain_trainer_prequential_records",
                          "Streamed records scored by the prequential evaluation", mode)
                  .Add({})),
      iterations_(Counter(r, "streamtrain_trainer_iterations_total",
                          "Optimizer steps on streamed records (retrainings in full mode)", mode)),
      records_trained_(Counter(r, "streamtrain_trainer_records_trained_total",
                               "Streamed records trained on", mode)),
      train_loss_(GaugeFamily(r, "streamtrain_trainer_train_loss",
                              "Cross-entropy of the last training mini-batch", mode)
                      .Add({})),
      phase_family_(prometheus::BuildHistogram()
                        .Name("streamtrain_trainer_iteration_phase_seconds")
                        .Help("Time spent in each phase of an iteration")
                        .Labels({{"mode", mode}})
                        .Register(r)),
      backlog_(GaugeFamily(r, "streamtrain_trainer_backlog_records",
                           "Stored records the trainer has not processed yet", mode)
                   .Add({})),
      version_(GaugeFamily(r, "streamtrain_trainer_model_version",
                           "Version of the trainer's served model", mode)
                   .Add({})),
      retrain_seconds_(
          prometheus::BuildHistogram()
              .Name("streamtrain_trainer_retraining_duration_seconds")
              .Help("Wall-clock time of one full retraining from scratch")
              .Labels({{"mode", mode}})
              .Register(r)
              .Add({}, prometheus::Histogram::BucketBoundaries{1, 2.5, 5, 10, 25, 50, 100, 250, 500,
                                                               1000, 2500})),
      last_retrain_seconds_(GaugeFamily(r, "streamtrain_trainer_last_retraining_seconds",
                                        "Duration of the most recent full retraining", mode)
                                .Add({})),
      checkpoints_(
          Counter(r, "streamtrain_trainer_checkpoints_total", "Checkpoints written", mode)),
      deltas_published_(Counter(r, "streamtrain_deltas_published_total",
                                "Deltas handed to the producer for the deltas topic", mode)),
      delta_bytes_(Counter(r, "streamtrain_delta_bytes_total",
                           "Encoded bytes of the published deltas", mode)),
      delta_coordinates_(Counter(r, "streamtrain_delta_coordinates_total",
                                 "Parameter coordinates carried by the published deltas", mode)),
      dense_equivalent_bytes_(
          Counter(r, "streamtrain_dense_equivalent_bytes_total",
                  "Bytes a full f32 copy of the parameters per iteration would have taken "
                  "(N x 4 per iteration)",
                  mode)),
      snapshot_bytes_(Counter(r, "streamtrain_snapshot_bytes_total",
                              "Bytes of the published snapshot chunks", mode)),
      snapshots_published_(
          Counter(r, "streamtrain_snapshots_published_total", "Snapshots published", mode)),
      delta_failures_(Counter(r, "streamtrain_delta_publish_failures_total",
                              "Deltas that could not be handed to the producer (a snapshot "
                              "follows so replicas can resync)",
                              mode)),
      residual_norm_(GaugeFamily(r, "streamtrain_trainer_residual_norm",
                                 "L2 norm of what the served model still lacks: the "
                                 "error-feedback residual (--feedback train) or trained minus "
                                 "served parameters (--feedback shadow)",
                                 mode)
                         .Add({})),
      compression_ratio_(GaugeFamily(r, "streamtrain_trainer_compression_ratio",
                                     "Dense-equivalent bytes over bytes actually published "
                                     "(deltas and snapshots), cumulative",
                                     mode)
                             .Add({})),
      held_family_(prometheus::BuildCounter()
                       .Name("streamtrain_deploy_held_total")
                       .Help("Iterations the publish gate held (nothing published, no version "
                             "used), by reason: non_finite (NaN or infinite parameters) or "
                             "accuracy (--publish-gate-margin)")
                       .Labels({{"mode", mode}})
                       .Register(r)),
      held_non_finite_(held_family_.Add({{"reason", "non_finite"}})),
      held_accuracy_(held_family_.Add({{"reason", "accuracy"}})),
      holding_(GaugeFamily(r, "streamtrain_deploy_holding",
                           "1 while the publish gate holds deployment for accuracy, else 0", mode)
                   .Add({})),
      skipped_(Counter(r, "streamtrain_trainer_skipped_records_total",
                       "Stored records the cursor skipped because the backlog exceeded "
                       "--max-backlog (not scored, not trained on as new records)",
                       mode)),
      swaps_family_(prometheus::BuildCounter()
                        .Name("streamtrain_trainer_swaps_total")
                        .Help("Retrained models swapped in, by kind: full (a snapshot) or "
                              "partial (k coordinates as deltas, --swap-deploy partial)")
                        .Labels({{"mode", mode}})
                        .Register(r)),
      swap_bytes_family_(prometheus::BuildCounter()
                             .Name("streamtrain_trainer_swap_bytes_total")
                             .Help("Bytes published by retraining swaps (snapshot chunks or "
                                   "deltas), by kind: full or partial")
                             .Labels({{"mode", mode}})
                             .Register(r)) {
  const char* kinds[2] = {"full", "partial"};
  for (size_t i = 0; i < 2; ++i) {
    swaps_[i] = &swaps_family_.Add({{"kind", kinds[i]}});
    swap_bytes_[i] = &swap_bytes_family_.Add({{"kind", kinds[i]}});
  }
  for (size_t i = 0; i < kPhaseCount; ++i) {
    phases_[i] = &phase_family_.Add({{"phase", kPhaseNames[i]}}, metrics::LatencyBuckets());
  }
}

void TrainerProbe::Prequential(const training::PrequentialSnapshot& s) {
  accuracy_cumulative_.Set(s.cumulative_accuracy);
  accuracy_window_.Set(s.window_accuracy);
  loss_cumulative_.Set(s.cumulative_loss);
  loss_window_.Set(s.window_loss);
  scored_.Set(static_cast<double>(s.count));
}

void TrainerProbe::Iteration(uint64_t records, double train_loss) {
  iterations_.Increment();
  records_trained_.Increment(static_cast<double>(records));
  train_loss_.Set(train_loss);
}

void TrainerProbe::PhaseTook(Phase phase, double seconds) {
  phases_[static_cast<size_t>(phase)]->Observe(seconds);
}

void TrainerProbe::DeltaPublished(uint64_t coordinates, uint64_t bytes,
                                  uint64_t dense_equivalent_bytes) {
  deltas_published_.Increment();
  delta_coordinates_.Increment(static_cast<double>(coordinates));
  delta_bytes_.Increment(static_cast<double>(bytes));
  dense_equivalent_bytes_.Increment(static_cast<double>(dense_equivalent_bytes));
  UpdateCompressionRatio();
}

void TrainerProbe::SnapshotPublished(uint64_t bytes) {
  snapshots_published_.Increment();
  snapshot_bytes_.Increment(static_cast<double>(bytes));
  UpdateCompressionRatio();
}

void TrainerProbe::DenseEquivalent(uint64_t bytes) {
  dense_equivalent_bytes_.Increment(static_cast<double>(bytes));
  UpdateCompressionRatio();
}

void TrainerProbe::UpdateCompressionRatio() {
  const double sent = delta_bytes_.Value() + snapshot_bytes_.Value();
  if (sent > 0) compression_ratio_.Set(dense_equivalent_bytes_.Value() / sent);
}

void TrainerProbe::DeployHeld(const std::string& reason) {
  (reason == "non_finite" ? held_non_finite_ : held_accuracy_).Increment();
}

void TrainerProbe::Swapped(bool partial, uint64_t bytes) {
  swaps_[partial ? 1 : 0]->Increment();
  swap_bytes_[partial ? 1 : 0]->Increment(static_cast<double>(bytes));
}

void TrainerProbe::Retrained(double seconds) {
  iterations_.Increment();  // in full mode a retraining is the iteration
  retrain_seconds_.Observe(seconds);
  last_retrain_seconds_.Set(seconds);
}

}  // namespace streamtrain::trainer
