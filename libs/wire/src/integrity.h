// CRC32C and HMAC-SHA256 framing shared by deltas and snapshot chunks. Internal to wire.
//
// A sealed message is body || [HMAC-SHA256(key, body) if signed] || CRC32C(all before).
// Bit 0 of the byte at `flags_offset` of the body says whether it is signed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "streamtrain/common/status.h"

namespace streamtrain::wire::internal {

inline constexpr uint8_t kFlagSigned = 0x01;
inline constexpr size_t kHmacBytes = 32;
inline constexpr size_t kCrcBytes = 4;

// CRC-32C (Castagnoli, reflected 0x82F63B78, init and final xor ~0): SSE4.2 when the CPU
// has it, a table otherwise; both give the same value.
uint32_t Crc32c(std::string_view data);

// Appends the tag (when a key is given) and the CRC. The caller has set the signed flag.
void Seal(std::string& message, const std::optional<std::string>& key);

// Checks CRC, then the signature against `key`; returns the body. `what` names the message
// kind in errors ("delta", "snapshot chunk").
Result<std::string_view> Unseal(std::string_view message, size_t flags_offset,
                                const std::optional<std::string>& key, std::string_view what);

}  // namespace streamtrain::wire::internal
