// ReplicaState: the parameters a replica serves and the rules that move them forward.
//
// Holds the flat parameter vector, the applied version (the sequence of the last delta or
// snapshot) and its digest, for one model id and one parameter layout. LoadSnapshot replaces
// everything with a checked snapshot; OnDelta applies a delta only when it is the next one
// (DESIGN.md, invariant 3) and its digest after apply matches (invariant 2). Every other
// delta is classified and leaves the state untouched: a delta is never partly applied.
//
// Call order: construct with the layout of the model being served, LoadSnapshot, then
// OnDelta per message. On kGap or kDigestMismatch the caller resyncs (a newer snapshot into
// another ReplicaState, replay, swap). Thread safety: none; one thread owns a ReplicaState.
//
//   ReplicaState state({.model_id = "fashion", .layout = ranges, .layout_fingerprint = fp});
//   ST_RETURN_IF_ERROR(state.LoadSnapshot(std::move(snapshot)));
//   if (state.OnDelta(bytes).outcome == DeltaOutcome::kGap) Resync();
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/wire/apply.h"
#include "streamtrain/wire/delta.h"
#include "streamtrain/wire/snapshot.h"

namespace streamtrain::deploy {

// What OnDelta did with one delta.
enum class DeltaOutcome {
  kApplied,         // sequence == version + 1: applied, digest verified
  kDuplicate,       // sequence <= version: already applied, ignored
  kGap,             // sequence > version + 1 (or nothing loaded yet): resync needed
  kCorrupt,         // undecodable, unauthenticated or inconsistent bytes: rejected
  kDigestMismatch,  // the digest after apply would differ from the trainer's: resync needed
  kWrongModel,      // another model id: ignored
  kLayoutMismatch,  // another parameter layout: rejected
};

// "applied", "duplicate", "gap", "corrupt", "digest_mismatch", "wrong_model",
// "layout_mismatch".
std::string_view DeltaOutcomeName(DeltaOutcome outcome);

struct DeltaResult {
  DeltaOutcome outcome = DeltaOutcome::kCorrupt;
  std::string reason;            // why, for logs; empty when applied
  uint64_t sequence = 0;         // the delta's sequence (0 when it did not decode)
  int64_t producer_time_ms = 0;  // the trainer's clock at encode (0 when it did not decode)
};

struct ReplicaStateOptions {
  // The model id this replica serves; deltas and snapshots of other ids are refused.
  std::string model_id;
  // The served model's tensors in the flat vector (offset, size), in layout order.
  std::vector<wire::TensorRange> layout;
  // The served model's layout fingerprint (model::ParameterLayout::fingerprint()).
  uint64_t layout_fingerprint = 0;
  // When set, only deltas signed with this key are accepted. Default: none.
  std::optional<std::string> hmac_key;
};

class ReplicaState {
 public:
  using Options = ReplicaStateOptions;

  explicit ReplicaState(Options options);

  // Replaces the served parameters with `snapshot` after checking its model id, layout
  // fingerprint, parameter count and digest (FailedPrecondition / Corrupt, state unchanged).
  // `producer_time_ms` is when it was produced, if known (for staleness).
  Status LoadSnapshot(wire::AssembledSnapshot snapshot, int64_t producer_time_ms = 0);
  // Classifies and, when it is the next one, applies a delta message.
  DeltaResult OnDelta(std::string_view bytes);
  // As OnDelta, for a delta already decoded (and authenticated) by the caller.
  DeltaResult OnDecodedDelta(const wire::Delta& delta);
  // For a delta that did not decode over this layout: when its (checked) header names
  // another layout, the header alone classifies it (wrong model, duplicate, layout
  // mismatch) as OnDelta would; nullopt when the header is damaged or names this layout.
  std::optional<DeltaResult> OnUndecodedDelta(std::string_view bytes);

  // True once a snapshot is loaded.
  bool loaded() const { return loaded_; }
  // The applied version: the sequence the parameters correspond to.
  uint64_t version() const { return version_; }
  // ParameterDigest of params(), kept in O(k) per delta.
  uint64_t digest() const { return digest_; }
  // Producer time (ms since the epoch) of the applied version; 0 when unknown.
  int64_t version_time_ms() const { return version_time_ms_; }
  // Snapshot id of the last loaded snapshot.
  uint64_t snapshot_id() const { return snapshot_id_; }
  std::span<const float> params() const { return params_; }
  uint64_t parameter_count() const { return parameter_count_; }
  const Options& options() const { return options_; }

 private:
  Options options_;
  uint64_t parameter_count_ = 0;  // sum of the layout's sizes
  bool loaded_ = false;
  uint64_t version_ = 0;
  uint64_t digest_ = 0;
  int64_t version_time_ms_ = 0;
  uint64_t snapshot_id_ = 0;
  std::vector<float> params_;
};

}  // namespace streamtrain::deploy
