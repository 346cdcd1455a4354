#include "deployment.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "streamtrain/common/logging.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/kafka/partition_reader.h"
#include "streamtrain/kafka/producer.h"
#include "streamtrain/sparse/contribution.h"
#include "streamtrain/wire/snapshot.h"
#include "trainer_probe.h"

namespace streamtrain::trainer {
namespace {

constexpr int32_t kPartition = 0;
// Kafka's default message.max.bytes is 1 MiB; a delta must fit in one message.
constexpr size_t kMaxDeltaBytes = 1000000;
constexpr int64_t kNewestScanMessages = 64;  // how far back Start() looks for our versions
// How long creating the sink waits for the deltas and snapshots topics' metadata.
constexpr auto kTopicLookupTimeout = std::chrono::seconds(5);
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t NowUs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

bool AllFinite(std::span<const float> values) {
  // Sums of non-finite values stay non-finite; a plain sum vectorises where a branch per
  // value would not. 0 * x keeps finite values from overflowing the sum.
  float acc = 0.0f;
  for (float v : values) acc += 0.0f * v;
  return acc == 0.0f;
}

const char* HoldReasonName(HoldReason reason) {
  return reason == HoldReason::kNonFinite ? "non_finite" : "accuracy";
}

}  // namespace

std::string_view DeployModeName(DeployMode mode) {
  switch (mode) {
    case DeployMode::kOff:
      return "off";
    case DeployMode::kSparse:
      return "sparse";
    case DeployMode::kDense:
      return "dense";
  }
  return "unknown";
}

Result<DeployMode> ParseDeployMode(std::string_view text) {
  if (text == "off") return DeployMode::kOff;
  if (text == "sparse") return DeployMode::kSparse;
  if (text == "dense") return DeployMode::kDense;
  return InvalidArgument("--deploy: unknown mode '" + std::string(text) +
                         "' (expected off|sparse|dense)");
}

Result<wire::ValueEncoding> ParseValueEncoding(std::string_view text) {
  if (text == "f32") return wire::ValueEncoding::kF32New;
  if (text == "f16") return wire::ValueEncoding::kF16Increment;
  if (text == "bf16") return wire::ValueEncoding::kBf16Increment;
  return InvalidArgument("--delta-values: unknown encoding '" + std::string(text) +
                         "' (expected f32|f16|bf16)");
}

// --- DeploymentSink -------------------------------------------------------------------

DeploymentSink::~DeploymentSink() {
  // Outstanding deltas are flushed by the producer's destructor; the reader goes first
  // (nothing it returned is still alive).
  reader_.reset();
  producer_.reset();
}

Result<std::unique_ptr<DeploymentSink>> DeploymentSink::Create(const kafka::ClientConfig& client,
                                                               const DeploymentOptions& options) {
  std::unique_ptr<DeploymentSink> sink(new DeploymentSink());
  sink->options_ = options;
  kafka::ProducerOptions producer{.client = client, .idempotent = true};
  // A delta is worth the most the moment it is made: send it now rather than batch it.
  producer.client.properties.try_emplace("linger.ms", "0");
  producer.client.properties.try_emplace("socket.nagle.disable", "true");
  ST_ASSIGN_OR_RETURN(sink->producer_, kafka::Producer::Create(producer));
  if (options.lookup_topics_at_start) {
    // Known topics let the first delta go out at once instead of after librdkafka's next
    // topic scan (up to 1 s). Not fatal: without it the first messages only wait longer.
    Status looked_up = sink->producer_->LookupTopics(
        {options.deltas_topic, options.snapshots_topic}, kTopicLookupTimeout);
    if (!looked_up.ok()) {
      GetLogger("deploy")->warn("{} (the first deltas may wait up to a second for it)",
                                looked_up.ToString());
    }
  }
  ST_ASSIGN_OR_RETURN(sink->reader_, kafka::PartitionReader::Create({.client = client}));
  return sink;
}

std::unique_ptr<DeploymentSink> DeploymentSink::CreateDryRun(const DeploymentOptions& options) {
  std::unique_ptr<DeploymentSink> sink(new DeploymentSink());
  sink->options_ = options;
  return sink;  // no producer, no reader: every method below checks
}

Status DeploymentSink::PublishDelta(std::string_view bytes) {
  if (!producer_) return Status::Ok();
  return producer_->Produce(options_.deltas_topic, options_.model_id, bytes, {}, kPartition);
}

Status DeploymentSink::PublishSnapshotChunk(std::string_view bytes) {
  if (!producer_) return Status::Ok();
  return producer_->Produce(options_.snapshots_topic, options_.model_id, bytes, {}, kPartition);
}

Status DeploymentSink::Flush() {
  if (!producer_) return Status::Ok();
  return producer_->Flush(options_.flush_timeout).WithContext("flush deployment");
}

Result<int64_t> DeploymentSink::DeltasEnd() {
  if (!reader_) return int64_t{0};
  ST_RETURN_IF_ERROR(Flush());
  ST_ASSIGN_OR_RETURN(auto marks, reader_->QueryWatermarks({options_.deltas_topic, kPartition},
                                                           options_.flush_timeout));
  return marks.high;
}

uint64_t DeploymentSink::failed_deliveries() const {
  return producer_ ? producer_->counters().failed : 0;
}

Result<std::optional<uint64_t>> DeploymentSink::NewestOn(const std::string& topic, bool deltas) {
  const kafka::TopicPartition tp{topic, kPartition};
  ST_ASSIGN_OR_RETURN(auto marks, reader_->QueryWatermarks(tp, options_.flush_timeout));
  if (marks.high <= marks.low) return std::optional<uint64_t>{};
  const int64_t from = std::max(marks.low, marks.high - kNewestScanMessages);
  ST_RETURN_IF_ERROR(reader_->Assign({{tp, from}}));
  std::optional<uint64_t> newest;
  const auto deadline = std::chrono::steady_clock::now() + options_.flush_timeout;
  while (reader_->positions().at(tp) < marks.high) {
    if (std::chrono::steady_clock::now() > deadline) {
      return Unavailable("reading " + topic + " up to offset " + std::to_string(marks.high) +
                         " timed out");
    }
    ST_ASSIGN_OR_RETURN(auto batch, reader_->PollBatch(64, std::chrono::milliseconds(200)));
    for (const auto& message : batch) {
      if (message.key() != options_.model_id) continue;
      if (deltas) {
        auto header = wire::PeekDeltaHeader(message.payload(), {.hmac_key = options_.hmac_key});
        if (header.ok() && header->model_id == options_.model_id) {
          newest = std::max(newest.value_or(0), header->sequence);
        }
      } else {
        auto chunk = wire::PeekSnapshotChunk(message.payload());
        if (chunk.ok() && chunk->info.model_id == options_.model_id) {
          newest = std::max(newest.value_or(0), chunk->info.sequence);
        }
      }
    }
  }
  return newest;
}

Result<std::optional<uint64_t>> DeploymentSink::NewestPublishedVersion() {
  if (!reader_) return std::optional<uint64_t>{};
  ST_ASSIGN_OR_RETURN(auto from_deltas, NewestOn(options_.deltas_topic, /*deltas=*/true));
  ST_ASSIGN_OR_RETURN(auto from_snapshots, NewestOn(options_.snapshots_topic, /*deltas=*/false));
  if (!from_deltas) return from_snapshots;
  if (!from_snapshots) return from_deltas;
  return std::optional<uint64_t>(std::max(*from_deltas, *from_snapshots));
}

// --- Deployer -------------------------------------------------------------------------

Deployer::Deployer(DeploymentOptions options, const model::ParameterLayout& layout,
                   std::string spec, std::unique_ptr<DeploymentSink> sink, TrainerProbe* probe)
    : options_(std::move(options)),
      layout_fingerprint_(layout.fingerprint()),
      model_spec_(std::move(spec)),
      sink_(std::move(sink)),
      probe_(probe) {
  for (const auto& t : layout.tensors()) {
    layout_.push_back({.offset = t.offset, .size = t.size});
    sparse_layout_.push_back({.offset = t.offset, .size = t.size});
  }
}

Deployer::~Deployer() = default;

Result<std::unique_ptr<Deployer>> Deployer::Create(const DeploymentOptions& options,
                                                   const model::ParameterLayout& layout,
                                                   std::string model_spec,
                                                   std::unique_ptr<DeploymentSink> sink,
                                                   TrainerProbe* probe) {
  if (options.mode == DeployMode::kOff) return InvalidArgument("--deploy: off has no deployer");
  if (!sink) return InvalidArgument("--brokers: deployment needs a Kafka cluster");
  if (options.model_id.empty() || options.model_id.size() > wire::kMaxModelIdBytes) {
    return InvalidArgument("--model-id: must be 1 to 255 bytes");
  }
  ST_RETURN_IF_ERROR(sparse::ValidateSparsifierOptions(options.sparsifier));
  std::unique_ptr<Deployer> d(
      new Deployer(options, layout, std::move(model_spec), std::move(sink), probe));
  if (options.mode == DeployMode::kSparse) {
    ST_RETURN_IF_ERROR(d->UseFeedback(options.sparsifier.feedback));
    if (options.sparsifier.kind == sparse::SparsifierKind::kDpu) {
      d->local_.assign(layout.parameter_count(), 0.0f);
    }
  }
  return d;
}

Status Deployer::UseFeedback(sparse::FeedbackMode feedback) {
  options_.sparsifier.feedback = feedback;
  sparsifier_.reset();
  shadow_.reset();
  residual_.clear();
  if (feedback == sparse::FeedbackMode::kTrain) {
    ST_ASSIGN_OR_RETURN(
        sparsifier_, sparse::ErrorFeedbackSparsifier::Create(options_.sparsifier, sparse_layout_));
    size_t parameters = 0;
    for (const auto& range : sparse_layout_) parameters += range.size;
    residual_.assign(parameters, 0.0f);
  } else {
    ST_ASSIGN_OR_RETURN(shadow_,
                        sparse::ShadowSelector::Create(options_.sparsifier, sparse_layout_));
  }
  return Status::Ok();
}

Result<uint64_t> Deployer::Start(std::span<const float> params, uint64_t version,
                                 std::string_view state) {
  static auto log = GetLogger("deploy");
  served_.assign(params.begin(), params.end());
  if (options_.mode == DeployMode::kSparse && options_.feedback_follows_checkpoint) {
    const auto written = CheckpointedFeedback(state);
    if (written && *written != options_.sparsifier.feedback) {
      log->info(
          "the checkpoint's deployment runs --feedback {}: it continues so (--feedback not "
          "given; pass it to refuse a checkpoint in another mode)",
          sparse::FeedbackModeName(*written));
      ST_RETURN_IF_ERROR(UseFeedback(*written));
    }
  }
  if (!state.empty()) ST_RETURN_IF_ERROR(RestoreState(state, params));
  // The checkpoint is written after a Publish, when the model holds `params`.
  if (!local_.empty()) model_before_.assign(params.begin(), params.end());
  served_digest_ = DigestParameters(served_);
  ST_ASSIGN_OR_RETURN(auto newest, sink_->NewestPublishedVersion());
  if (newest && *newest > version) {
    // Versions up to *newest went out after our checkpoint and died with the previous
    // process: continue above them, so no version number names two different models.
    log->warn(
        "versions up to {} were published after the checkpoint at {}; continuing at {} "
        "with a snapshot (replicas resync to it)",
        *newest, version, *newest + 1);
    version = *newest + 1;
  }
  version_ = version;
  if (probe_) probe_->DeployHolding(holding_);
  ST_RETURN_IF_ERROR(PublishSnapshot(version));
  log->info("{} deployment of model '{}' from version {} (digest {})",
            DeployModeName(options_.mode), options_.model_id, version, DigestToHex(served_digest_));
  return version;
}

wire::Delta Deployer::BuildDelta(const sparse::SparseUpdate& update, bool from_residual,
                                 uint64_t version) const {
  const bool increments = options_.values != wire::ValueEncoding::kF32New;
  wire::Delta delta;
  delta.header.model_id = options_.model_id;
  delta.header.sequence = version;
  delta.header.base_sequence = version_;
  delta.header.producer_time_ms = NowMs();
  delta.header.layout_fingerprint = layout_fingerprint_;
  delta.header.value_encoding = options_.values;
  delta.tensors.reserve(update.tensors.size());
  for (size_t t = 0; t < update.tensors.size(); ++t) {
    const sparse::TensorUpdate& selected = update.tensors[t];
    if (selected.indices.empty()) continue;
    wire::DeltaTensor out;
    out.tensor_index = static_cast<uint32_t>(t);
    out.tensor_size = layout_[t].size;
    out.indices.resize(selected.indices.size());
    out.values.resize(selected.indices.size());
    const uint64_t base = layout_[t].offset;
    for (size_t j = 0; j < selected.indices.size(); ++j) {
      const uint64_t i = selected.indices[j];
      out.indices[j] = static_cast<uint32_t>(i - base);
      const float v = selected.values[j];
      if (from_residual) {
        // v is the residual: the change to make.
        out.values[j] = increments ? v : served_[i] + v;
      } else {
        // v is the trained value: the value to reach.
        out.values[j] = increments ? v - served_[i] : v;
      }
    }
    delta.tensors.push_back(std::move(out));
  }
  return delta;
}

std::optional<HoldReason> Deployer::Gate(std::span<const float> trained,
                                         std::optional<double> window_accuracy) {
  if (!AllFinite(trained)) return HoldReason::kNonFinite;
  if (held_by_trigger_) return HoldReason::kAccuracy;
  if (options_.publish_gate_margin > 0 && window_accuracy && published_accuracy_ &&
      *window_accuracy < *published_accuracy_ - options_.publish_gate_margin) {
    return HoldReason::kAccuracy;
  }
  return std::nullopt;
}

DeltaStats Deployer::Hold(HoldReason reason, std::span<float> trained,
                          std::optional<double> window_accuracy) {
  static auto log = GetLogger("deploy");
  if (probe_) probe_->DeployHeld(HoldReasonName(reason));
  DeltaStats stats{.held = true};
  if (reason == HoldReason::kNonFinite) {
    if (!non_finite_reported_) {
      log->warn(
          "trained parameters hold NaN or infinite values: version {} not published, the step "
          "is dropped and the model returns to the served copy (diverging? lower --lr)",
          version_ + 1);
      non_finite_reported_ = true;
    }
    // The served copy is the last good model; in train mode the residual still holds what
    // was pending before this step, in shadow mode what the model was ahead is lost.
    std::copy(served_.begin(), served_.end(), trained.begin());
    held_run_ = catch_up_left_ = 0;
    stats.model_reset = true;
    return stats;
  }
  if (!holding_) {
    if (held_by_trigger_) {
      log->warn(
          "publish gate: held by the drift action hold after version {} (the model keeps "
          "training)",
          version_);
    } else {
      log->warn(
          "publish gate: windowed accuracy {:.4f} is more than {} below {:.4f} when version {} "
          "went out; holding deployment (the model keeps training)",
          window_accuracy.value_or(0), options_.publish_gate_margin,
          published_accuracy_.value_or(0), version_);
    }
    holding_ = true;
    if (probe_) probe_->DeployHolding(true);
  }
  if (options_.mode == DeployMode::kSparse &&
      options_.sparsifier.feedback == sparse::FeedbackMode::kTrain) {
    ++held_run_;  // the model runs ahead of the served copy
  }
  return stats;
}

Result<DeltaStats> Deployer::Publish(std::span<float> trained, uint64_t version,
                                     std::optional<double> window_accuracy,
                                     std::span<const float> gradient) {
  if (trained.size() != served_.size()) {
    return InvalidArgument("deploy: " + std::to_string(trained.size()) + " parameters, expected " +
                           std::to_string(served_.size()));
  }
  if (!gradient.empty() && gradient.size() != served_.size()) {
    return InvalidArgument("deploy: " + std::to_string(gradient.size()) + " gradients, expected " +
                           std::to_string(served_.size()));
  }
  if (version != version_ + 1) {
    return FailedPrecondition("deploy: version " + std::to_string(version) + " after " +
                              std::to_string(version_));
  }
  if (sink_->failed_deliveries() > failed_seen_) {
    failed_seen_ = sink_->failed_deliveries();
    GetLogger("deploy")->error("a delta delivery failed; a snapshot follows for the replicas");
    RequestSnapshot();
  }
  if (auto reason = Gate(trained, window_accuracy)) {
    // A step held for accuracy still moved the model; a non-finite one is dropped.
    if (*reason == HoldReason::kAccuracy) AccumulateLocal(trained, gradient);
    DeltaStats held = Hold(*reason, trained, window_accuracy);
    RememberModel(trained);
    return held;
  }
  non_finite_reported_ = false;
  if (holding_) {
    GetLogger("deploy")->info(
        "publish gate: windowed accuracy {:.4f} recovered; publishing "
        "version {}",
        window_accuracy.value_or(0), version);
    holding_ = false;
    if (probe_) probe_->DeployHolding(false);
  }
  // After a hold of H iterations the model stays ahead for H published iterations.
  catch_up_left_ += held_run_;
  held_run_ = 0;
  if (window_accuracy) published_accuracy_ = window_accuracy;
  DeltaStats stats;
  if (options_.mode == DeployMode::kDense) {
    std::copy(trained.begin(), trained.end(), served_.begin());
    served_digest_ = DigestParameters(served_);
    version_ = version;
    ST_RETURN_IF_ERROR(PublishSnapshot(version));
    if (probe_) probe_->DenseEquivalent(uint64_t{4} * served_.size());
    stats.coordinates = served_.size();
    return stats;
  }
  ST_ASSIGN_OR_RETURN(stats, PublishDelta(trained, version, gradient));
  RememberModel(trained);
  ++since_snapshot_;
  if (snapshot_requested_.exchange(false) ||
      (options_.snapshot_every > 0 && since_snapshot_ >= options_.snapshot_every)) {
    ST_RETURN_IF_ERROR(PublishSnapshot(version));
  }
  return stats;
}

Result<DeltaStats> Deployer::PublishDelta(std::span<float> trained, uint64_t version,
                                          std::span<const float> gradient) {
  const bool train_feedback = options_.sparsifier.feedback == sparse::FeedbackMode::kTrain;
  const size_t n = served_.size();
  double residual_sq = 0;
  bool stats_model_reset = false;
  sparse::SparseUpdate update;
  // dpu: the step's local contributions, the residual update (train) and the totals the
  // selection normalises by, in one pass (sparse::AccumulateStep).
  const bool fused = !local_.empty() && !gradient.empty();
  totals_.clear();  // none: the selection sums for itself
  if (fused) {
    const std::span<float> local(local_), residual(residual_);
    for (const sparse::TensorRange& r : sparse_layout_) {
      totals_.push_back(sparse::AccumulateStep(
          local.subspan(r.offset, r.size),
          train_feedback ? residual.subspan(r.offset, r.size) : std::span<float>(),
          gradient.subspan(r.offset, r.size), trained.subspan(r.offset, r.size),
          std::span<const float>(model_before_).subspan(r.offset, r.size),
          std::span<const float>(served_).subspan(r.offset, r.size)));
    }
  }
  if (train_feedback) {
    // Thesis Algorithm 3 after the optimizer: r += (trained - served); the k largest of r
    // are applied, the rest waits in r. When the model ran ahead during a hold, trained -
    // served is everything it is ahead, not one step.
    if (!fused) {
      for (size_t i = 0; i < n; ++i) residual_[i] += trained[i] - served_[i];
    }
    update = sparsifier_->Select(residual_, iterations_, local_, totals_);
  } else {
    update = shadow_->Select(trained, served_, iterations_, local_, totals_);
  }
  ++iterations_;
  wire::Delta delta = BuildDelta(update, train_feedback, version);
  ST_ASSIGN_OR_RETURN(delta.header.digest_after,
                      wire::DigestAfterApply(delta, layout_, served_, served_digest_));
  ST_ASSIGN_OR_RETURN(std::string bytes,
                      wire::EncodeDelta(delta, {.hmac_key = options_.hmac_key, .layout = layout_}));
  if (bytes.size() > kMaxDeltaBytes) {
    return ResourceExhausted("deploy: a delta of " + std::to_string(bytes.size()) +
                             " bytes does not fit a Kafka message (1 MB); lower --ratio or "
                             "use --deploy dense (chunked snapshots)");
  }
  // Invariant 4: the served copy changes only through the bytes the replicas receive.
  ST_ASSIGN_OR_RETURN(wire::Delta decoded,
                      wire::DecodeDelta(bytes, {.hmac_key = options_.hmac_key, .layout = layout_}));
  uint64_t digest = served_digest_;
  if (train_feedback) {
    // Whatever rounding kept out of the served copy (f16/bf16 increments, or float
    // addition) goes back into the residual, so no part of an update is lost.
    std::vector<float> before;
    before.reserve(update.size());
    for (const auto& t : decoded.tensors) {
      for (uint32_t j : t.indices) before.push_back(served_[layout_[t.tensor_index].offset + j]);
    }
    ST_RETURN_IF_ERROR(wire::ApplyDelta(decoded, layout_, served_, &digest));
    size_t b = 0;
    for (const auto& t : update.tensors) {
      for (size_t j = 0; j < t.indices.size(); ++j, ++b) {
        const uint64_t i = t.indices[j];
        residual_[i] = t.values[j] - (served_[i] - before[b]);
      }
    }
    for (size_t i = 0; i < n; ++i) residual_sq += double(residual_[i]) * residual_[i];
    if (catch_up_left_ > 0) --catch_up_left_;
    if (catch_up_left_ > 0) {
      // Catching up after a hold: the model stays ahead, so the residual keeps only what
      // the model does not hold (next time trained - served is added again).
      for (size_t i = 0; i < n; ++i) residual_[i] -= trained[i] - served_[i];
    } else {
      std::copy(served_.begin(), served_.end(), trained.begin());
      stats_model_reset = true;
    }
  } else {
    ST_RETURN_IF_ERROR(wire::ApplyDelta(decoded, layout_, served_, &digest));
    for (size_t i = 0; i < n; ++i) {
      const double d = double(trained[i]) - served_[i];
      residual_sq += d * d;
    }
  }
  served_digest_ = digest;
  version_ = version;
  DeltaStats stats{
      .coordinates = update.size(), .bytes = bytes.size(), .model_reset = stats_model_reset};
  Status sent = sink_->PublishDelta(bytes);
  if (!sent.ok()) {
    // The served copy moved on; replicas will see a gap and resync from the snapshot.
    GetLogger("deploy")->error("delta {} not published: {}", version, sent.ToString());
    if (probe_) probe_->DeltaPublishFailed();
    RequestSnapshot();
  } else if (probe_) {
    probe_->DeltaPublished(stats.coordinates, stats.bytes, uint64_t{4} * n);
  }
  if (probe_) probe_->ResidualNorm(std::sqrt(residual_sq));
  return stats;
}

void Deployer::AccumulateLocal(std::span<const float> trained, std::span<const float> gradient) {
  if (local_.empty() || gradient.empty()) return;
  sparse::AccumulateLocalContribution(local_, gradient, trained, model_before_);
}

void Deployer::RestartLocalContributions(std::span<const float> model) {
  if (local_.empty()) return;
  std::fill(local_.begin(), local_.end(), 0.0f);
  model_before_.assign(model.begin(), model.end());
}

void Deployer::RememberModel(std::span<const float> trained) {
  if (!local_.empty()) std::copy(trained.begin(), trained.end(), model_before_.begin());
}

Status Deployer::PublishSnapshot(uint64_t version) {
  wire::SnapshotInfo info;
  info.model_id = options_.model_id;
  // Wall-clock microseconds keep ids increasing across restarts without extra state.
  info.snapshot_id = std::max(last_snapshot_id_ + 1, NowUs());
  info.sequence = version;
  ST_ASSIGN_OR_RETURN(info.deltas_offset, sink_->DeltasEnd());
  info.digest = served_digest_;
  info.layout_fingerprint = layout_fingerprint_;
  info.parameter_count = served_.size();
  info.model_spec = model_spec_;
  ST_ASSIGN_OR_RETURN(auto chunks, wire::EncodeSnapshot(info, served_, wire::kMaxSnapshotChunkBytes,
                                                        options_.hmac_key));
  uint64_t bytes = 0;
  for (const auto& chunk : chunks) {
    ST_RETURN_IF_ERROR(sink_->PublishSnapshotChunk(chunk).WithContext("snapshot"));
    bytes += chunk.size();
  }
  last_snapshot_id_ = info.snapshot_id;
  last_snapshot_bytes_ = bytes;
  since_snapshot_ = 0;
  if (probe_) probe_->SnapshotPublished(bytes);
  GetLogger("deploy")->debug("snapshot {} at version {}: {} chunks, {} bytes", info.snapshot_id,
                             version, chunks.size(), bytes);
  return Status::Ok();
}

}  // namespace streamtrain::trainer
