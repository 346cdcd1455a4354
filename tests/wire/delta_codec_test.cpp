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
#include "support/random_delta.h"

namespace streamtrain::wire {
namespace {

using testing::kLeNet5;
using testing::LayoutOf;
using testing::RandomDelta;
using testing::ReferenceCrc32c;
using testing::RequireSame;
using testing::WithCrc;

}  // namespace

TEST_CASE("delta round trip over random layouts ratios and encodings", "[wire]") {
  const auto encoding =
      GENERATE(ValueEncoding::kF32New, ValueEncoding::kF16Increment, ValueEncoding::kBf16Increment);
  const double ratio = GENERATE(1.0, 0.5, 0.2, 0.01, 0.001, 0.0001);
  const bool sign = GENERATE(false, true);
  const uint8_t version = GENERATE(kDeltaFormatVersion, kDeltaFormatVersionV1);
  std::mt19937_64 rng(static_cast<uint64_t>(ratio * 1e6) * 31 + static_cast<int>(encoding));
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<uint64_t> sizes(1 + rng() % 6);
    for (auto& s : sizes) s = 1 + rng() % (trial == 0 ? 10 : 20000);
    const Delta d = RandomDelta(rng, sizes, ratio, encoding);
    const std::vector<TensorRange> layout = LayoutOf(sizes);
    EncodeOptions eo{.version = version};
    DecodeOptions dopt{.layout = layout};
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
  const std::vector<TensorRange> layout = LayoutOf({7, 1, 20, 1000000, 1});
  SECTION("v2: an empty delta needs no layout; empty tensors are not on the wire") {
    Result<Delta> empty = DecodeDelta(*EncodeDelta(d));
    REQUIRE(empty.ok());
    REQUIRE(empty->tensors.empty());
    REQUIRE(DecodeDelta(*EncodeDelta(d, {.layout = layout}), {.layout = layout})->tensors.empty());
    d.tensors.push_back(DeltaTensor{3, 1000000, {}, {}});
    d.tensors.push_back(DeltaTensor{4, 1, {0}, {1.5f}});
    Result<Delta> back = DecodeDelta(*EncodeDelta(d, {.layout = layout}), {.layout = layout});
    REQUIRE(back.ok());
    d.tensors.erase(d.tensors.begin());
    RequireSame(d, *back);
  }
  SECTION("v1 keeps empty tensors") {
    const EncodeOptions v1{.version = kDeltaFormatVersionV1};
    REQUIRE(DecodeDelta(*EncodeDelta(d, v1)).ok());
    d.tensors.push_back(DeltaTensor{3, 1000000, {}, {}});
    d.tensors.push_back(DeltaTensor{4, 1, {0}, {1.5f}});
    Result<Delta> back = DecodeDelta(*EncodeDelta(d, v1));
    REQUIRE(back.ok());
    RequireSame(d, *back);
  }
}

TEST_CASE("EncodeDelta refuses inconsistent deltas", "[wire]") {
  Delta d;
  d.tensors.push_back(DeltaTensor{0, 10, {1, 5}, {1.0f, 2.0f}});
  const std::vector<TensorRange> layout = LayoutOf({10});
  EncodeOptions options{.layout = layout};
  REQUIRE(EncodeDelta(d, options).ok());
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
  SECTION("unknown format version") { options.version = 3; }
  SECTION("v2: a tensor the layout does not have") { d.tensors[0].tensor_index = 1; }
  SECTION("v2: a size other than the layout's") { d.tensors[0].tensor_size = 11; }
  SECTION("v2 without a layout: a tensor left out") {
    options.layout = {};
    d.tensors[0].tensor_index = 1;
  }
  Result<std::string> r = EncodeDelta(d, options);
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.status().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("every truncation of a delta is rejected as corrupt", "[wire]") {
  std::mt19937_64 rng(11);
  const bool sign = GENERATE(false, true);
  const uint8_t version = GENERATE(kDeltaFormatVersion, kDeltaFormatVersionV1);
  const Delta d = RandomDelta(rng, {500, 7, 3000}, 0.05, ValueEncoding::kF16Increment);
  const std::vector<TensorRange> layout = LayoutOf({500, 7, 3000});
  EncodeOptions eo{.version = version};
  DecodeOptions dopt{.layout = layout};
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
  const std::vector<TensorRange> layout = LayoutOf(kLeNet5);
  const uint8_t version = GENERATE(kDeltaFormatVersion, kDeltaFormatVersionV1);
  const std::string bytes = *EncodeDelta(d, {.version = version});
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bad = bytes;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] ^= static_cast<char>(1 << (rng() % 8));
    if (bad == bytes) continue;
    Result<Delta> r = DecodeDelta(bad, {.layout = layout});
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.status().code() == ErrorCode::kCorrupt);
  }
}

