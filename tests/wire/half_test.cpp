#include "streamtrain/wire/half.h"

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>

namespace streamtrain::wire {
namespace {

bool IsHalfNan(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0; }

}  // namespace

TEST_CASE("f16 to float and back is exact for every half", "[wire]") {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto half = static_cast<uint16_t>(h);
    const float f = HalfToFloat(half);
    if (IsHalfNan(half)) {
      REQUIRE(std::isnan(f));
      REQUIRE(IsHalfNan(FloatToHalf(f)));
    } else {
      REQUIRE(FloatToHalf(f) == half);
    }
  }
}

TEST_CASE("f16 rounds to nearest with ties to even", "[wire]") {
  // Every midpoint between two adjacent positive finite halves, and a hair either side.
  for (uint16_t h = 0; h < 0x7BFF; ++h) {
    const double lo = HalfToFloat(h);
    const double hi = HalfToFloat(static_cast<uint16_t>(h + 1));
    const auto mid = static_cast<float>((lo + hi) / 2);  // exact in float
    const uint16_t even = (h & 1u) ? static_cast<uint16_t>(h + 1) : h;
    REQUIRE(FloatToHalf(mid) == even);
    REQUIRE(FloatToHalf(std::nextafter(mid, 0.0f)) == h);
    REQUIRE(FloatToHalf(std::nextafter(mid, 1e9f)) == h + 1);
    REQUIRE(FloatToHalf(-mid) == (even | 0x8000u));
  }
  CHECK(FloatToHalf(65504.0f) == 0x7BFF);
  CHECK(FloatToHalf(65519.99f) == 0x7BFF);
  CHECK(FloatToHalf(65520.0f) == 0x7C00);
  CHECK(FloatToHalf(1e30f) == 0x7C00);
  CHECK(FloatToHalf(-INFINITY) == 0xFC00);
  CHECK(FloatToHalf(1e-30f) == 0x0000);
  CHECK(FloatToHalf(-0.0f) == 0x8000);
  CHECK(FloatToHalf(std::ldexp(1.0f, -25)) == 0x0000);  // tie to even (zero)
  CHECK(FloatToHalf(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001);
  CHECK(IsHalfNan(FloatToHalf(NAN)));
}

TEST_CASE("bf16 rounds to nearest with ties to even", "[wire]") {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const auto bits = static_cast<uint32_t>(rng());
    const float f = std::bit_cast<float>(bits);
    if (std::isnan(f)) {
      REQUIRE(std::isnan(Bfloat16ToFloat(FloatToBfloat16(f))));
      continue;
    }
    const uint16_t b = FloatToBfloat16(f);
    const double got = Bfloat16ToFloat(b);
    // No other bf16 is nearer (compare with the neighbours of the truncated value).
    const auto trunc = static_cast<uint16_t>(bits >> 16);
    for (int d : {-1, 0, 1, 2}) {
      const auto other = static_cast<uint16_t>(trunc + d);
      const double o = Bfloat16ToFloat(other);
      if (std::isnan(o) || std::isinf(o) != std::isinf(got)) continue;
      REQUIRE(std::fabs(got - f) <= std::fabs(o - f));
    }
  }
  CHECK(FloatToBfloat16(1.0f) == 0x3F80);
  CHECK(FloatToBfloat16(std::bit_cast<float>(0x3F808000u)) == 0x3F80);  // tie, even stays
  CHECK(FloatToBfloat16(std::bit_cast<float>(0x3F818000u)) == 0x3F82);  // tie, odd rounds up
  CHECK(Bfloat16ToFloat(FloatToBfloat16(3.0f)) == 3.0f);
}

}  // namespace streamtrain::wire
