#include <bit>
#include <cmath>
#include <span>
#include <string>

#include "byte_io.h"
#include "index_codec.h"
#include "integrity.h"
#include "streamtrain/wire/delta.h"
#include "streamtrain/wire/half.h"

namespace streamtrain::wire {
namespace {

using internal::ByteReader;

constexpr std::string_view kDeltaMagic = "STWD";
constexpr size_t kFlagsOffset = 5;
constexpr uint64_t kMaxTensorSize = uint64_t{1} << 32;
// v2 numbers coordinates over the whole layout; 2^48 keeps every bit position in 64 bits.
constexpr uint64_t kMaxLayoutParams = uint64_t{1} << 48;
// Smallest encoded v1 tensor: index, size and k varints, the code byte.
constexpr size_t kMinTensorBytes = 4;

bool ValidEncoding(uint8_t e) { return e <= static_cast<uint8_t>(ValueEncoding::kBf16Increment); }

size_t ValueBytes(ValueEncoding e) { return static_cast<size_t>(ValueBits(e) / 8); }

Status CheckTensor(const DeltaTensor& t, const DeltaTensor* previous) {
  const std::string where = "tensor " + std::to_string(t.tensor_index) + ": ";
  if (previous != nullptr && t.tensor_index <= previous->tensor_index) {
    return InvalidArgument(where + "tensor indices not strictly ascending");
  }
  if (t.tensor_size == 0 || t.tensor_size > kMaxTensorSize) {
    return InvalidArgument(where + "tensor_size must be in 1..2^32");
  }
  if (t.indices.size() != t.values.size()) {
    return InvalidArgument(where + "indices and values differ in length");
  }
  if (t.indices.size() > t.tensor_size) return InvalidArgument(where + "k > tensor size");
  for (size_t i = 0; i < t.indices.size(); ++i) {
    if (t.indices[i] >= t.tensor_size) return InvalidArgument(where + "index >= tensor size");
    if (i > 0 && t.indices[i] <= t.indices[i - 1]) {
      return InvalidArgument(where + "indices not strictly ascending");
    }
  }
  return Status::Ok();
}

void PutValues(const DeltaTensor& t, ValueEncoding e, std::string& out) {
  for (float v : t.values) {
    switch (e) {
      case ValueEncoding::kF32New:
        internal::PutFixed(out, std::bit_cast<uint32_t>(v), 4);
        break;
      case ValueEncoding::kF16Increment:
        internal::PutFixed(out, FloatToHalf(v), 2);
        break;
      case ValueEncoding::kBf16Increment:
        internal::PutFixed(out, FloatToBfloat16(v), 2);
        break;
    }
  }
}

float ReadValue(ByteReader& r, ValueEncoding e) {
  uint64_t raw = 0;
  r.ReadFixed(static_cast<int>(ValueBytes(e)), &raw);  // the caller checked the length
  switch (e) {
    case ValueEncoding::kF32New:
      return std::bit_cast<float>(static_cast<uint32_t>(raw));
    case ValueEncoding::kF16Increment:
      return HalfToFloat(static_cast<uint16_t>(raw));
    case ValueEncoding::kBf16Increment:
      return Bfloat16ToFloat(static_cast<uint16_t>(raw));
  }
  return 0.0f;
}

Result<DeltaTensor> ReadTensor(ByteReader& r, ValueEncoding encoding) {
  DeltaTensor t;
  uint64_t index = 0, size = 0, k = 0;
  uint8_t code = 0;
  if (!r.ReadVarint(&index) || !r.ReadVarint(&size) || !r.ReadVarint(&k) || !r.ReadU8(&code)) {
    return Corrupt("truncated tensor header");
  }
  const std::string where = "tensor " + std::to_string(index) + ": ";
  if (index > UINT32_MAX) return Corrupt(where + "tensor index out of range");
  if (size == 0 || size > kMaxTensorSize) return Corrupt(where + "tensor size out of range");
  if (k > size) return Corrupt(where + "k > tensor size");
  if (!internal::ValidIndexCode(code, internal::kMaxLowBitsV1)) {
    return Corrupt(where + "unknown index code " + std::to_string(code));
  }
  // Bound every allocation by the bytes that are actually there.
  const uint64_t index_bytes = internal::IndexPayloadBytes(code, size, k);
  const uint64_t value_bytes = k * ValueBytes(encoding);
  if (index_bytes > r.remaining() || value_bytes > r.remaining() - index_bytes) {
    return Corrupt(where + "truncated (k=" + std::to_string(k) + ")");
  }
  t.tensor_index = static_cast<uint32_t>(index);
  t.tensor_size = size;
  std::vector<uint64_t> indices;
  Status s = internal::DecodeIndices(r, code, size, k, &indices);
  if (!s.ok()) return s.WithContext("tensor " + std::to_string(index));
  t.indices.assign(indices.begin(), indices.end());  // < size <= 2^32
  t.values.resize(k);
  for (uint64_t i = 0; i < k; ++i) t.values[i] = ReadValue(r, encoding);
  return t;
}

// The fields v1 and v2 share, in this order; `count` is the tensor count in v1 and the
// total k in v2.
void PutHeader(const DeltaHeader& h, uint8_t version, bool is_signed, uint64_t count,
               std::string& out) {
  out.append(kDeltaMagic);
  internal::PutU8(out, version);
  internal::PutU8(out, is_signed ? internal::kFlagSigned : 0);
  internal::PutU8(out, static_cast<uint8_t>(h.value_encoding));
  internal::PutU8(out, static_cast<uint8_t>(h.model_id.size()));
  internal::PutFixed(out, h.digest_after, 8);
  internal::PutFixed(out, h.layout_fingerprint, 8);
  internal::PutVarint(out, h.sequence);
  internal::PutVarint(out, h.sequence - h.base_sequence);
  internal::PutVarint(out, internal::ZigZag(h.producer_time_ms));
  internal::PutVarint(out, count);
  out += h.model_id;
}

Status ReadHeader(ByteReader& r, DeltaHeader* h, uint64_t* count) {
  std::string_view skipped, model_id;
  uint8_t encoding = 0, model_id_len = 0;
  uint64_t gap = 0, time = 0;
  if (!r.ReadBytes(kFlagsOffset + 1, &skipped) || !r.ReadU8(&encoding) ||
      !r.ReadU8(&model_id_len) || !r.ReadFixed(8, &h->digest_after) ||
      !r.ReadFixed(8, &h->layout_fingerprint) || !r.ReadVarint(&h->sequence) ||
      !r.ReadVarint(&gap) || !r.ReadVarint(&time) || !r.ReadVarint(count) ||
      !r.ReadBytes(model_id_len, &model_id)) {
    return Corrupt("delta: truncated header");
  }
  if (!ValidEncoding(encoding)) {
    return Corrupt("delta: unknown value encoding " + std::to_string(encoding));
  }
  if (gap > h->sequence) return Corrupt("delta: base_sequence > sequence");
  h->model_id = std::string(model_id);
  h->base_sequence = h->sequence - gap;
  h->producer_time_ms = internal::UnZigZag(time);
  h->value_encoding = static_cast<ValueEncoding>(encoding);
  return Status::Ok();
}

// Magic, version, CRC and HMAC: the body behind them, and its version.
Result<std::string_view> CheckedBody(std::string_view bytes, const DecodeOptions& options,
                                     uint8_t* version) {
  if (bytes.size() < kDeltaMagic.size() + 2) return Corrupt("delta: truncated");
  if (bytes.substr(0, kDeltaMagic.size()) != kDeltaMagic) return Corrupt("delta: bad magic");
  *version = static_cast<uint8_t>(bytes[kDeltaMagic.size()]);
  if (*version != kDeltaFormatVersion && *version != kDeltaFormatVersionV1) {
    return Corrupt("delta: unsupported format version " + std::to_string(*version));
  }
  return internal::Unseal(bytes, kFlagsOffset, options.hmac_key, "delta");
}

std::string EncodeV1(const Delta& delta, bool is_signed) {
  std::string out;
  PutHeader(delta.header, kDeltaFormatVersionV1, is_signed, delta.tensors.size(), out);
  std::vector<uint64_t> indices;
  for (const DeltaTensor& t : delta.tensors) {
    internal::PutVarint(out, t.tensor_index);
    internal::PutVarint(out, t.tensor_size);
    internal::PutVarint(out, t.indices.size());
    indices.assign(t.indices.begin(), t.indices.end());
    internal::EncodeIndices(indices, t.tensor_size, internal::kMaxLowBitsV1, out);
    PutValues(t, delta.header.value_encoding, out);
  }
  return out;
}

// Tensor sizes in layout order; the caller's layout or, without one, the delta's tensors.
Result<std::vector<uint64_t>> LayoutSizes(const Delta& delta, std::span<const TensorRange> layout) {
  std::vector<uint64_t> sizes;
  if (layout.empty()) {
    for (size_t i = 0; i < delta.tensors.size(); ++i) {
      if (delta.tensors[i].tensor_index != i) {
        return InvalidArgument(
            "v2 delta leaves out tensor " + std::to_string(i) +
            ": pass the model layout in EncodeOptions::layout, or list every tensor");
      }
      sizes.push_back(delta.tensors[i].tensor_size);
    }
    return sizes;
  }
  for (const TensorRange& t : layout) sizes.push_back(t.size);
  return sizes;
}

// Checks the layout's sizes and returns its parameter count N.
Result<uint64_t> LayoutParams(std::span<const uint64_t> sizes) {
  uint64_t total = 0;
  for (uint64_t size : sizes) {
    if (size > kMaxTensorSize) return InvalidArgument("layout tensor size over 2^32");
    total += size;
    if (total >= kMaxLayoutParams) return InvalidArgument("layout of 2^48 parameters or more");
  }
  return total;
}

Result<std::string> EncodeV2(const Delta& delta, std::span<const TensorRange> layout,
                             bool is_signed) {
  ST_ASSIGN_OR_RETURN(std::vector<uint64_t> sizes, LayoutSizes(delta, layout));
  ST_ASSIGN_OR_RETURN(const uint64_t n, LayoutParams(sizes));
  std::vector<uint64_t> offsets(sizes.size(), 0);
  for (size_t t = 1; t < sizes.size(); ++t) offsets[t] = offsets[t - 1] + sizes[t - 1];
  // Tensors ascend and indices ascend within each, so positions ascend across the delta.
  std::vector<uint64_t> positions;
  for (const DeltaTensor& t : delta.tensors) {
    if (t.tensor_index >= sizes.size()) {
      return InvalidArgument("tensor " + std::to_string(t.tensor_index) + " not in the layout of " +
                             std::to_string(sizes.size()) + " tensors");
    }
    if (t.tensor_size != sizes[t.tensor_index]) {
      return InvalidArgument("tensor " + std::to_string(t.tensor_index) + ": size " +
                             std::to_string(t.tensor_size) + " but the layout has " +
                             std::to_string(sizes[t.tensor_index]));
    }
    for (uint32_t i : t.indices) positions.push_back(offsets[t.tensor_index] + i);
  }
  std::string out;
  PutHeader(delta.header, kDeltaFormatVersion, is_signed, positions.size(), out);
  if (positions.empty()) {
    // Zero payload bytes whatever N is, so an empty delta decodes under any layout.
    internal::PutU8(out, internal::kIndexCodeEliasFano);
  } else {
    internal::EncodeIndices(positions, n, internal::kMaxLowBitsV2, out);
  }
  for (const DeltaTensor& t : delta.tensors) PutValues(t, delta.header.value_encoding, out);
  return out;
}

Status ReadTensorsV1(ByteReader& r, uint64_t tensor_count, Delta& d) {
  if (tensor_count > r.remaining() / kMinTensorBytes) return Corrupt("delta: truncated tensors");
  d.tensors.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    Result<DeltaTensor> t = ReadTensor(r, d.header.value_encoding);
    if (!t.ok()) return t.status().WithContext("delta");
    if (i > 0 && t->tensor_index <= d.tensors.back().tensor_index) {
      return Corrupt("delta: tensor indices not strictly ascending");
    }
    d.tensors.push_back(std::move(t).value());
  }
  return Status::Ok();
}

// One index code over the concatenated layout, then k values; split back into tensors.
Status ReadTensorsV2(ByteReader& r, uint64_t k, std::span<const TensorRange> layout, Delta& d) {
  if (k > 0 && layout.empty()) {
    return FailedPrecondition(
        "delta: a v2 delta needs the parameter layout to decode (DecodeOptions::layout)");
  }
  std::vector<uint64_t> sizes;
  for (const TensorRange& t : layout) sizes.push_back(t.size);
  Result<uint64_t> n = LayoutParams(sizes);
  if (!n.ok()) return FailedPrecondition("delta: the reader's " + n.status().message());
  const std::string where = "delta (k=" + std::to_string(k) + "): ";
  if (k > *n) return Corrupt(where + "more changes than the layout's " + std::to_string(*n));
  const uint64_t value_bytes = k * ValueBytes(d.header.value_encoding);
  uint8_t code = 0;
  if (!r.ReadU8(&code) || value_bytes > r.remaining()) return Corrupt(where + "truncated");
  if (!internal::ValidIndexCode(code, internal::kMaxLowBitsV2)) {
    return Corrupt(where + "unknown index code " + std::to_string(code));
  }
  // Bound every allocation by the bytes that are actually there.
  if (internal::IndexPayloadBytes(code, *n, k) > r.remaining() - value_bytes) {
    return Corrupt(where + "truncated indices");
  }
  std::vector<uint64_t> positions;
  Status s = internal::DecodeIndices(r, code, *n, k, &positions);
  if (!s.ok()) return s.WithContext("delta");
  size_t tensor = 0;
  uint64_t offset = 0;
  for (uint64_t p : positions) {
    while (p >= offset + sizes[tensor]) offset += sizes[tensor++];  // p < n: stays in range
    if (d.tensors.empty() || d.tensors.back().tensor_index != tensor) {
      d.tensors.push_back({.tensor_index = static_cast<uint32_t>(tensor),
                           .tensor_size = sizes[tensor],
                           .indices = {},
                           .values = {}});
    }
    d.tensors.back().indices.push_back(static_cast<uint32_t>(p - offset));
  }
  for (DeltaTensor& t : d.tensors) {
    t.values.resize(t.indices.size());
    for (float& v : t.values) v = ReadValue(r, d.header.value_encoding);
  }
  return Status::Ok();
}

}  // namespace

