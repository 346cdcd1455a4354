// Sorted index sets in [0, n): Elias-Fano or a bitmap, whichever is smaller. v1 codes one
// tensor at a time (n <= 2^32), v2 the concatenated parameter vector (n < 2^48).
// Internal to wire; docs/wire-format.md describes the bits.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "byte_io.h"
#include "streamtrain/common/status.h"

namespace streamtrain::wire::internal {

inline constexpr uint8_t kIndexCodeBitmap = 0x00;
inline constexpr uint8_t kIndexCodeEliasFano = 0x80;  // | number of low bits
// Low bits allowed by each format: a v1 tensor has n <= 2^32, v2 n < 2^48.
inline constexpr uint32_t kMaxLowBitsV1 = 32;
inline constexpr uint32_t kMaxLowBitsV2 = 48;

// True for the bitmap and Elias-Fano with 0..max_low_bits low bits.
bool ValidIndexCode(uint8_t code, uint32_t max_low_bits);

// Payload bytes of a valid `code` for k indices in [0, n); the code byte is not counted.
uint64_t IndexPayloadBytes(uint8_t code, uint64_t n, uint64_t k);

// Appends the code byte and payload. `indices` are strictly ascending and < n.
void EncodeIndices(std::span<const uint64_t> indices, uint64_t n, uint32_t max_low_bits,
                   std::string& out);

// Reads the payload of a valid `code` (already read) for k indices in [0, n). The caller
// has checked that the payload fits in `reader`. kCorrupt when the bits are not k strictly
// ascending indices below n.
Status DecodeIndices(ByteReader& reader, uint8_t code, uint64_t n, uint64_t k,
                     std::vector<uint64_t>* indices);

}  // namespace streamtrain::wire::internal
