// Deployment: what the trainer sends to the replicas after every iteration, and the served
// copy of the parameters that it keeps identical to theirs.
//
// Per iteration (sparse mode), after the optimizer step produced the trained parameters:
//   1. choose k coordinates (libs/sparse): `--feedback train` adds the step's update to the
//      error-feedback residual and takes the k largest entries; `--feedback shadow` takes
//      the k largest differences between the trained and the served parameters;
//   2. build a wire::Delta (sequence = the new version, digest after apply), encode it;
//   3. decode the bytes and apply them to the served copy with wire::ApplyDelta, the code
//      every replica runs (DESIGN.md, invariant 4), then produce the same bytes;
//   4. in train mode the model is reset to the served copy: it changes only at the k
//      selected coordinates, whatever the optimizer did to the others.
// The publish gate comes first and may hold an iteration instead: nothing is published,
// the served copy does not move and no version is used. It holds when a trained value is
// NaN or infinite (the step is dropped: the model returns to the served copy), and, with
// publish_gate_margin, while the windowed prequential accuracy is more than the margin
// below its value when the last version went out. While held for accuracy the model keeps
// training; in train mode it runs ahead of the served copy as in shadow mode, and for as
// many published iterations after the hold as the hold lasted it stays ahead (the deltas
// carry the largest coordinates of residual + trained - served); then it is reset to the
// served copy and what it was ahead goes into the residual (docs/deployment.md).
// Snapshots (the whole served copy, chunked) go out at start, every snapshot_every
// iterations, on request, after a delivery failure (so replicas that missed a delta can
// resync) and, in `--deploy dense` mode, every iteration instead of deltas.
//
// `--sparsifier dpu` ranks by the DPU combined contribution (libs/sparse contribution.h):
// the deployer keeps the local contribution of every parameter, adds -gradient * step after
// each optimizer step (Publish's `gradient`; the step is trained minus the parameters the
// model held before it) in the pass that also updates the residual and sums the totals the
// selection normalises by (sparse::AccumulateStep), and zeroes it where a coordinate is
// deployed.
//
// Restart: SerializeState/RestoreState carry the residual (train) or the served copy
// (shadow) and the dpu local contributions through the checkpoint (state version 3; older
// states restore them as zero). After a crash the trainer may have published versions
// beyond its checkpoint; Start() finds the newest version on the topics and continues
// above it with a snapshot ("rebase"), so no version number ever means two models.
//
// Thread safety: one thread (the training loop) calls everything except RequestSnapshot
// and served_digest, which any thread may call.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/kafka/client_config.h"
#include "streamtrain/model/parameter_layout.h"
#include "streamtrain/sparse/contribution.h"
#include "streamtrain/sparse/error_feedback_sparsifier.h"
#include "streamtrain/sparse/shadow_selector.h"
#include "streamtrain/sparse/sparsifier_options.h"
#include "streamtrain/wire/apply.h"
#include "streamtrain/wire/delta.h"

namespace streamtrain::kafka {
class Producer;
class PartitionReader;
}  // namespace streamtrain::kafka

