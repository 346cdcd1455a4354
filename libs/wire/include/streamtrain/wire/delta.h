// Delta messages on the deltas topic: the k changed coordinates of one training iteration
// (docs/wire-format.md has the byte layout).
//
// EncodeDelta turns a Delta into bytes (format v2: one index code, the smaller of Elias-Fano
// and a bitmap, over the concatenated parameter vector of the layout; values as f32 or
// f16/bf16 increments; CRC32C, optional HMAC-SHA256); DecodeDelta checks and parses v2 and
// the older v1 (per-tensor framing). A v2 delta carries no tensor sizes: the layout
// fingerprint pins them, and the reader passes the layout it serves to split the indices
// back into tensors. Decoding never crashes on any input, never allocates more than the
// input's size justifies, and rejects bad input with a reason:
//   kCorrupt             truncated, bad magic, unknown version, CRC mismatch, HMAC mismatch
//                        (forged or wrong key), inconsistent contents, an index beyond the
//                        layout;
//   kFailedPrecondition  an unsigned message while a key is configured; a v2 delta with
//                        changes decoded without a layout.
// Pure functions; thread-safe.
//
//   ST_ASSIGN_OR_RETURN(std::string bytes, EncodeDelta(delta, {.hmac_key = key, .layout = l}));
//   ST_ASSIGN_OR_RETURN(Delta decoded, DecodeDelta(bytes, {.hmac_key = key, .layout = l}));
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::wire {

// The version EncodeDelta writes by default; DecodeDelta reads this and every older one.
inline constexpr uint8_t kDeltaFormatVersion = 2;
// Per-tensor framing (index, size, k, index code); still decoded, written on request only.
inline constexpr uint8_t kDeltaFormatVersionV1 = 1;
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

// One tensor of a parameter layout: a range of the flat parameter vector.
struct TensorRange {
  uint64_t offset = 0;  // first parameter of the tensor in the flat vector
  uint64_t size = 0;    // parameter count
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
  // The model's layout (sizes in order; offsets are not read). v2 numbers coordinates over
  // the concatenated tensors, so it needs every tensor's size, also of tensors the delta
  // leaves out. Default empty: taken from the delta, which must then list tensors 0..T-1.
  std::span<const TensorRange> layout;
  // kDeltaFormatVersion (default) or kDeltaFormatVersionV1, for readers not yet upgraded.
  uint8_t version = kDeltaFormatVersion;
};

struct DecodeOptions {
  // When set, only messages signed with this key are accepted. When unset, signed messages
  // are accepted without checking the tag (the reader chose not to authenticate).
  std::optional<std::string> hmac_key;
  // The layout the reader serves (sizes in order); needed by v2 deltas that change
  // anything, ignored by v1. The caller checks header.layout_fingerprint against it.
  std::span<const TensorRange> layout;
};

// Encodes a delta; kInvalidArgument when the delta breaks the constraints above. With an
// increment encoding the values are rounded (nearest even) to f16/bf16.
Result<std::string> EncodeDelta(const Delta& delta, const EncodeOptions& options = {});
// Decodes and checks a delta (errors: see the header comment). A v2 delta decodes to the
// tensors it changes, with tensor_size from the layout.
Result<Delta> DecodeDelta(std::string_view bytes, const DecodeOptions& options = {});
// Checks integrity (CRC, HMAC as in DecodeDelta) and parses only the header: enough to
// route, deduplicate or find the newest sequence without the layout.
Result<DeltaHeader> PeekDeltaHeader(std::string_view bytes, const DecodeOptions& options = {});

// k * value_bits + log2 C(n, k): the information-theoretic size of k values at n positions.
double EntropyBoundBits(uint64_t n, uint64_t k, int value_bits);
// Bits one value takes on the wire under `encoding` (32 or 16).
int ValueBits(ValueEncoding encoding);

}  // namespace streamtrain::wire
