// The Deployer's retraining swaps: a full one replaces the served copy with a snapshot, a
// partial one (partial_swap.h) sends k coordinates as ordinary deltas, so replicas need
// nothing new. Split from deployment.cpp, which holds the per-iteration path.
#include <algorithm>
#include <cmath>

#include "deployment.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/wire/apply.h"
#include "trainer_probe.h"

namespace streamtrain::trainer {
namespace {

bool AllFinite(std::span<const float> values) {
  return std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); });
}

}  // namespace

Result<SwapStats> Deployer::Replace(std::span<const float> params, uint64_t version) {
  if (params.size() != served_.size()) return InvalidArgument("deploy: parameter count changed");
  if (!AllFinite(params)) {
    if (probe_) probe_->DeployHeld("non_finite");
    GetLogger("deploy")->warn(
        "the retrained model holds NaN or infinite values: not published, version {} stays "
        "served",
        version_);
    return SwapStats{};
  }
  served_.assign(params.begin(), params.end());
  if (!residual_.empty()) std::fill(residual_.begin(), residual_.end(), 0.0f);
  RestartLocalContributions(params);  // every coordinate was deployed
  held_run_ = catch_up_left_ = 0;
  served_digest_ = DigestParameters(served_);
  version_ = version;
  ST_RETURN_IF_ERROR(PublishSnapshot(version));
  return SwapStats{.published = true,
                   .versions = 1,
                   .coordinates = served_.size(),
                   .bytes = last_snapshot_bytes_};
}

Result<SwapStats> Deployer::ReplaceCoordinates(std::span<const float> params,
                                               std::span<const uint64_t> mask, uint64_t version) {
  if (params.size() != served_.size()) return InvalidArgument("deploy: parameter count changed");
  if (version != version_ + 1) {
    return FailedPrecondition("deploy: version " + std::to_string(version) + " after " +
                              std::to_string(version_));
  }
  for (size_t j = 0; j < mask.size(); ++j) {
    if (mask[j] >= served_.size() || (j > 0 && mask[j] <= mask[j - 1])) {
      return InvalidArgument("deploy: a partial swap's mask must be ascending indices below " +
                             std::to_string(served_.size()));
    }
    if (!std::isfinite(params[mask[j]])) {
      if (probe_) probe_->DeployHeld("non_finite");
      GetLogger("deploy")->warn(
          "the partially swapped model holds NaN or infinite values: not published, version "
          "{} stays served",
          version_);
      return SwapStats{};
    }
  }
  if (sink_->failed_deliveries() > failed_seen_) {
    failed_seen_ = sink_->failed_deliveries();
    RequestSnapshot();
  }
  SwapStats stats{.published = true};
  for (size_t from = 0; from < mask.size(); from += kMaxSwapDeltaCoordinates) {
    const auto chunk =
        mask.subspan(from, std::min<size_t>(kMaxSwapDeltaCoordinates, mask.size() - from));
    sparse::SparseUpdate update;
    update.tensors.resize(sparse_layout_.size());
    size_t t = 0;
    for (uint64_t i : chunk) {
      while (t + 1 < sparse_layout_.size() &&
             i >= sparse_layout_[t].offset + sparse_layout_[t].size) {
        ++t;
      }
      update.tensors[t].indices.push_back(i);
      update.tensors[t].values.push_back(params[i]);
    }
    wire::Delta delta = BuildDelta(update, /*from_residual=*/false, version + stats.versions);
    ST_ASSIGN_OR_RETURN(uint64_t bytes, SendSwapDelta(delta));
    stats.bytes += bytes;
    stats.coordinates += chunk.size();
    stats.versions += 1;
  }
  // The model continues from the served copy: nothing the old model had pending applies.
  if (!residual_.empty()) std::fill(residual_.begin(), residual_.end(), 0.0f);
  // The rest was rewound to the served values: nothing is pending anywhere, so the path
  // integrals restart everywhere, from the swapped-in model (== params).
  RestartLocalContributions(params);
  held_run_ = catch_up_left_ = 0;
  since_snapshot_ += stats.versions;
  if (snapshot_requested_.exchange(false) ||
      (options_.snapshot_every > 0 && since_snapshot_ >= options_.snapshot_every)) {
    ST_RETURN_IF_ERROR(PublishSnapshot(version_));
  }
  return stats;
}

Result<uint64_t> Deployer::SendSwapDelta(wire::Delta& delta) {
  ST_ASSIGN_OR_RETURN(delta.header.digest_after,
                      wire::DigestAfterApply(delta, layout_, served_, served_digest_));
  ST_ASSIGN_OR_RETURN(std::string bytes,
                      wire::EncodeDelta(delta, {.hmac_key = options_.hmac_key, .layout = layout_}));
  // Invariant 4: the served copy changes only through the bytes the replicas receive.
  ST_ASSIGN_OR_RETURN(wire::Delta decoded,
                      wire::DecodeDelta(bytes, {.hmac_key = options_.hmac_key, .layout = layout_}));
  uint64_t digest = served_digest_;
  ST_RETURN_IF_ERROR(wire::ApplyDelta(decoded, layout_, served_, &digest));
  served_digest_ = digest;
  version_ = delta.header.sequence;
  uint64_t coordinates = 0;
  for (const auto& t : decoded.tensors) coordinates += t.indices.size();
  Status sent = sink_->PublishDelta(bytes);
  if (!sent.ok()) {
    // The served copy moved on; replicas will see a gap and resync from the snapshot.
    GetLogger("deploy")->error("swap delta {} not published: {}", version_, sent.ToString());
    if (probe_) probe_->DeltaPublishFailed();
    RequestSnapshot();
  } else if (probe_) {
    probe_->DeltaPublished(coordinates, bytes.size(), uint64_t{4} * served_.size());
  }
  return bytes.size();
}

}  // namespace streamtrain::trainer
