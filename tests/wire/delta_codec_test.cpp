#include <algorithm>
#include <bit>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "streamtrain/wire/delta.h"
#include "streamtrain/wire/half.h"

namespace streamtrain::wire {
namespace {

std::vector<uint32_t> RandomSortedIndices(std::mt19937_64& rng, uint64_t n, uint64_t k) {
  std::vector<uint32_t> out;
  if (k * 4 > n) {  // dense: sample by selection
    for (uint64_t i = 0; i < n && out.size() < k; ++i) {
      if (rng() % (n - i) < k - out.size()) out.push_back(static_cast<uint32_t>(i));
    }
    return out;
  }
  std::vector<uint32_t> picked;
  while (picked.size() < k) {
    picked.push_back(static_cast<uint32_t>(rng() % n));
    if (picked.size() == k) {
      std::sort(picked.begin(), picked.end());
      picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
    }
  }
  return picked;
}

// A float as the encoding would carry it, so a round trip compares exactly.
float Representable(float v, ValueEncoding e) {
  if (e == ValueEncoding::kF16Increment) return HalfToFloat(FloatToHalf(v));
  if (e == ValueEncoding::kBf16Increment) return Bfloat16ToFloat(FloatToBfloat16(v));
  return v;
}

Delta RandomDelta(std::mt19937_64& rng, const std::vector<uint64_t>& sizes, double ratio,
                  ValueEncoding encoding) {
  Delta d;
  d.header.model_id = "lenet5";
  d.header.sequence = 1000 + rng() % 1000;
  d.header.base_sequence = d.header.sequence - 1;
  d.header.producer_time_ms = 1'763'881'442'000 + static_cast<int64_t>(rng() % 100000);
  d.header.digest_after = rng();
  d.header.layout_fingerprint = rng();
  d.header.value_encoding = encoding;
  std::normal_distribution<float> value(0.0f, 0.01f);
  for (size_t t = 0; t < sizes.size(); ++t) {
    DeltaTensor tensor;
    tensor.tensor_index = static_cast<uint32_t>(t);
    tensor.tensor_size = sizes[t];
    const auto k = std::max<uint64_t>(1, static_cast<uint64_t>(ratio * sizes[t]));
    tensor.indices = RandomSortedIndices(rng, sizes[t], k);
    for (size_t i = 0; i < tensor.indices.size(); ++i) {
      tensor.values.push_back(Representable(value(rng), encoding));
    }
    d.tensors.push_back(std::move(tensor));
  }
  return d;
}

void RequireSame(const Delta& a, const Delta& b) {
  REQUIRE(a.header.model_id == b.header.model_id);
  REQUIRE(a.header.sequence == b.header.sequence);
  REQUIRE(a.header.base_sequence == b.header.base_sequence);
  REQUIRE(a.header.producer_time_ms == b.header.producer_time_ms);
  REQUIRE(a.header.digest_after == b.header.digest_after);
  REQUIRE(a.header.layout_fingerprint == b.header.layout_fingerprint);
  REQUIRE(a.header.value_encoding == b.header.value_encoding);
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t t = 0; t < a.tensors.size(); ++t) {
    REQUIRE(a.tensors[t].tensor_index == b.tensors[t].tensor_index);
    REQUIRE(a.tensors[t].tensor_size == b.tensors[t].tensor_size);
    REQUIRE(a.tensors[t].indices == b.tensors[t].indices);
    REQUIRE(a.tensors[t].values.size() == b.tensors[t].values.size());
    for (size_t i = 0; i < a.tensors[t].values.size(); ++i) {
      REQUIRE(std::bit_cast<uint32_t>(a.tensors[t].values[i]) ==
              std::bit_cast<uint32_t>(b.tensors[t].values[i]));
    }
  }
}

// Bitwise reference CRC32C (Castagnoli), independent of the library's table/SSE4.2 code.
uint32_t ReferenceCrc32c(std::string_view data) {
  uint32_t crc = ~0u;
  for (unsigned char c : data) {
    crc ^= c;
    for (int b = 0; b < 8; ++b) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

// `body` sealed with a valid CRC, as an attacker or a buggy producer could do.
std::string WithCrc(std::string body) {
  const uint32_t crc = ReferenceCrc32c(body);
  for (int i = 0; i < 4; ++i) body.push_back(static_cast<char>(crc >> (8 * i)));
  return body;
}

const std::vector<uint64_t> kLeNet5 = {150, 6, 2400, 16, 48000, 120, 10080, 84, 840, 10};

}  // namespace

TEST_CASE("delta round trip over random layouts ratios and encodings", "[wire]") {
  const auto encoding =
      GENERATE(ValueEncoding::kF32New, ValueEncoding::kF16Increment, ValueEncoding::kBf16Increment);
  const double ratio = GENERATE(1.0, 0.5, 0.2, 0.01, 0.001, 0.0001);
  const bool sign = GENERATE(false, true);
  std::mt19937_64 rng(static_cast<uint64_t>(ratio * 1e6) * 31 + static_cast<int>(encoding));
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<uint64_t> sizes(1 + rng() % 6);
    for (auto& s : sizes) s = 1 + rng() % (trial == 0 ? 10 : 20000);
    const Delta d = RandomDelta(rng, sizes, ratio, encoding);
    EncodeOptions eo;
    DecodeOptions dopt;
    if (sign) eo.hmac_key = dopt.hmac_key = "secret";
    Result<std::string> bytes = EncodeDelta(d, eo);
    REQUIRE(bytes.ok());
    Result<Delta> back = DecodeDelta(*bytes, dopt);
    INFO(back.status().ToString());
    REQUIRE(back.ok());
    RequireSame(d, *back);
  }
}

TEST_CASE("delta with no tensors and empty tensors round trips", "[wire]") {
  Delta d;
  d.header.sequence = 0;
  d.header.producer_time_ms = -5;
  REQUIRE(DecodeDelta(*EncodeDelta(d)).ok());
  d.tensors.push_back(DeltaTensor{3, 1000000, {}, {}});
  d.tensors.push_back(DeltaTensor{4, 1, {0}, {1.5f}});
  Result<Delta> back = DecodeDelta(*EncodeDelta(d));
  REQUIRE(back.ok());
  RequireSame(d, *back);
}

TEST_CASE("EncodeDelta refuses inconsistent deltas", "[wire]") {
  Delta d;
  d.tensors.push_back(DeltaTensor{0, 10, {1, 5}, {1.0f, 2.0f}});
  REQUIRE(EncodeDelta(d).ok());
  SECTION("unsorted indices") { d.tensors[0].indices = {5, 1}; }
  SECTION("duplicate indices") { d.tensors[0].indices = {5, 5}; }
  SECTION("index out of the tensor") { d.tensors[0].indices = {1, 10}; }
  SECTION("values and indices differ") { d.tensors[0].values.pop_back(); }
  SECTION("k above tensor size") {
    d.tensors[0].tensor_size = 1;
    d.tensors[0].indices = {0, 1};
  }
  SECTION("tensor indices not ascending") { d.tensors.push_back(d.tensors[0]); }
  SECTION("base after sequence") { d.header.base_sequence = 1; }
  SECTION("model id too long") { d.header.model_id.assign(256, 'm'); }
  Result<std::string> r = EncodeDelta(d);
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.status().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("every truncation of a delta is rejected as corrupt", "[wire]") {
  std::mt19937_64 rng(11);
  const bool sign = GENERATE(false, true);
  const Delta d = RandomDelta(rng, {500, 7, 3000}, 0.05, ValueEncoding::kF16Increment);
  EncodeOptions eo;
  DecodeOptions dopt;
  if (sign) eo.hmac_key = dopt.hmac_key = "k";
  const std::string bytes = *EncodeDelta(d, eo);
  for (size_t len = 0; len < bytes.size(); ++len) {
    Result<Delta> r = DecodeDelta(std::string_view(bytes).substr(0, len), dopt);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.status().code() == ErrorCode::kCorrupt);
  }
}

TEST_CASE("random bit flips in a delta are rejected and never crash", "[wire]") {
  std::mt19937_64 rng(12);
  const Delta d = RandomDelta(rng, kLeNet5, 0.01, ValueEncoding::kF32New);
  const std::string bytes = *EncodeDelta(d);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bad = bytes;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] ^= static_cast<char>(1 << (rng() % 8));
    if (bad == bytes) continue;
    Result<Delta> r = DecodeDelta(bad);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.status().code() == ErrorCode::kCorrupt);
  }
}

