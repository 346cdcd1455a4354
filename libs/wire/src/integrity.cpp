#include "integrity.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define STREAMTRAIN_WIRE_HAVE_SSE42 1
#endif

namespace streamtrain::wire::internal {
namespace {

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int j = 0; j < 8; ++j) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

uint32_t Crc32cTable(uint32_t crc, const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) crc = kCrcTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

#ifdef STREAMTRAIN_WIRE_HAVE_SSE42
__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(uint32_t crc, const unsigned char* p,
                                                          size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n > 0) {
    c32 = _mm_crc32_u8(c32, *p++);
    --n;
  }
  return c32;
}

bool HaveSse42() {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}
#endif

std::array<unsigned char, kHmacBytes> HmacSha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, kHmacBytes> tag{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), tag.data(), &len);
  return tag;
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
#ifdef STREAMTRAIN_WIRE_HAVE_SSE42
  if (HaveSse42()) return ~Crc32cHardware(~0u, p, data.size());
#endif
  return ~Crc32cTable(~0u, p, data.size());
}

void Seal(std::string& message, const std::optional<std::string>& key) {
  if (key.has_value()) {
    const auto tag = HmacSha256(*key, message);
    message.append(reinterpret_cast<const char*>(tag.data()), tag.size());
  }
  const uint32_t crc = Crc32c(message);
  for (int i = 0; i < 4; ++i) message.push_back(static_cast<char>(crc >> (8 * i)));
}

Result<std::string_view> Unseal(std::string_view message, size_t flags_offset,
                                const std::optional<std::string>& key, std::string_view what) {
  const std::string w(what);
  if (message.size() < flags_offset + 1 + kCrcBytes) return Corrupt(w + ": truncated");
  const size_t crc_at = message.size() - kCrcBytes;
  uint32_t stored = 0;
  for (size_t i = 0; i < kCrcBytes; ++i) {
    stored |= static_cast<uint32_t>(static_cast<uint8_t>(message[crc_at + i])) << (8 * i);
  }
  const uint32_t computed = Crc32c(message.substr(0, crc_at));
  if (stored != computed) return Corrupt(w + ": CRC32C mismatch (truncated or damaged)");
  const auto flags = static_cast<uint8_t>(message[flags_offset]);
  if ((flags & ~kFlagSigned) != 0) return Corrupt(w + ": unknown flag bits");
  const bool is_signed = (flags & kFlagSigned) != 0;
  if (!is_signed) {
    if (key.has_value()) {
      return FailedPrecondition(w + ": unsigned message rejected: an HMAC key is configured");
    }
    return message.substr(0, crc_at);
  }
  if (crc_at < flags_offset + 1 + kHmacBytes) return Corrupt(w + ": truncated HMAC tag");
  const size_t tag_at = crc_at - kHmacBytes;
  const std::string_view body = message.substr(0, tag_at);
  if (key.has_value()) {
    const auto tag = HmacSha256(*key, body);
    if (CRYPTO_memcmp(tag.data(), message.data() + tag_at, kHmacBytes) != 0) {
      return Corrupt(w + ": HMAC-SHA256 mismatch (forged message or wrong key)");
    }
  }
  return body;
}

}  // namespace streamtrain::wire::internal
