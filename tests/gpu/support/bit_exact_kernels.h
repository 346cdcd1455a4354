// Device evaluations of bit_exact.h for streamtrain_gpu_tests, so the tests can compare the
// device's bits with the CPU functions. Pointers are device memory; each call waits for its
// kernel and returns the cudaError_t as an int.
#pragma once

#include <cstdint>

namespace streamtrain::gpu::testing {

// For x in [begin, begin + count): half[x - begin] = FloatToHalf(float with bits x),
// bf16[...] = FloatToBfloat16(...).
int DeviceNarrow(uint64_t begin, uint64_t count, uint16_t* half, uint16_t* bf16);
// For every 16-bit h: half_bits[h] = bits of HalfToFloat(h), bf16_bits[h] of Bfloat16ToFloat.
int DeviceWiden(uint32_t* half_bits, uint32_t* bf16_bits);
// out[i] = AppliedValue(old_values[i], values[i], encoding).
int DeviceAppliedValue(const float* old_values, const float* values, uint64_t n, uint8_t encoding,
                       float* out);
// out[i] = DigestTerm(indices[i], bits of values[i]).
int DeviceDigestTerms(const uint64_t* indices, const float* values, uint64_t n, uint64_t* out);

}  // namespace streamtrain::gpu::testing
