// TrainerProbe: the trainer's metrics. Code says what happened; the probe owns the
// prometheus families. Thread-safe.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <string>

#include "streamtrain/training/prequential_evaluator.h"

namespace streamtrain::trainer {

// Phases of one iteration, the `phase` label of streamtrain_trainer_iteration_phase_seconds.
enum class Phase { kSample, kForwardBackward, kOptimizer, kEvaluate, kPublish, kCheckpoint };
inline constexpr size_t kPhaseCount = 6;

class TrainerProbe {
 public:
  TrainerProbe(prometheus::Registry& registry, const std::string& mode);

  void Prequential(const training::PrequentialSnapshot& snapshot);
  void Iteration(uint64_t records, double train_loss);
  void PhaseTook(Phase phase, double seconds);
  void Backlog(uint64_t records) { backlog_.Set(static_cast<double>(records)); }
  void ModelVersion(uint64_t version) { version_.Set(static_cast<double>(version)); }
  void Retrained(double seconds);
  // A retraining replaced the served model; `kind` is "full" or "partial", `bytes` what it
  // published (0 without deployment).
  void Swapped(bool partial, uint64_t bytes);
  void CheckpointWritten() { checkpoints_.Increment(); }

  // Deployment (deployment.h).
  void DeltaPublished(uint64_t coordinates, uint64_t bytes, uint64_t dense_equivalent_bytes);
  void DeltaPublishFailed() { delta_failures_.Increment(); }
  void SnapshotPublished(uint64_t bytes);
  void DenseEquivalent(uint64_t bytes);
  void ResidualNorm(double norm) { residual_norm_.Set(norm); }
  // The publish gate held an iteration; `reason` is "non_finite" or "accuracy".
  void DeployHeld(const std::string& reason);
  void DeployHolding(bool holding) { holding_.Set(holding ? 1 : 0); }
  // The cursor skipped `records` stored records (--max-backlog).
  void RecordsSkipped(uint64_t records) { skipped_.Increment(static_cast<double>(records)); }

 private:
  prometheus::Family<prometheus::Gauge>& accuracy_family_;
  prometheus::Family<prometheus::Gauge>& loss_family_;
  prometheus::Gauge& accuracy_cumulative_;
  prometheus::Gauge& accuracy_window_;
  prometheus::Gauge& loss_cumulative_;
  prometheus::Gauge& loss_window_;
  prometheus::Gauge& scored_;
  prometheus::Counter& iterations_;
  prometheus::Counter& records_trained_;
  prometheus::Gauge& train_loss_;
  prometheus::Family<prometheus::Histogram>& phase_family_;
  std::array<prometheus::Histogram*, kPhaseCount> phases_{};
  prometheus::Gauge& backlog_;
  prometheus::Gauge& version_;
  prometheus::Histogram& retrain_seconds_;
  prometheus::Gauge& last_retrain_seconds_;
  prometheus::Counter& checkpoints_;
  prometheus::Counter& deltas_published_;
  prometheus::Counter& delta_bytes_;
  prometheus::Counter& delta_coordinates_;
  prometheus::Counter& dense_equivalent_bytes_;
  prometheus::Counter& snapshot_bytes_;
  prometheus::Counter& snapshots_published_;
  prometheus::Counter& delta_failures_;
  prometheus::Gauge& residual_norm_;
  prometheus::Gauge& compression_ratio_;
  prometheus::Family<prometheus::Counter>& held_family_;
  prometheus::Counter& held_non_finite_;
  prometheus::Counter& held_accuracy_;
  prometheus::Gauge& holding_;
  prometheus::Counter& skipped_;
  prometheus::Family<prometheus::Counter>& swaps_family_;
  prometheus::Family<prometheus::Counter>& swap_bytes_family_;
  std::array<prometheus::Counter*, 2> swaps_{};       // full, partial
  std::array<prometheus::Counter*, 2> swap_bytes_{};  // full, partial
  void UpdateCompressionRatio();
};

}  // namespace streamtrain::trainer
