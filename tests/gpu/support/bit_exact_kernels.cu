#include <cuda_runtime.h>

#include "bit_exact_kernels.h"
#include "streamtrain/gpu/bit_exact.h"

namespace streamtrain::gpu::testing {
namespace {

__global__ void NarrowKernel(uint64_t begin, uint64_t count, uint16_t* half, uint16_t* bf16) {
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < count;
       i += uint64_t{gridDim.x} * blockDim.x) {
    const float v = BitsFloat(static_cast<uint32_t>(begin + i));
    half[i] = FloatToHalf(v);
    bf16[i] = FloatToBfloat16(v);
  }
}

__global__ void WidenKernel(uint32_t* half_bits, uint32_t* bf16_bits) {
  const uint32_t h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h < 65536) {
    half_bits[h] = FloatBits(HalfToFloat(static_cast<uint16_t>(h)));
    bf16_bits[h] = FloatBits(Bfloat16ToFloat(static_cast<uint16_t>(h)));
  }
}

__global__ void AppliedValueKernel(const float* old_values, const float* values, uint64_t n,
                                   uint8_t encoding, float* out) {
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < n;
       i += uint64_t{gridDim.x} * blockDim.x) {
    out[i] = AppliedValue(old_values[i], values[i], static_cast<Encoding>(encoding));
  }
}

__global__ void DigestTermsKernel(const uint64_t* indices, const float* values, uint64_t n,
                                  uint64_t* out) {
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < n;
       i += uint64_t{gridDim.x} * blockDim.x) {
    out[i] = DigestTerm(indices[i], FloatBits(values[i]));
  }
}

int Finish() {
  const cudaError_t launched = cudaGetLastError();
  if (launched != cudaSuccess) return static_cast<int>(launched);
  return static_cast<int>(cudaDeviceSynchronize());
}

}  // namespace

int DeviceNarrow(uint64_t begin, uint64_t count, uint16_t* half, uint16_t* bf16) {
  NarrowKernel<<<4096, 256>>>(begin, count, half, bf16);
  return Finish();
}

int DeviceWiden(uint32_t* half_bits, uint32_t* bf16_bits) {
  WidenKernel<<<256, 256>>>(half_bits, bf16_bits);
  return Finish();
}

int DeviceAppliedValue(const float* old_values, const float* values, uint64_t n, uint8_t encoding,
                       float* out) {
  AppliedValueKernel<<<1024, 256>>>(old_values, values, n, encoding, out);
  return Finish();
}

int DeviceDigestTerms(const uint64_t* indices, const float* values, uint64_t n, uint64_t* out) {
  DigestTermsKernel<<<1024, 256>>>(indices, values, n, out);
  return Finish();
}

}  // namespace streamtrain::gpu::testing
