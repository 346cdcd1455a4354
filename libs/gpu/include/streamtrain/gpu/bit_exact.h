// Bit-exact scalar math shared by the host and the CUDA kernels: the digest term, the
// f16/bf16 conversions, the applied value of a delta coordinate and the selection's rank key.
//
// Each function is the same integer (or single IEEE-754 float add/subtract) computation as
// the CPU code it mirrors, so host and device give the same bits:
//   DigestTerm              common/src/parameter_digest.cpp  DigestTerm
//   FloatToHalf/HalfToFloat wire/src/half.cpp                (round to nearest even, exact)
//   FloatToBfloat16/...     wire/src/half.cpp
//   AppliedValue            wire/src/apply.cpp               AppliedValue
//   AbsBits/RankKey/KeyIndex sparse/src/candidate_scan.h     (larger |v| first, ties to the
//                                                             lower index)
// tests/gpu/bit_exact_test.cpp checks every one against the CPU function on the host
// (the conversions over all 2^32 floats), and on the device against the host.
//
// Float arithmetic is one operation per result (no multiply-add to contract) and uses the
// round-to-nearest intrinsics on the device; libs/gpu is compiled with -fmad=false
// -ftz=false -prec-div=true -prec-sqrt=true, and the host side without -ffast-math, so
// subnormals and signed zeros behave the same. NaN payloads are the one exception: CUDA
// arithmetic returns the canonical NaN 0x7fffffff where x86 propagates an operand's payload
// (docs/gpu.md, "NaN"). Pure functions; thread-safe. Include without CUDA from any C++.
//
//   uint64_t d = digest - DigestTerm(i, FloatBits(old_value)) + DigestTerm(i, FloatBits(v));
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define ST_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define ST_HOST_DEVICE inline
#endif

namespace streamtrain::gpu {

// Value encodings, numbered as wire::ValueEncoding (checked by a static_assert in
// libs/gpu/src/apply.cpp, where both are visible).
enum class Encoding : uint8_t {
  kF32New = 0,
  kF16Increment = 1,
  kBf16Increment = 2,
};

ST_HOST_DEVICE uint32_t FloatBits(float value) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(value);
#else
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
#endif
}

ST_HOST_DEVICE float BitsFloat(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

// a + b and a - b, rounded to nearest even, never fused with a neighbouring operation.
ST_HOST_DEVICE float AddRn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

ST_HOST_DEVICE float SubRn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

// ---- digest (parameter_digest.cpp) --------------------------------------------------------

ST_HOST_DEVICE uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The digest term of coordinate `index` holding the float with bit pattern `bits`.
ST_HOST_DEVICE uint64_t DigestTerm(uint64_t index, uint32_t bits) {
  return SplitMix64((index << 32) ^ (index >> 32) ^ bits);
}

// What the digest changes by when `index` goes from old_bits to new_bits (mod 2^64).
ST_HOST_DEVICE uint64_t DigestChange(uint64_t index, uint32_t old_bits, uint32_t new_bits) {
  return DigestTerm(index, new_bits) - DigestTerm(index, old_bits);
}

// ---- f16 / bf16 (half.cpp) ----------------------------------------------------------------

ST_HOST_DEVICE uint16_t FloatToHalf(float value) {
  uint32_t x = FloatBits(value);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7FFFFFFFu;
  if (x >= 0x7F800000u) {
    if (x == 0x7F800000u) return sign | 0x7C00u;
    return static_cast<uint16_t>(sign | 0x7E00u | ((x >> 13) & 0x3FFu));
  }
  const uint32_t exponent = x >> 23;
  if (exponent > 142) return sign | 0x7C00u;
  if (exponent >= 113) {
    uint32_t h = ((exponent - 112) << 10) | ((x & 0x7FFFFFu) >> 13);
    const uint32_t rest = x & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  if (exponent == 0) return sign;
  const uint32_t mantissa = (x & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126 - exponent;
  if (shift >= 25) return sign;
  uint32_t q = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1u);
  const uint32_t half_unit = 1u << (shift - 1);
  if (rest > half_unit || (rest == half_unit && (q & 1u))) ++q;
  return static_cast<uint16_t>(sign | q);
}

ST_HOST_DEVICE float HalfToFloat(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1Fu;
  uint32_t mantissa = half & 0x3FFu;
  if (exponent == 0x1F) return BitsFloat(sign | 0x7F800000u | (mantissa << 13));
  if (exponent != 0) return BitsFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return BitsFloat(sign);
  uint32_t e = 113;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --e;
  }
  return BitsFloat(sign | (e << 23) | ((mantissa & 0x3FFu) << 13));
}

ST_HOST_DEVICE uint16_t FloatToBfloat16(float value) {
  const uint32_t x = FloatBits(value);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  const uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

ST_HOST_DEVICE float Bfloat16ToFloat(uint16_t bf16) {
  return BitsFloat(static_cast<uint32_t>(bf16) << 16);
}

// ---- apply (apply.cpp) --------------------------------------------------------------------

// The value coordinate `old_value` takes under one delta value.
ST_HOST_DEVICE float AppliedValue(float old_value, float value, Encoding encoding) {
  switch (encoding) {
    case Encoding::kF32New:
      return value;
    case Encoding::kF16Increment:
      return AddRn(old_value, HalfToFloat(FloatToHalf(value)));
    case Encoding::kBf16Increment:
      return AddRn(old_value, Bfloat16ToFloat(FloatToBfloat16(value)));
  }
  return value;
}

// ---- selection order (candidate_scan.h) ---------------------------------------------------

ST_HOST_DEVICE uint32_t AbsBits(float v) { return FloatBits(v) & 0x7fffffffu; }
// |v|'s bits above the inverted index: larger |v| first, ties to the lower index, as one
// unsigned compare. Indices are below 2^32 (sparse::ValidateLayout).
ST_HOST_DEVICE uint64_t RankKey(uint32_t abs_bits, uint64_t index) {
  return (uint64_t{abs_bits} << 32) | (0xffffffffu - static_cast<uint32_t>(index));
}
ST_HOST_DEVICE uint64_t KeyIndex(uint64_t key) { return 0xffffffffu - static_cast<uint32_t>(key); }

}  // namespace streamtrain::gpu
