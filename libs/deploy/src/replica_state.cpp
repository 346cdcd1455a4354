#include "streamtrain/deploy/replica_state.h"

#include <algorithm>
#include <utility>

#include "streamtrain/common/parameter_digest.h"

namespace streamtrain::deploy {
namespace {

DeltaResult Outcome(DeltaOutcome outcome, std::string reason, const wire::DeltaHeader* header) {
  DeltaResult r{outcome, std::move(reason)};
  if (header != nullptr) {
    r.sequence = header->sequence;
    r.producer_time_ms = header->producer_time_ms;
  }
  return r;
}

}  // namespace

std::string_view DeltaOutcomeName(DeltaOutcome outcome) {
  switch (outcome) {
    case DeltaOutcome::kApplied:
      return "applied";
    case DeltaOutcome::kDuplicate:
      return "duplicate";
    case DeltaOutcome::kGap:
      return "gap";
    case DeltaOutcome::kCorrupt:
      return "corrupt";
    case DeltaOutcome::kDigestMismatch:
      return "digest_mismatch";
    case DeltaOutcome::kWrongModel:
      return "wrong_model";
    case DeltaOutcome::kLayoutMismatch:
      return "layout_mismatch";
  }
  return "unknown";
}

ReplicaState::ReplicaState(Options options) : options_(std::move(options)) {
  for (const wire::TensorRange& t : options_.layout) {
    parameter_count_ = std::max(parameter_count_, t.offset + t.size);
  }
}

Status ReplicaState::LoadSnapshot(wire::AssembledSnapshot snapshot, int64_t producer_time_ms) {
  const wire::SnapshotInfo& info = snapshot.info;
  const std::string what = "snapshot " + std::to_string(info.snapshot_id);
  if (info.model_id != options_.model_id) {
    return FailedPrecondition(what + ": model id '" + info.model_id + "', serving '" +
                              options_.model_id + "'");
  }
  if (info.layout_fingerprint != options_.layout_fingerprint) {
    return FailedPrecondition(what + ": layout fingerprint " +
                              DigestToHex(info.layout_fingerprint) + ", the served model has " +
                              DigestToHex(options_.layout_fingerprint));
  }
  if (info.parameter_count != parameter_count_ || snapshot.params.size() != parameter_count_) {
    return FailedPrecondition(what + ": " + std::to_string(info.parameter_count) +
                              " parameters, the served model has " +
                              std::to_string(parameter_count_));
  }
  const uint64_t digest = DigestParameters(snapshot.params);
  if (digest != info.digest) {
    return Corrupt(what + ": digest mismatch: expected " + DigestToHex(info.digest) + " got " +
                   DigestToHex(digest));
  }
  params_ = std::move(snapshot.params);
  digest_ = digest;
  version_ = info.sequence;
  version_time_ms_ = producer_time_ms;
  snapshot_id_ = info.snapshot_id;
  loaded_ = true;
  return Status::Ok();
}

DeltaResult ReplicaState::OnDelta(std::string_view bytes) {
  Result<wire::Delta> delta =
      wire::DecodeDelta(bytes, {.hmac_key = options_.hmac_key, .layout = options_.layout});
  if (!delta.ok()) {
    if (auto by_header = OnUndecodedDelta(bytes)) return *by_header;
    return Outcome(DeltaOutcome::kCorrupt, delta.status().ToString(), nullptr);
  }
  return OnDecodedDelta(*delta);
}

std::optional<DeltaResult> ReplicaState::OnUndecodedDelta(std::string_view bytes) {
  // A v2 delta is split by the reader's layout, so one of another layout can fail to
  // decode here; that is a layout mismatch, not damage.
  Result<wire::DeltaHeader> h = wire::PeekDeltaHeader(bytes, {.hmac_key = options_.hmac_key});
  if (!h.ok() || h->layout_fingerprint == options_.layout_fingerprint) return std::nullopt;
  // No tensors: OnDecodedDelta returns at or before the layout check, never applies.
  return OnDecodedDelta(wire::Delta{.header = *h, .tensors = {}});
}

DeltaResult ReplicaState::OnDecodedDelta(const wire::Delta& delta) {
  const wire::DeltaHeader& h = delta.header;
  const std::string what = "delta " + std::to_string(h.sequence);
  if (h.model_id != options_.model_id) {
    return Outcome(DeltaOutcome::kWrongModel,
                   what + ": model id '" + h.model_id + "', serving '" + options_.model_id + "'",
                   &h);
  }
  if (!loaded_) return Outcome(DeltaOutcome::kGap, what + ": no snapshot loaded yet", &h);
  if (h.sequence <= version_) {
    return Outcome(DeltaOutcome::kDuplicate,
                   what + ": already at version " + std::to_string(version_), &h);
  }
  if (h.layout_fingerprint != options_.layout_fingerprint) {
    return Outcome(DeltaOutcome::kLayoutMismatch,
                   what + ": layout fingerprint " + DigestToHex(h.layout_fingerprint) +
                       ", the served model has " + DigestToHex(options_.layout_fingerprint),
                   &h);
  }
  if (h.sequence > version_ + 1) {
    return Outcome(DeltaOutcome::kGap,
                   what + ": expected " + std::to_string(version_ + 1) + " (deltas " +
                       std::to_string(version_ + 1) + ".." + std::to_string(h.sequence - 1) +
                       " missing)",
                   &h);
  }
  if (h.base_sequence != version_) {
    return Outcome(DeltaOutcome::kCorrupt,
                   what + ": base sequence " + std::to_string(h.base_sequence) +
                       " is not the applied version " + std::to_string(version_),
                   &h);
  }
  // Checked before touching anything, so a mismatch never changes the served values.
  Result<uint64_t> after = wire::DigestAfterApply(delta, options_.layout, params_, digest_);
  if (!after.ok()) return Outcome(DeltaOutcome::kCorrupt, after.status().ToString(), &h);
  if (*after != h.digest_after) {
    return Outcome(DeltaOutcome::kDigestMismatch,
                   what + ": digest after apply would be " + DigestToHex(*after) +
                       ", the trainer's is " + DigestToHex(h.digest_after),
                   &h);
  }
  Status applied = wire::ApplyDelta(delta, options_.layout, params_, &digest_);
  if (!applied.ok()) return Outcome(DeltaOutcome::kCorrupt, applied.ToString(), &h);
  version_ = h.sequence;
  version_time_ms_ = h.producer_time_ms;
  return Outcome(DeltaOutcome::kApplied, "", &h);
}

}  // namespace streamtrain::deploy
