// IEEE-754 binary16 (f16) and bfloat16 (bf16) conversions used by the increment encodings.
//
// Float to 16-bit rounds to nearest, ties to even; overflow goes to infinity; NaN stays a
// (quiet) NaN with the sign kept. 16-bit to float is exact. These are our own, so trainer
// and replicas round identically whatever the CPU or compiler (DESIGN.md, invariant 2).
// Pure functions; thread-safe.
//
//   uint16_t h = FloatToHalf(0.1f);     // 0x2E66
//   float back = HalfToFloat(h);        // 0.0999755859375f
#pragma once

#include <cstdint>

namespace streamtrain::wire {

// binary32 -> binary16, round to nearest even.
uint16_t FloatToHalf(float value);
// binary16 -> binary32, exact.
float HalfToFloat(uint16_t half);
// binary32 -> bfloat16 (the top 16 bits), round to nearest even.
uint16_t FloatToBfloat16(float value);
// bfloat16 -> binary32, exact.
float Bfloat16ToFloat(uint16_t bf16);

}  // namespace streamtrain::wire
