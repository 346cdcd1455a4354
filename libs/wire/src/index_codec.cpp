#include "index_codec.h"

#include <bit>
#include <string_view>

namespace streamtrain::wire::internal {
namespace {

uint64_t EliasFanoBits(uint64_t n, uint64_t k, uint32_t low_bits) {
  if (k == 0) return 0;
  return k * low_bits + k + ((n - 1) >> low_bits);
}

void SetBits(std::string& buf, uint64_t bit_pos, uint64_t value, uint32_t count) {
  for (uint32_t i = 0; i < count; ++i) {
    if ((value >> i) & 1) {
      const uint64_t p = bit_pos + i;
      buf[p >> 3] = static_cast<char>(static_cast<uint8_t>(buf[p >> 3]) | (1u << (p & 7)));
    }
  }
}

bool GetBit(std::string_view buf, uint64_t p) {
  return (static_cast<uint8_t>(buf[p >> 3]) >> (p & 7)) & 1;
}

// Bits at and after `from` must be zero, so every message has one encoding.
bool PaddingIsZero(std::string_view buf, uint64_t from) {
  for (uint64_t p = from; p < buf.size() * 8; ++p) {
    if (GetBit(buf, p)) return false;
  }
  return true;
}

}  // namespace

bool ValidIndexCode(uint8_t code, uint32_t max_low_bits) {
  return code == kIndexCodeBitmap ||
         ((code & kIndexCodeEliasFano) != 0 && (code & 0x7Fu) <= max_low_bits);
}

uint64_t IndexPayloadBytes(uint8_t code, uint64_t n, uint64_t k) {
  if (code == kIndexCodeBitmap) return (n + 7) / 8;
  return (EliasFanoBits(n, k, code & 0x7F) + 7) / 8;
}

void EncodeIndices(std::span<const uint64_t> indices, uint64_t n, uint32_t max_low_bits,
                   std::string& out) {
  const uint64_t k = indices.size();
  // floor(log2(n/k)) low bits is near optimal; the neighbours are cheap to try.
  uint32_t guess = (k > 0 && n > k) ? static_cast<uint32_t>(std::bit_width(n / k) - 1) : 0;
  uint8_t best_code = kIndexCodeBitmap;
  uint64_t best_bytes = IndexPayloadBytes(kIndexCodeBitmap, n, k);
  for (uint32_t l = guess > 0 ? guess - 1 : 0; l <= guess + 1 && l <= max_low_bits; ++l) {
    const auto code = static_cast<uint8_t>(kIndexCodeEliasFano | l);
    const uint64_t bytes = IndexPayloadBytes(code, n, k);
    if (bytes < best_bytes) {
      best_bytes = bytes;
      best_code = code;
    }
  }
  PutU8(out, best_code);
  std::string payload(best_bytes, '\0');
  if (best_code == kIndexCodeBitmap) {
    for (uint64_t i : indices) SetBits(payload, i, 1, 1);
  } else {
    const uint32_t l = best_code & 0x7F;
    const uint64_t low_mask = l == 0 ? 0 : (uint64_t{1} << l) - 1;
    for (uint64_t i = 0; i < k; ++i) {
      SetBits(payload, i * l, indices[i] & low_mask, l);
      SetBits(payload, k * l + (indices[i] >> l) + i, 1, 1);
    }
  }
  out += payload;
}

Status DecodeIndices(ByteReader& reader, uint8_t code, uint64_t n, uint64_t k,
                     std::vector<uint64_t>* indices) {
  if (!ValidIndexCode(code, kMaxLowBitsV2)) {
    return Corrupt("unknown index code " + std::to_string(code));
  }
  std::string_view buf;
  if (!reader.ReadBytes(IndexPayloadBytes(code, n, k), &buf)) return Corrupt("truncated indices");
  indices->clear();
  indices->reserve(k);  // k <= bits in buf, checked by the caller through the payload size
  if (code == kIndexCodeBitmap) {
    for (uint64_t p = 0; p < n; ++p) {
      if (!GetBit(buf, p)) continue;
      if (indices->size() == k) return Corrupt("bitmap has more than k=" + std::to_string(k));
      indices->push_back(p);
    }
    if (indices->size() != k) return Corrupt("bitmap has fewer than k=" + std::to_string(k));
    if (!PaddingIsZero(buf, n)) return Corrupt("bitmap padding not zero");
    return Status::Ok();
  }
  if (k == 0) return Status::Ok();
  const uint32_t l = code & 0x7F;
  const uint64_t total_bits = EliasFanoBits(n, k, l);
  const uint64_t high_begin = k * l;
  uint64_t prev = 0;
  for (uint64_t p = high_begin; p < total_bits; ++p) {
    if (!GetBit(buf, p)) continue;
    const uint64_t i = indices->size();
    if (i == k) return Corrupt("Elias-Fano has more than k=" + std::to_string(k));
    uint64_t low = 0;
    for (uint32_t b = 0; b < l; ++b) low |= static_cast<uint64_t>(GetBit(buf, i * l + b)) << b;
    const uint64_t value = ((p - high_begin - i) << l) | low;
    if (value >= n) return Corrupt("index " + std::to_string(value) + " >= n=" + std::to_string(n));
    if (i > 0 && value <= prev) return Corrupt("indices not strictly ascending");
    indices->push_back(value);
    prev = value;
  }
  if (indices->size() != k) return Corrupt("Elias-Fano has fewer than k=" + std::to_string(k));
  if (!PaddingIsZero(buf, total_bits)) return Corrupt("Elias-Fano padding not zero");
  return Status::Ok();
}

}  // namespace streamtrain::wire::internal
