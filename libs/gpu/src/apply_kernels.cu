// Apply and digest kernels (kernels.h has the contracts, apply.cpp the order). The digest is
// a sum mod 2^64 of per-coordinate terms: unsigned addition is associative and commutative,
// so the block reductions and the 64-bit atomicAdd give the same value whatever order the
// threads and blocks add in -- the result is the CPU's sequential sum, bit for bit.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels.h"
#include "streamtrain/gpu/selection_plan.h"

namespace streamtrain::gpu::internal {
namespace {

constexpr uint32_t kThreads = 256;
constexpr uint32_t kMaxGrid = 4096;

cudaStream_t AsStream(void* stream) { return static_cast<cudaStream_t>(stream); }

uint32_t GridFor(uint64_t n) {
  return static_cast<uint32_t>(
      std::max<uint64_t>(1, std::min<uint64_t>(kMaxGrid, (n + kThreads - 1) / kThreads)));
}

// Adds each thread's `value` into *total (mod 2^64). Every thread of the block must call it.
__device__ void AddToTotal(uint64_t value, uint64_t* total) {
  __shared__ uint64_t partial[kThreads];
  partial[threadIdx.x] = value;
  __syncthreads();
  for (uint32_t stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    atomicAdd(reinterpret_cast<unsigned long long*>(total),
              static_cast<unsigned long long>(partial[0]));
  }
}

__global__ void CheckIndicesKernel(const uint64_t* indices, uint64_t count, uint64_t n,
                                   DeviceState* state) {
  for (uint64_t j = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; j < count;
       j += uint64_t{gridDim.x} * blockDim.x) {
    if (indices[j] >= n || (j > 0 && indices[j - 1] >= indices[j])) atomicOr(&state->bad, 1u);
  }
}

// Indices are distinct (checked above), so each thread owns its coordinate: no races.
__global__ void ApplyKernel(const uint64_t* indices, const float* values, uint64_t count,
                            Encoding encoding, const float* params, float* params_out, float* saved,
                            DeviceState* state) {
  if (state->bad != 0) return;  // uniform across the grid: no thread reaches AddToTotal
  uint64_t change = 0;
  for (uint64_t j = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; j < count;
       j += uint64_t{gridDim.x} * blockDim.x) {
    const uint64_t at = indices[j];
    const float old_value = params[at];
    const float new_value = AppliedValue(old_value, values[j], encoding);
    change += DigestChange(at, FloatBits(old_value), FloatBits(new_value));
    if (params_out != nullptr) {
      saved[j] = old_value;
      params_out[at] = new_value;
    }
  }
  AddToTotal(change, &state->digest);
}

__global__ void RestoreKernel(const uint64_t* indices, const float* saved, uint64_t count,
                              float* params) {
  for (uint64_t j = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; j < count;
       j += uint64_t{gridDim.x} * blockDim.x) {
    params[indices[j]] = saved[j];
  }
}

__global__ void DigestParametersKernel(const float* params, uint64_t n, DeviceState* state) {
  uint64_t sum = 0;
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < n;
       i += uint64_t{gridDim.x} * blockDim.x) {
    sum += DigestTerm(i, FloatBits(params[i]));
  }
  AddToTotal(sum, &state->digest);
}

}  // namespace

int LaunchCheckIndices(const uint64_t* indices, uint64_t count, uint64_t n, DeviceState* state,
                       void* stream) {
  CheckIndicesKernel<<<GridFor(count), kThreads, 0, AsStream(stream)>>>(indices, count, n, state);
  return static_cast<int>(cudaGetLastError());
}

int LaunchApply(const uint64_t* indices, const float* values, uint64_t count, Encoding encoding,
                const float* params, float* params_out, float* saved, DeviceState* state,
                void* stream) {
  ApplyKernel<<<GridFor(count), kThreads, 0, AsStream(stream)>>>(indices, values, count, encoding,
                                                                 params, params_out, saved, state);
  return static_cast<int>(cudaGetLastError());
}

int LaunchRestore(const uint64_t* indices, const float* saved, uint64_t count, float* params,
                  void* stream) {
  RestoreKernel<<<GridFor(count), kThreads, 0, AsStream(stream)>>>(indices, saved, count, params);
  return static_cast<int>(cudaGetLastError());
}

int LaunchDigestParameters(const float* params, uint64_t n, DeviceState* state, void* stream) {
  DigestParametersKernel<<<GridFor(n), kThreads, 0, AsStream(stream)>>>(params, n, state);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace streamtrain::gpu::internal
