// ApplyDelta: the one function that changes served parameters from a Delta, used by the
// trainer on its own served copy and by every replica, so both sides stay bit-identical
// (DESIGN.md, invariants 2 and 4).
//
// Call order: check the header (sequence, layout_fingerprint against your layout: both are
// the caller's job), then ApplyDelta. The trainer computes header.digest_after with
// DigestAfterApply before encoding. All-or-nothing: on any error, params and *digest are as
// before. Not thread-safe for the same params; the functions hold no state.
//
//   ST_RETURN_IF_ERROR(ApplyDelta(delta, layout, params, &digest));
//   // params now equal the trainer's served parameters at delta.header.sequence
#pragma once

#include <cstdint>
#include <span>

#include "streamtrain/common/status.h"
#include "streamtrain/wire/delta.h"

namespace streamtrain::wire {

// The value coordinate `old_value` takes under one delta value: `value` itself for
// kF32New, old + float(f16/bf16(value)) for increments (rounded the way the encoder does, so
// applying a Delta before or after an encode/decode round trip gives the same bits).
float AppliedValue(float old_value, float value, ValueEncoding encoding);

// Applies `delta` to `params`, updates *digest in O(k) and checks it against
// header.digest_after. kCorrupt for a tensor index, size or coordinate that does not fit
// `layout`/`params` (nothing changed), or "digest mismatch after apply: expected X got Y"
// (old values restored; the replica should resync).
Status ApplyDelta(const Delta& delta, std::span<const TensorRange> layout, std::span<float> params,
                  uint64_t* digest);

// The digest `params` would have after ApplyDelta (ignores header.digest_after); what the
// trainer puts in header.digest_after. kCorrupt as ApplyDelta for a delta that does not fit.
Result<uint64_t> DigestAfterApply(const Delta& delta, std::span<const TensorRange> layout,
                                  std::span<const float> params, uint64_t digest);

}  // namespace streamtrain::wire