TEST_CASE("garbage with a valid CRC is rejected with a reason", "[wire]") {
  // Bytes that pass the CRC but make no sense: the structural checks must catch them.
  std::mt19937_64 rng(13);
  Delta d = RandomDelta(rng, {64, 4000}, 0.02, ValueEncoding::kBf16Increment);
  const std::string good = *EncodeDelta(d);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string body = good.substr(0, good.size() - 4);
    const size_t from = 6 + rng() % (body.size() - 6);  // keep magic, version and flags
    body[from] = static_cast<char>(rng());
    if (rng() % 4 == 0) body.resize(6 + rng() % (body.size() - 6));
    body = WithCrc(body);
    Result<Delta> r = DecodeDelta(body);
    if (!r.ok()) {
      REQUIRE(r.status().code() == ErrorCode::kCorrupt);
      REQUIRE_FALSE(r.status().message().empty());
    }
  }
}

TEST_CASE("delta trailer is the standard CRC32C of the message", "[wire]") {
  REQUIRE(ReferenceCrc32c("123456789") == 0xE3069283u);  // the published check value
  std::mt19937_64 rng(15);
  for (const auto& sizes : {std::vector<uint64_t>{3}, kLeNet5}) {
    const std::string bytes = *EncodeDelta(RandomDelta(rng, sizes, 0.3, ValueEncoding::kF32New));
    REQUIRE(WithCrc(bytes.substr(0, bytes.size() - 4)) == bytes);
  }
}