int ValueBits(ValueEncoding encoding) { return encoding == ValueEncoding::kF32New ? 32 : 16; }

double EntropyBoundBits(uint64_t n, uint64_t k, int value_bits) {
  const double log2_binomial =
      (std::lgamma(static_cast<double>(n) + 1.0) - std::lgamma(static_cast<double>(k) + 1.0) -
       std::lgamma(static_cast<double>(n - k) + 1.0)) /
      std::log(2.0);
  return static_cast<double>(k) * value_bits + log2_binomial;
}

Result<std::string> EncodeDelta(const Delta& delta, const EncodeOptions& options) {
  const DeltaHeader& h = delta.header;
  if (h.model_id.size() > kMaxModelIdBytes) return InvalidArgument("model_id over 255 bytes");
  if (h.base_sequence > h.sequence) return InvalidArgument("base_sequence > sequence");
  if (!ValidEncoding(static_cast<uint8_t>(h.value_encoding))) {
    return InvalidArgument("unknown value encoding");
  }
  for (size_t i = 0; i < delta.tensors.size(); ++i) {
    ST_RETURN_IF_ERROR(CheckTensor(delta.tensors[i], i > 0 ? &delta.tensors[i - 1] : nullptr));
  }
  const bool is_signed = options.hmac_key.has_value();
  std::string out;
  if (options.version == kDeltaFormatVersionV1) {
    out = EncodeV1(delta, is_signed);
  } else if (options.version == kDeltaFormatVersion) {
    ST_ASSIGN_OR_RETURN(out, EncodeV2(delta, options.layout, is_signed));
  } else {
    return InvalidArgument("unknown delta format version " + std::to_string(options.version));
  }
  internal::Seal(out, options.hmac_key);
  return out;
}

Result<Delta> DecodeDelta(std::string_view bytes, const DecodeOptions& options) {
  uint8_t version = 0;
  ST_ASSIGN_OR_RETURN(std::string_view body, CheckedBody(bytes, options, &version));
  ByteReader r(body);
  Delta d;
  uint64_t count = 0;
  ST_RETURN_IF_ERROR(ReadHeader(r, &d.header, &count));
  if (version == kDeltaFormatVersionV1) {
    ST_RETURN_IF_ERROR(ReadTensorsV1(r, count, d));
  } else {
    ST_RETURN_IF_ERROR(ReadTensorsV2(r, count, options.layout, d));
  }
  if (r.remaining() != 0) return Corrupt("delta: trailing bytes after the last value");
  return d;
}

Result<DeltaHeader> PeekDeltaHeader(std::string_view bytes, const DecodeOptions& options) {
  uint8_t version = 0;
  ST_ASSIGN_OR_RETURN(std::string_view body, CheckedBody(bytes, options, &version));
  ByteReader r(body);
  DeltaHeader h;
  uint64_t count = 0;
  ST_RETURN_IF_ERROR(ReadHeader(r, &h, &count));
  return h;
}

}  // namespace streamtrain::wire