namespace streamtrain::trainer {

class TrainerProbe;

enum class DeployMode {
  kOff,     // nothing is published (no --brokers)
  kSparse,  // one delta of k coordinates per iteration, periodic snapshots
  kDense,   // a full snapshot every iteration: the baseline the thesis calls infeasible
};

std::string_view DeployModeName(DeployMode mode);
Result<DeployMode> ParseDeployMode(std::string_view text);              // off|sparse|dense
Result<wire::ValueEncoding> ParseValueEncoding(std::string_view text);  // f32|f16|bf16

struct DeploymentOptions {
  // Default: sparse when brokers are configured, off otherwise (services/trainer/main.cpp).
  DeployMode mode = DeployMode::kOff;
  // Which coordinates each delta carries (--sparsifier, --ratio, --scope, --feedback, ...).
  sparse::SparsifierOptions sparsifier;
  // --feedback was not given: a checkpoint written in the other feedback mode continues in
  // its own (so the services' default, shadow since issue 14's measurements, does not stop
  // a deployment that started under the former default, train, at its next restart).
  // False: a mismatch is an error, as for --deploy.
  bool feedback_follows_checkpoint = false;
  // f32 new values, or f16/bf16 increments (--delta-values). Default: f32.
  wire::ValueEncoding values = wire::ValueEncoding::kF32New;
  // Names the model on the topics (message key, header); replicas filter on it.
  std::string model_id = "default";
  std::string deltas_topic = "model.deltas";
  std::string snapshots_topic = "model.snapshots";
  // A snapshot every S iterations (besides the one at start); 0: only at start and on
  // request. Default: 1,000.
  uint64_t snapshot_every = 1000;
  // Signs deltas and snapshot chunks with HMAC-SHA256 when set (--hmac-key-file or the
  // STREAMTRAIN_HMAC_KEY environment variable). Never logged.
  std::optional<std::string> hmac_key;
  // Champion/challenger gate (--publish-gate-margin): hold deployment while the windowed
  // prequential accuracy is more than this (a fraction, e.g. 0.02) below the windowed
  // accuracy when the last version was published. Default: 0, off.
  double publish_gate_margin = 0;
  // How long a snapshot waits for outstanding deltas to be acknowledged. Default: 30 s.
  std::chrono::milliseconds flush_timeout{30000};
  // Look the deltas and snapshots topics up when the sink is created. librdkafka's producer
  // otherwise learns a topic it has not produced to on its once-a-second topic scan, and
  // held the first deltas after a start for up to a second (bench/freshness_bench.cpp
  // measures both ways: --variant "kafka trainer:no-topic-lookup"). Default: true.
  bool lookup_topics_at_start = true;
  // Publish nowhere (`streamtrain replay`): deltas and snapshots are built, encoded and
  // applied to the served copy as always, then dropped; nothing connects to Kafka, and
  // Start() finds no newer version to rebase above. Default: false.
  bool dry_run = false;
};

// Where deltas and snapshot chunks go: the deltas and snapshots topics, partition 0, key =
// model id, through an idempotent producer (acks=all).
class DeploymentSink {
 public:
  static Result<std::unique_ptr<DeploymentSink>> Create(const kafka::ClientConfig& client,
                                                        const DeploymentOptions& options);
  // A sink that accepts everything and sends nothing (DeploymentOptions::dry_run).
  static std::unique_ptr<DeploymentSink> CreateDryRun(const DeploymentOptions& options);
  ~DeploymentSink();

  Status PublishDelta(std::string_view bytes);
  Status PublishSnapshotChunk(std::string_view bytes);
  // Waits until every published message is acknowledged, then returns the deltas topic's
  // high watermark: the offset the next delta will get.
  Result<int64_t> DeltasEnd();
  // The newest version this model id has on the topics (deltas and snapshots), if any.
  Result<std::optional<uint64_t>> NewestPublishedVersion();
  // Waits until every published message is acknowledged (or timeout).
  Status Flush();
  // Deliveries that failed permanently so far.
  uint64_t failed_deliveries() const;

 private:
  DeploymentSink() = default;
  Result<std::optional<uint64_t>> NewestOn(const std::string& topic, bool deltas);