TEST_CASE("delta rejects wrong magic and unknown versions", "[wire]") {
  std::string bytes = *EncodeDelta(Delta{});
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  Result<Delta> r = DecodeDelta(bad_magic);
  REQUIRE(r.status().code() == ErrorCode::kCorrupt);
  REQUIRE(r.status().message().find("magic") != std::string::npos);
  std::string bad_version = bytes;
  bad_version[4] = 2;
  r = DecodeDelta(bad_version);
  REQUIRE(r.status().code() == ErrorCode::kCorrupt);
  REQUIRE(r.status().message().find("version 2") != std::string::npos);
}

TEST_CASE("delta HMAC accepts signed and rejects unsigned and forged messages", "[wire]") {
  std::mt19937_64 rng(14);
  const Delta d = RandomDelta(rng, {1000, 10}, 0.05, ValueEncoding::kF32New);
  const std::string signed_bytes = *EncodeDelta(d, {.hmac_key = "replica-key"});
  const std::string unsigned_bytes = *EncodeDelta(d);

  SECTION("signed with the right key") {
    REQUIRE(DecodeDelta(signed_bytes, {.hmac_key = "replica-key"}).ok());
  }
  SECTION("signed but the reader has no key") { REQUIRE(DecodeDelta(signed_bytes).ok()); }
  SECTION("unsigned while a key is required") {
    Result<Delta> r = DecodeDelta(unsigned_bytes, {.hmac_key = "replica-key"});
    REQUIRE(r.status().code() == ErrorCode::kFailedPrecondition);
    REQUIRE(r.status().message().find("unsigned") != std::string::npos);
  }
  SECTION("signed with another key") {
    const std::string forged = *EncodeDelta(d, {.hmac_key = "attacker"});
    Result<Delta> r = DecodeDelta(forged, {.hmac_key = "replica-key"});
    REQUIRE(r.status().code() == ErrorCode::kCorrupt);
    REQUIRE(r.status().message().find("HMAC") != std::string::npos);
  }
  SECTION("payload modified and the CRC recomputed") {
    // An attacker can fix the CRC but not the tag: change a value and re-seal the CRC.
    Delta changed = d;
    changed.tensors[0].values[0] += 1.0f;
    std::string forged = *EncodeDelta(changed, {.hmac_key = "attacker"});
    // Keep the body of the changed message, the tag of the genuine one, and a valid CRC.
    forged.replace(forged.size() - 36, 32, signed_bytes.substr(signed_bytes.size() - 36, 32));
    forged = WithCrc(forged.substr(0, forged.size() - 4));
    Result<Delta> r = DecodeDelta(forged, {.hmac_key = "replica-key"});
    REQUIRE(r.status().code() == ErrorCode::kCorrupt);
    REQUIRE(r.status().message().find("HMAC") != std::string::npos);
  }
}

