// bit_exact.h against the CPU functions it mirrors: on the host ([host], runs anywhere) and
// on the device ([device], needs a CUDA device).
#include "streamtrain/gpu/bit_exact.h"

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/wire/apply.h"
#include "streamtrain/wire/half.h"
#include "support/bit_exact_kernels.h"
#include "support/device_array.h"

namespace streamtrain::gpu {
namespace {

using testing::DeviceArray;

// Floats that exercise every branch: zeros, subnormals, half/bf16 rounding ties and
// overflow edges, infinities, NaNs with payloads.
std::vector<float> SpecialFloats() {
  std::vector<uint32_t> bits = {0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x00800000,
                                0x33000000, 0x33000001, 0x387fe000, 0x38800000, 0x3f800000,
                                0x3f801000, 0x3f803000, 0x477fe000, 0x477ff000, 0x477fefff,
                                0x47800000, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000,
                                0x7fc00000, 0xffc00001, 0x7f800001, 0x3f808000, 0x3f818000};
  std::vector<float> out;
  for (uint32_t b : bits) out.push_back(std::bit_cast<float>(b));
  return out;
}

// Random floats over every exponent, and the specials.
std::vector<float> MixedFloats(size_t n, uint64_t seed, bool with_nan) {
  std::mt19937_64 rng(seed);
  std::vector<float> out = SpecialFloats();
  while (out.size() < n) {
    const float v = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (!with_nan && std::isnan(v)) continue;
    out.push_back(v);
  }
  if (!with_nan) std::erase_if(out, [](float v) { return std::isnan(v); });
  return out;
}

constexpr Encoding kEncodings[] = {Encoding::kF32New, Encoding::kF16Increment,
                                   Encoding::kBf16Increment};

TEST_CASE("host: f16 and bf16 narrowing equal the wire library for all 2^32 floats",
          "[gpu][host]") {
  uint64_t half_mismatches = 0, bf16_mismatches = 0;
  for (uint64_t x = 0; x <= 0xffffffffull; ++x) {
    const float v = std::bit_cast<float>(static_cast<uint32_t>(x));
    half_mismatches += FloatToHalf(v) != wire::FloatToHalf(v) ? 1 : 0;
    bf16_mismatches += FloatToBfloat16(v) != wire::FloatToBfloat16(v) ? 1 : 0;
  }
  CHECK(half_mismatches == 0);
  CHECK(bf16_mismatches == 0);
}

TEST_CASE("host: f16 and bf16 widening equal the wire library for all 2^16 values", "[gpu][host]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto v = static_cast<uint16_t>(h);
    REQUIRE(FloatBits(HalfToFloat(v)) == std::bit_cast<uint32_t>(wire::HalfToFloat(v)));
    REQUIRE(FloatBits(Bfloat16ToFloat(v)) == std::bit_cast<uint32_t>(wire::Bfloat16ToFloat(v)));
  }
}

TEST_CASE("host: AppliedValue and DigestTerm equal the wire and common functions", "[gpu][host]") {
  const std::vector<float> olds = MixedFloats(20000, 1, /*with_nan=*/true);
  const std::vector<float> values = MixedFloats(20000, 2, /*with_nan=*/true);
  for (Encoding e : kEncodings) {
    for (size_t i = 0; i < olds.size() && i < values.size(); ++i) {
      const float want =
          wire::AppliedValue(olds[i], values[i], static_cast<wire::ValueEncoding>(e));
      REQUIRE(FloatBits(AppliedValue(olds[i], values[i], e)) == std::bit_cast<uint32_t>(want));
    }
  }
  std::mt19937_64 rng(3);
  for (float v : olds) {
    const uint64_t index = rng() >> (rng() % 64);
    REQUIRE(DigestTerm(index, FloatBits(v)) == streamtrain::DigestTerm(index, v));
    const float w = values[index % values.size()];
    REQUIRE(uint64_t{12345} + DigestChange(index, FloatBits(v), FloatBits(w)) ==
            UpdateDigest(12345, index, v, w));
  }
}

TEST_CASE("host: RankKey orders by |v| then lower index", "[gpu][host]") {
  CHECK(RankKey(AbsBits(-2.0f), 7) > RankKey(AbsBits(1.0f), 3));
  CHECK(RankKey(AbsBits(-1.0f), 3) > RankKey(AbsBits(1.0f), 4));
  CHECK(RankKey(AbsBits(std::numeric_limits<float>::quiet_NaN()), 9) >
        RankKey(AbsBits(std::numeric_limits<float>::infinity()), 0));
  CHECK(KeyIndex(RankKey(AbsBits(3.0f), 0xfffffffeu)) == 0xfffffffeu);
  CHECK(RankKey(AbsBits(-0.0f), 1) == RankKey(AbsBits(0.0f), 1));
}

TEST_CASE("device: f16 and bf16 conversions equal the wire library for all inputs",
          "[gpu][device]") {
  testing::RequireDevice();
  constexpr uint64_t kChunk = uint64_t{1} << 26;
  DeviceArray<uint16_t> half(kChunk), bf16(kChunk);
  uint64_t mismatches = 0;
  for (uint64_t begin = 0; begin < (uint64_t{1} << 32); begin += kChunk) {
    REQUIRE(testing::DeviceNarrow(begin, kChunk, half.get(), bf16.get()) == 0);
    const std::vector<uint16_t> h = half.Download(), b = bf16.Download();
    for (uint64_t i = 0; i < kChunk; ++i) {
      const float v = std::bit_cast<float>(static_cast<uint32_t>(begin + i));
      mismatches += h[i] != wire::FloatToHalf(v) ? 1 : 0;
      mismatches += b[i] != wire::FloatToBfloat16(v) ? 1 : 0;
    }
  }
  CHECK(mismatches == 0);
  DeviceArray<uint32_t> half_bits(65536), bf16_bits(65536);
  REQUIRE(testing::DeviceWiden(half_bits.get(), bf16_bits.get()) == 0);
  const std::vector<uint32_t> hb = half_bits.Download(), bb = bf16_bits.Download();
  for (uint32_t h = 0; h < 65536; ++h) {
    REQUIRE(hb[h] == std::bit_cast<uint32_t>(wire::HalfToFloat(static_cast<uint16_t>(h))));
    REQUIRE(bb[h] == std::bit_cast<uint32_t>(wire::Bfloat16ToFloat(static_cast<uint16_t>(h))));
  }
}

TEST_CASE("device: AppliedValue equals the wire library (NaN-free) and DigestTerm common's",
          "[gpu][device]") {
  testing::RequireDevice();
  // Increments add in float: CUDA returns its canonical NaN where x86 keeps a payload
  // (docs/gpu.md), so the increment comparison is over NaN-free inputs; f32 new values move
  // bits unchanged, NaNs included.
  const Encoding e = GENERATE(Encoding::kF32New, Encoding::kF16Increment, Encoding::kBf16Increment);
  const bool with_nan = e == Encoding::kF32New;
  std::vector<float> olds = MixedFloats(1 << 20, 5, with_nan);
  std::vector<float> values = MixedFloats(1 << 20, 6, with_nan);
  const size_t n = std::min(olds.size(), values.size());
  olds.resize(n);
  values.resize(n);
  DeviceArray<float> d_old(olds), d_values(values), d_out(n);
  REQUIRE(testing::DeviceAppliedValue(d_old.get(), d_values.get(), n, static_cast<uint8_t>(e),
                                      d_out.get()) == 0);
  const std::vector<float> out = d_out.Download();
  for (size_t i = 0; i < n; ++i) {
    const float want = wire::AppliedValue(olds[i], values[i], static_cast<wire::ValueEncoding>(e));
    INFO("old " << olds[i] << " value " << values[i]);
    if (std::isnan(want)) {
      REQUIRE(std::isnan(out[i]));  // inf + -inf: a NaN on both, payloads differ
    } else {
      REQUIRE(std::bit_cast<uint32_t>(out[i]) == std::bit_cast<uint32_t>(want));
    }
  }

  std::mt19937_64 rng(7);
  std::vector<uint64_t> indices(n);
  for (uint64_t& i : indices) i = rng() >> (rng() % 64);
  DeviceArray<uint64_t> d_indices(indices), d_terms(n);
  REQUIRE(testing::DeviceDigestTerms(d_indices.get(), d_old.get(), n, d_terms.get()) == 0);
  const std::vector<uint64_t> terms = d_terms.Download();
  for (size_t i = 0; i < n; ++i) REQUIRE(terms[i] == streamtrain::DigestTerm(indices[i], olds[i]));
}

}  // namespace
}  // namespace streamtrain::gpu