  DeploymentOptions options_;
  std::unique_ptr<kafka::Producer> producer_;
  std::unique_ptr<kafka::PartitionReader> reader_;
};

// Why the publish gate held an iteration (the `reason` label of streamtrain_deploy_held_total).
enum class HoldReason { kNonFinite, kAccuracy };

struct DeltaStats {
  uint64_t coordinates = 0;  // k of this delta
  uint64_t bytes = 0;        // encoded size
  // The gate held the iteration: nothing was published and the version was not used.
  bool held = false;
  // `trained` now holds the parameters the model must continue from (load them back).
  bool model_reset = false;
};

// What a retraining swap published (Deployer::Replace, Deployer::ReplaceCoordinates).
struct SwapStats {
  bool published = false;    // false: non-finite values, nothing sent, no version used
  uint64_t versions = 0;     // versions used: 1 for a snapshot, one per delta otherwise
  uint64_t coordinates = 0;  // parameters sent
  uint64_t bytes = 0;        // encoded bytes of the snapshot chunks or deltas
};

// The most coordinates of one delta of a partial swap: 8 bytes each with f32 values, so a
// delta stays below Kafka's default 1 MB message limit.
inline constexpr uint64_t kMaxSwapDeltaCoordinates = 100000;

class Deployer {
 public:
  // `model_spec` is the JSON the snapshot carries so replicas can build the model.
  static Result<std::unique_ptr<Deployer>> Create(const DeploymentOptions& options,
                                                  const model::ParameterLayout& layout,
                                                  std::string model_spec,
                                                  std::unique_ptr<DeploymentSink> sink,
                                                  TrainerProbe* probe);
  ~Deployer();

  // Starts serving `params` (the model's parameters after initial training or a resume).
  // `state` is what SerializeState wrote into the checkpoint (empty: fresh start). Returns
  // the version to continue from: `version`, or above the newest one already published.
  // Publishes a snapshot at that version.
  Result<uint64_t> Start(std::span<const float> params, uint64_t version, std::string_view state);

  // After an optimizer step: `trained` holds the model's parameters, `window_accuracy` the
  // trainer's windowed prequential accuracy (for the gate; none: no accuracy gate). Publishes
  // `version` (sparse: a delta; dense: a snapshot) unless the gate holds it (stats.held: the
  // same version is offered again next time). When stats.model_reset, `trained` was
  // overwritten with the parameters the caller loads back into the model.
  // `gradient`: the gradients that step used (--sparsifier dpu; empty: none accumulated).
  Result<DeltaStats> Publish(std::span<float> trained, uint64_t version,
                             std::optional<double> window_accuracy = std::nullopt,
                             std::span<const float> gradient = {});

  // Replaces the served model wholesale (full retraining swap): snapshot at `version`.
  // Not published (version unused) when `params` are not all finite.
  Result<SwapStats> Replace(std::span<const float> params, uint64_t version);
  // Partial retraining swap (partial_swap.h): the served copy takes `params` at the
  // ascending flat indices `mask` only, published as deltas from `version` on (one per
  // kMaxSwapDeltaCoordinates). Not published when those values are not all finite.
  Result<SwapStats> ReplaceCoordinates(std::span<const float> params,
                                       std::span<const uint64_t> mask, uint64_t version);

  // Waits until everything published so far is acknowledged by the brokers.
  Status Flush() { return sink_->Flush(); }

  // Asks for a snapshot at the next Publish (any thread).
  void RequestSnapshot() { snapshot_requested_.store(true); }

  std::string SerializeState() const;
  uint64_t served_digest() const { return served_digest_.load(); }
  std::span<const float> served() const { return served_; }
  // Train feedback: what the served copy still lacks of the updates (empty otherwise).
  std::span<const float> residual() const { return residual_; }
  // --sparsifier dpu: each parameter's local contribution since it was deployed (empty
  // otherwise).
  std::span<const float> local_contribution() const { return local_; }
  // Whether Publish wants the step's gradients.
  bool wants_gradient() const { return !local_.empty(); }
  DeployMode mode() const { return options_.mode; }
  // True while the accuracy gate holds deployment.
  bool holding() const { return holding_; }
  // The drift action `hold` (drift_response.h): while set, every iteration is held as the
  // accuracy gate holds it (counted, logged, the model keeps training); set each iteration.
  void SetHeldByTrigger(bool held) { held_by_trigger_ = held; }
  // Train feedback: the model differs from the served copy (held, or catching up after it).
  bool model_ahead() const { return held_run_ > 0 || catch_up_left_ > 0; }