TEST_CASE("delta size meets 1.1 x entropy bound plus a 64 byte header", "[wire]") {
  const uint64_t n = GENERATE(uint64_t{61706}, uint64_t{1000000});
  const double ratio = GENERATE(0.01, 0.001, 0.0001);
  const auto encoding = GENERATE(ValueEncoding::kF32New, ValueEncoding::kF16Increment);
  std::mt19937_64 rng(n + static_cast<uint64_t>(ratio * 1e6));
  const Delta d = RandomDelta(rng, {n}, ratio, encoding);
  const uint64_t k = d.tensors[0].indices.size();
  const std::string bytes = *EncodeDelta(d);
  const double bound = EntropyBoundBits(n, k, ValueBits(encoding));
  std::printf("wire size: N=%llu k=%llu bits/value=%d: %zu bytes, bound %.0f bytes, ratio %.4f\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(k),
              ValueBits(encoding), bytes.size(), bound / 8, bytes.size() * 8 / bound);
  REQUIRE(bytes.size() * 8.0 <= 1.1 * bound + 64 * 8);
}

TEST_CASE("whole LeNet-5 delta size against the summed bound", "[wire]") {
  // Many small tensors: each pays a few bytes of header, reported rather than bounded.
  const double ratio = GENERATE(0.01, 0.001);
  std::mt19937_64 rng(99);
  const Delta d = RandomDelta(rng, kLeNet5, ratio, ValueEncoding::kF32New);
  double bound = 0;
  for (const DeltaTensor& t : d.tensors)
    bound += EntropyBoundBits(t.tensor_size, t.indices.size(), 32);
  const std::string bytes = *EncodeDelta(d);
  std::printf(
      "wire size: LeNet-5 (61706 params, 10 tensors) ratio %.3f: %zu bytes, bound %.0f "
      "bytes, ratio %.4f, excess over 1.1x bound %.0f bytes\n",
      ratio, bytes.size(), bound / 8, bytes.size() * 8 / bound, bytes.size() - 1.1 * bound / 8);
  REQUIRE(bytes.size() * 8.0 <= 1.1 * bound + (64 + 8 * d.tensors.size()) * 8);
}

TEST_CASE("EntropyBoundBits matches log2 of the binomial", "[wire]") {
  CHECK(EntropyBoundBits(10, 0, 32) == Approx(0.0).margin(1e-9));
  CHECK(EntropyBoundBits(10, 10, 16) == Approx(160.0));
  CHECK(EntropyBoundBits(10, 3, 0) == Approx(std::log2(120.0)));
  CHECK(EntropyBoundBits(1000000, 1, 32) == Approx(32 + std::log2(1e6)));
}

}  // namespace streamtrain::wire
