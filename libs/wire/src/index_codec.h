// Sorted index sets within one tensor: Elias-Fano or a bitmap, whichever is smaller.
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
inline constexpr uint8_t kIndexCodeEliasFano = 0x80;  // | number of low bits (0..32)

// True for the bitmap and Elias-Fano with 0..32 low bits.
bool ValidIndexCode(uint8_t code);

// Payload bytes of a valid `code` for k indices in [0, n); the code byte is not counted.
uint64_t IndexPayloadBytes(uint8_t code, uint64_t n, uint64_t k);

// Appends the code byte and payload. `indices` are strictly ascending and < n.
void EncodeIndices(std::span<const uint32_t> indices, uint64_t n, std::string& out);

// Reads the payload of `code` (already read) for k indices in [0, n). The caller has
// checked that the payload fits in `reader`. kCorrupt when the bits are not k strictly
// ascending indices below n.
Status DecodeIndices(ByteReader& reader, uint8_t code, uint64_t n, uint64_t k,
                     std::vector<uint32_t>* indices);

}  // namespace streamtrain::wire::internal