TEST_CASE("garbage with a valid CRC is rejected with a reason", "[wire]") {
  // Bytes that pass the CRC but make no sense: the structural checks must catch them.
  std::mt19937_64 rng(13);
  Delta d = RandomDelta(rng, {64, 4000}, 0.02, ValueEncoding::kBf16Increment);
  const std::vector<TensorRange> layout = LayoutOf({64, 4000});
  const uint8_t version = GENERATE(kDeltaFormatVersion, kDeltaFormatVersionV1);
  const std::string good = *EncodeDelta(d, {.version = version});
  for (int trial = 0; trial < 3000; ++trial) {
    std::string body = good.substr(0, good.size() - 4);
    const size_t from = 6 + rng() % (body.size() - 6);  // keep magic, version and flags
    body[from] = static_cast<char>(rng());
    if (rng() % 4 == 0) body.resize(6 + rng() % (body.size() - 6));
    body = WithCrc(body);
    Result<Delta> r = DecodeDelta(body, {.layout = layout});
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
  for (const uint8_t version : {0, 3, 255}) {
    std::string bad_version = bytes;
    bad_version[4] = static_cast<char>(version);
    r = DecodeDelta(bad_version);
    REQUIRE(r.status().code() == ErrorCode::kCorrupt);
    REQUIRE(r.status().message().find("version " + std::to_string(version)) != std::string::npos);
  }
}

TEST_CASE("delta HMAC accepts signed and rejects unsigned and forged messages", "[wire]") {
  std::mt19937_64 rng(14);
  const Delta d = RandomDelta(rng, {1000, 10}, 0.05, ValueEncoding::kF32New);
  const std::vector<TensorRange> layout = LayoutOf({1000, 10});
  const std::string signed_bytes = *EncodeDelta(d, {.hmac_key = "replica-key"});
  const std::string unsigned_bytes = *EncodeDelta(d);

  SECTION("signed with the right key") {
    REQUIRE(DecodeDelta(signed_bytes, {.hmac_key = "replica-key", .layout = layout}).ok());
  }
  SECTION("signed but the reader has no key") {
    REQUIRE(DecodeDelta(signed_bytes, {.layout = layout}).ok());
  }
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
  const std::string bytes = *EncodeDelta(d);  // v2
  const double bound = EntropyBoundBits(n, k, ValueBits(encoding));
  std::printf("wire size: N=%llu k=%llu bits/value=%d: %zu bytes, bound %.0f bytes, ratio %.4f\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(k),
              ValueBits(encoding), bytes.size(), bound / 8, bytes.size() * 8 / bound);
  REQUIRE(bytes.size() * 8.0 <= 1.1 * bound + 64 * 8);
}

TEST_CASE("whole LeNet-5 delta size meets 1.1 x the summed bound plus 64 bytes", "[wire]") {
  // Many small tensors: v2 has no per-tensor framing, so the bound holds down to k = 1 each.
  const double ratio = GENERATE(0.01, 0.001, 0.0001);
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
  REQUIRE(bytes.size() * 8.0 <= 1.1 * bound + 64 * 8);
}

TEST_CASE("EntropyBoundBits matches log2 of the binomial", "[wire]") {
  CHECK(EntropyBoundBits(10, 0, 32) == Approx(0.0).margin(1e-9));
  CHECK(EntropyBoundBits(10, 10, 16) == Approx(160.0));
  CHECK(EntropyBoundBits(10, 3, 0) == Approx(std::log2(120.0)));
  CHECK(EntropyBoundBits(1000000, 1, 32) == Approx(32 + std::log2(1e6)));
}

}  // namespace streamtrain::wire
