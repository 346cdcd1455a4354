// Delta messages on the deltas topic: the k changed coordinates of one training iteration
// (docs/wire-format.md has the byte layout).
//
// EncodeDelta turns a Delta into bytes (indices coded with the smaller of Elias-Fano and a
// bitmap, values as f32 or f16/bf16 increments, CRC32C, optional HMAC-SHA256); DecodeDelta
// checks and parses them. Decoding never crashes on any input, never allocates more than
// the input's size justifies, and rejects bad input with a reason:
//   kCorrupt             truncated, bad magic, unknown version, CRC mismatch, HMAC mismatch
//                        (forged or wrong key), inconsistent contents;
//   kFailedPrecondition  an unsigned message while a key is configured.
// Pure functions; thread-safe.
//
//   ST_ASSIGN_OR_RETURN(std::string bytes, EncodeDelta(delta, {.hmac_key = key}));
//   ST_ASSIGN_OR_RETURN(Delta decoded, DecodeDelta(bytes, {.hmac_key = key}));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::wire {

inline constexpr uint8_t kDeltaFormatVersion = 1;
inline constexpr size_t kMaxModelIdBytes = 255;

// How a delta's values are meant; stored as one byte.
enum class ValueEncoding : uint8_t {
  kF32New = 0,         // f32: the coordinate's new value
  kF16Increment = 1,   // binary16 increment: new = old + float(increment)
  kBf16Increment = 2,  // bfloat16 increment: new = old + float(increment)
};

struct DeltaHeader {
  std::string model_id;             // at most 255 bytes
  uint64_t sequence = 0;            // this delta's sequence number
  uint64_t base_sequence = 0;       // the version it applies to; <= sequence
  int64_t producer_time_ms = 0;     // trainer wall clock at encode, ms since the epoch
  uint64_t digest_after = 0;        // ParameterDigest of the served parameters after apply
  uint64_t layout_fingerprint = 0;  // identifies the parameter layout (tensor sizes)
  ValueEncoding value_encoding = ValueEncoding::kF32New;
};

// The changed coordinates of one tensor. Fill straight from a per-tensor sparse update.
struct DeltaTensor {
  uint32_t tensor_index = 0;      // position in the layout; strictly ascending in a Delta
  uint64_t tensor_size = 0;       // the tensor's parameter count N, 1..2^32
  std::vector<uint32_t> indices;  // within the tensor, strictly ascending, < tensor_size
  std::vector<float> values;      // one per index: new values or increments (see encoding)
};

struct Delta {
  DeltaHeader header;
  std::vector<DeltaTensor> tensors;
};

struct EncodeOptions {
  std::optional<std::string> hmac_key;  // signs with HMAC-SHA256 when set; default unsigned
};

struct DecodeOptions {
  // When set, only messages signed with this key are accepted. When unset, signed messages
  // are accepted without checking the tag (the reader chose not to authenticate).
  std::optional<std::string> hmac_key;
};

// Encodes a delta; kInvalidArgument when the delta breaks the constraints above. With an
// increment encoding the values are rounded (nearest even) to f16/bf16.
Result<std::string> EncodeDelta(const Delta& delta, const EncodeOptions& options = {});
// Decodes and checks a delta (errors: see the header comment).
Result<Delta> DecodeDelta(std::string_view bytes, const DecodeOptions& options = {});

// k * value_bits + log2 C(n, k): the information-theoretic size of k values at n positions.
double EntropyBoundBits(uint64_t n, uint64_t k, int value_bits);
// Bits one value takes on the wire under `encoding` (32 or 16).
int ValueBits(ValueEncoding encoding);

}  // namespace streamtrain::wire
