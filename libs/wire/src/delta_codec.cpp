#include <bit>
#include <cmath>
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
// Smallest encoded tensor: index, size and k varints, the code byte.
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
  if (!internal::ValidIndexCode(code)) {
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
  Status s = internal::DecodeIndices(r, code, size, k, &t.indices);
  if (!s.ok()) return s.WithContext("tensor " + std::to_string(index));
  t.values.resize(k);
  for (uint64_t i = 0; i < k; ++i) t.values[i] = ReadValue(r, encoding);
  return t;
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
  std::string out;
  out.append(kDeltaMagic);
  internal::PutU8(out, kDeltaFormatVersion);
  internal::PutU8(out, options.hmac_key.has_value() ? internal::kFlagSigned : 0);
  internal::PutU8(out, static_cast<uint8_t>(h.value_encoding));
  internal::PutU8(out, static_cast<uint8_t>(h.model_id.size()));
  internal::PutFixed(out, h.digest_after, 8);
  internal::PutFixed(out, h.layout_fingerprint, 8);
  internal::PutVarint(out, h.sequence);
  internal::PutVarint(out, h.sequence - h.base_sequence);
  internal::PutVarint(out, internal::ZigZag(h.producer_time_ms));
  internal::PutVarint(out, delta.tensors.size());
  out += h.model_id;
  for (const DeltaTensor& t : delta.tensors) {
    internal::PutVarint(out, t.tensor_index);
    internal::PutVarint(out, t.tensor_size);
    internal::PutVarint(out, t.indices.size());
    internal::EncodeIndices(t.indices, t.tensor_size, out);
    PutValues(t, h.value_encoding, out);
  }
  internal::Seal(out, options.hmac_key);
  return out;
}

Result<Delta> DecodeDelta(std::string_view bytes, const DecodeOptions& options) {
  if (bytes.size() < kDeltaMagic.size() + 2) return Corrupt("delta: truncated");
  if (bytes.substr(0, kDeltaMagic.size()) != kDeltaMagic) return Corrupt("delta: bad magic");
  const auto version = static_cast<uint8_t>(bytes[kDeltaMagic.size()]);
  if (version != kDeltaFormatVersion) {
    return Corrupt("delta: unsupported format version " + std::to_string(version));
  }
  ST_ASSIGN_OR_RETURN(std::string_view body,
                      internal::Unseal(bytes, kFlagsOffset, options.hmac_key, "delta"));
  ByteReader r(body);
  std::string_view skipped;
  uint8_t encoding = 0, model_id_len = 0;
  uint64_t digest = 0, fingerprint = 0, sequence = 0, gap = 0, time = 0, tensor_count = 0;
  std::string_view model_id;
  if (!r.ReadBytes(kFlagsOffset + 1, &skipped) || !r.ReadU8(&encoding) ||
      !r.ReadU8(&model_id_len) || !r.ReadFixed(8, &digest) || !r.ReadFixed(8, &fingerprint) ||
      !r.ReadVarint(&sequence) || !r.ReadVarint(&gap) || !r.ReadVarint(&time) ||
      !r.ReadVarint(&tensor_count) || !r.ReadBytes(model_id_len, &model_id)) {
    return Corrupt("delta: truncated header");
  }
  if (!ValidEncoding(encoding)) {
    return Corrupt("delta: unknown value encoding " + std::to_string(encoding));
  }
  if (gap > sequence) return Corrupt("delta: base_sequence > sequence");
  if (tensor_count > r.remaining() / kMinTensorBytes) return Corrupt("delta: truncated tensors");
  Delta d;
  d.header.model_id = std::string(model_id);
  d.header.sequence = sequence;
  d.header.base_sequence = sequence - gap;
  d.header.producer_time_ms = internal::UnZigZag(time);
  d.header.digest_after = digest;
  d.header.layout_fingerprint = fingerprint;
  d.header.value_encoding = static_cast<ValueEncoding>(encoding);
  d.tensors.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    Result<DeltaTensor> t = ReadTensor(r, d.header.value_encoding);
    if (!t.ok()) return t.status().WithContext("delta");
    if (i > 0 && t->tensor_index <= d.tensors.back().tensor_index) {
      return Corrupt("delta: tensor indices not strictly ascending");
    }
    d.tensors.push_back(std::move(t).value());
  }
  if (r.remaining() != 0) return Corrupt("delta: trailing bytes after the last tensor");
  return d;
}

}  // namespace streamtrain::wire
