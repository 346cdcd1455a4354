#include "streamtrain/wire/apply.h"

#include <cassert>
#include <string>
#include <vector>

#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/wire/half.h"

namespace streamtrain::wire {
namespace {

// Everything that can be wrong is found here, before the first write, so apply is
// all-or-nothing except for the digest check (which restores).
Status CheckFits(const Delta& delta, std::span<const TensorRange> layout, size_t param_count) {
  const auto e = static_cast<uint8_t>(delta.header.value_encoding);
  if (e > static_cast<uint8_t>(ValueEncoding::kBf16Increment)) {
    return Corrupt("unknown value encoding " + std::to_string(e));
  }
  for (size_t i = 0; i < delta.tensors.size(); ++i) {
    const DeltaTensor& t = delta.tensors[i];
    const std::string where = "tensor " + std::to_string(t.tensor_index) + ": ";
    if (i > 0 && t.tensor_index <= delta.tensors[i - 1].tensor_index) {
      return Corrupt(where + "tensor indices not strictly ascending");
    }
    if (t.tensor_index >= layout.size()) {
      return Corrupt(where + "not in the layout of " + std::to_string(layout.size()) + " tensors");
    }
    const TensorRange& range = layout[t.tensor_index];
    if (t.tensor_size != range.size) {
      return Corrupt(where + "size " + std::to_string(t.tensor_size) + " but the layout has " +
                     std::to_string(range.size));
    }
    if (range.offset > param_count || range.size > param_count - range.offset) {
      return Corrupt(where + "layout range beyond the parameters");
    }
    if (t.indices.size() != t.values.size()) return Corrupt(where + "indices/values mismatch");
    for (size_t j = 0; j < t.indices.size(); ++j) {
      if (t.indices[j] >= range.size) return Corrupt(where + "index >= tensor size");
      if (j > 0 && t.indices[j] <= t.indices[j - 1]) {
        return Corrupt(where + "indices not strictly ascending");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

float AppliedValue(float old_value, float value, ValueEncoding encoding) {
  switch (encoding) {
    case ValueEncoding::kF32New:
      return value;
    case ValueEncoding::kF16Increment:
      return old_value + HalfToFloat(FloatToHalf(value));
    case ValueEncoding::kBf16Increment:
      return old_value + Bfloat16ToFloat(FloatToBfloat16(value));
  }
  return value;
}

namespace {

// How far ahead the apply loop prefetches: coordinates at 1% density are ~400 bytes apart,
// so nearly every one is a cache miss (and, in a 100 MB model, a TLB miss); asking for the
// line a few dozen coordinates early overlaps those misses instead of paying them in turn.
constexpr size_t kPrefetchDistance = 32;

// The apply loop for one value encoding (a template, so the per-value switch and the
// unused conversions vanish from the hot loop).
template <ValueEncoding kEncoding>
uint64_t ApplyTensors(const Delta& delta, std::span<const TensorRange> layout,
                      std::span<float> params, uint64_t d, std::vector<float>& saved) {
  float* const p = params.data();
  for (const DeltaTensor& t : delta.tensors) {
    const uint64_t offset = layout[t.tensor_index].offset;
    const uint32_t* const idx = t.indices.data();
    const float* const values = t.values.data();
    const size_t k = t.indices.size();
    for (size_t j = 0; j < k; ++j) {
      if (j + kPrefetchDistance < k) __builtin_prefetch(p + offset + idx[j + kPrefetchDistance], 1);
      const uint64_t at = offset + idx[j];
      const float old_value = p[at];
      const float new_value = AppliedValue(old_value, values[j], kEncoding);
      d = UpdateDigest(d, at, old_value, new_value);
      p[at] = new_value;
      saved.push_back(old_value);
    }
  }
  return d;
}

}  // namespace

Status ApplyDelta(const Delta& delta, std::span<const TensorRange> layout, std::span<float> params,
                  uint64_t* digest) {
  assert(digest != nullptr);
  ST_RETURN_IF_ERROR(CheckFits(delta, layout, params.size()));
  size_t total = 0;
  for (const DeltaTensor& t : delta.tensors) total += t.indices.size();
  // Reused across calls: a fresh k-float buffer per call (1 MB for ResNet-50 at 1%) cost
  // page faults on every call and halved the throughput.
  thread_local std::vector<float> saved;
  saved.clear();
  saved.reserve(total);
  uint64_t d = *digest;
  switch (delta.header.value_encoding) {
    case ValueEncoding::kF32New:
      d = ApplyTensors<ValueEncoding::kF32New>(delta, layout, params, d, saved);
      break;
    case ValueEncoding::kF16Increment:
      d = ApplyTensors<ValueEncoding::kF16Increment>(delta, layout, params, d, saved);
      break;
    case ValueEncoding::kBf16Increment:
      d = ApplyTensors<ValueEncoding::kBf16Increment>(delta, layout, params, d, saved);
      break;
  }
  if (d != delta.header.digest_after) {
    size_t s = 0;
    for (const DeltaTensor& t : delta.tensors) {
      const uint64_t offset = layout[t.tensor_index].offset;
      for (uint32_t index : t.indices) params[offset + index] = saved[s++];
    }
    return Corrupt("digest mismatch after apply: expected " +
                   DigestToHex(delta.header.digest_after) + " got " + DigestToHex(d));
  }
  *digest = d;
  return Status::Ok();
}

Result<uint64_t> DigestAfterApply(const Delta& delta, std::span<const TensorRange> layout,
                                  std::span<const float> params, uint64_t digest) {
  ST_RETURN_IF_ERROR(CheckFits(delta, layout, params.size()));
  const float* const p = params.data();
  for (const DeltaTensor& t : delta.tensors) {
    const uint64_t offset = layout[t.tensor_index].offset;
    const size_t k = t.indices.size();
    for (size_t j = 0; j < k; ++j) {
      if (j + kPrefetchDistance < k) {
        __builtin_prefetch(p + offset + t.indices[j + kPrefetchDistance], 0);
      }
      const uint64_t at = offset + t.indices[j];
      const float old_value = p[at];
      digest = UpdateDigest(digest, at, old_value,
                            AppliedValue(old_value, t.values[j], delta.header.value_encoding));
    }
  }
  return digest;
}

}  // namespace streamtrain::wire