 private:
  Deployer(DeploymentOptions options, const model::ParameterLayout& layout, std::string spec,
           std::unique_ptr<DeploymentSink> sink, TrainerProbe* probe);
  Status RestoreState(std::string_view state, std::span<const float> params);
  // The feedback mode a checkpoint's deployment state was written in, if it is a sparse
  // deployment's state that says so.
  static std::optional<sparse::FeedbackMode> CheckpointedFeedback(std::string_view state);
  // Sets options_.sparsifier.feedback and builds what that mode selects with (the error
  // feedback sparsifier and its residual, or the shadow selector).
  Status UseFeedback(sparse::FeedbackMode feedback);
  // The gate: the reason to hold this iteration, if any.
  std::optional<HoldReason> Gate(std::span<const float> trained,
                                 std::optional<double> window_accuracy);
  DeltaStats Hold(HoldReason reason, std::span<float> trained,
                  std::optional<double> window_accuracy);
  Result<DeltaStats> PublishDelta(std::span<float> trained, uint64_t version,
                                  std::span<const float> gradient);
  Status PublishSnapshot(uint64_t version);
  // Encodes `delta` (digest filled in), applies the decoded bytes to the served copy and
  // publishes them at delta.header.sequence; the encoded size.
  Result<uint64_t> SendSwapDelta(wire::Delta& delta);
  // dpu: local -= gradient * (trained - model_before_); then model_before_ = trained.
  void AccumulateLocal(std::span<const float> trained, std::span<const float> gradient);
  void RememberModel(std::span<const float> trained);
  // dpu: every local contribution restarts at zero from `model` (a swap deployed it all).
  void RestartLocalContributions(std::span<const float> model);
  // The delta for this iteration's selection, values in options_.values' meaning.
  wire::Delta BuildDelta(const sparse::SparseUpdate& update, bool from_residual,
                         uint64_t version) const;

  DeploymentOptions options_;
  std::vector<wire::TensorRange> layout_;
  std::vector<sparse::TensorRange> sparse_layout_;
  uint64_t layout_fingerprint_ = 0;
  std::string model_spec_;
  std::unique_ptr<DeploymentSink> sink_;
  TrainerProbe* probe_;
  std::unique_ptr<sparse::ErrorFeedbackSparsifier> sparsifier_;  // --feedback train
  std::unique_ptr<sparse::ShadowSelector> shadow_;               // --feedback shadow

  std::vector<float> served_;        // what replicas hold at version_
  std::vector<float> residual_;      // train mode: the update not applied yet
  std::vector<float> local_;         // dpu: local contribution per parameter since deployed
  std::vector<float> model_before_;  // dpu: the model's parameters before the next step
  std::vector<sparse::ContributionSums> totals_;  // dpu: this step's, per layout tensor
  std::atomic<uint64_t> served_digest_{0};
  uint64_t version_ = 0;
  uint64_t iterations_ = 0;           // deltas built, the sparsifier's iteration counter
  uint64_t last_snapshot_id_ = 0;     // ids increase, also across restarts (wall clock)
  uint64_t since_snapshot_ = 0;       // iterations since the last snapshot
  uint64_t failed_seen_ = 0;          // sink failures already answered with a snapshot
  uint64_t last_snapshot_bytes_ = 0;  // size of the last snapshot published
  // The gate. published_accuracy_: windowed accuracy when the last version went out.
  std::optional<double> published_accuracy_;
  bool holding_ = false;              // the accuracy gate holds
  bool held_by_trigger_ = false;      // the drift action hold is on
  bool non_finite_reported_ = false;  // logged once per burst of non-finite iterations
  uint64_t held_run_ = 0;             // train feedback: iterations held so far with the model ahead
  uint64_t catch_up_left_ = 0;        // train feedback: published iterations left before the reset
  std::atomic<bool> snapshot_requested_{false};
};

}  // namespace streamtrain::trainer
