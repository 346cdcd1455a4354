// The error-feedback selection kernels (kernels.h has the contracts, error_feedback.cpp the
// order they run in). Everything that decides a result is integer work on rank keys
// (bit_exact.h RankKey), so the selection is the CPU's exact set; the one float operation,
// the accumulate, is a round-to-nearest subtract then add, as the trainer's loop.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels.h"
#include "streamtrain/gpu/selection_plan.h"

namespace streamtrain::gpu::internal {
namespace {

constexpr uint32_t kWarps = kBlockThreads / 32;
constexpr uint32_t kRoundsPerTile = static_cast<uint32_t>(kScanTile / kBlockThreads);
constexpr uint32_t kMaxGrid = 4096;

cudaStream_t AsStream(void* stream) { return static_cast<cudaStream_t>(stream); }

uint32_t GridFor(uint64_t n) {
  return static_cast<uint32_t>(
      std::max<uint64_t>(1, std::min<uint64_t>(kMaxGrid, (n + kBlockThreads - 1) / kBlockThreads)));
}

uint32_t Tiles(uint64_t n, uint64_t tile) { return static_cast<uint32_t>((n + tile - 1) / tile); }

struct SampleKeys {
  const uint32_t* bits;
  __device__ uint64_t operator()(uint64_t i) const { return uint64_t{bits[i]} << 32; }
};

struct CandidateKeys {
  const uint64_t* keys;
  __device__ uint64_t operator()(uint64_t i) const { return keys[i]; }
};

struct ResidualKeys {
  const float* residual;
  __device__ uint64_t operator()(uint64_t i) const { return RankKey(AbsBits(residual[i]), i); }
};

// One block per kSampleTile elements. Each element is read and written once; the sample is
// written by the threads that computed its values, so it needs no second read.
__global__ void AccumulateAndSampleKernel(const float* __restrict__ trained,
                                          const float* __restrict__ served,
                                          float* __restrict__ residual, uint64_t n, uint64_t seed,
                                          uint64_t iteration, uint64_t tensor_offset,
                                          uint32_t* __restrict__ sample) {
  const uint64_t tile = blockIdx.x;
  const uint64_t base = tile * kSampleTile;
  const uint64_t len = min(kSampleTile, n - base);
  const uint64_t start = SampleStart(seed, iteration, tensor_offset, tile, len);
  const uint64_t run = min(kSampleRun, len);
  for (uint64_t j = threadIdx.x; j < len; j += kBlockThreads) {
    const uint64_t i = base + j;
    const float v = AddRn(residual[i], SubRn(trained[i], served[i]));
    residual[i] = v;
    const uint64_t at = j - start;  // wraps for j < start
    if (at < run) sample[tile * kSampleRun + at] = AbsBits(v);
  }
}

__global__ void AccumulateTakeAllKernel(const float* __restrict__ trained,
                                        const float* __restrict__ served,
                                        float* __restrict__ residual, uint64_t n,
                                        uint32_t* __restrict__ indices,
                                        float* __restrict__ values) {
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < n;
       i += uint64_t{gridDim.x} * blockDim.x) {
    values[i] = AddRn(residual[i], SubRn(trained[i], served[i]));
    indices[i] = static_cast<uint32_t>(i);
    residual[i] = 0.0f;
  }
}

__global__ void InitSelectKernel(DeviceState* state, uint64_t k) {
  state->prefix = 0;
  state->mask = 0;
  state->remaining = k;
}

// Histogram of the byte at `shift` of the keys that match the prefix chosen so far. The
// counts are integers, so the atomics give the same histogram in any order.
template <typename KeyFn>
__global__ void DigitHistogramKernel(KeyFn key, uint64_t n, const DeviceState* state, int shift,
                                     uint32_t* histogram) {
  __shared__ uint32_t local[256];
  for (uint32_t d = threadIdx.x; d < 256; d += blockDim.x) local[d] = 0;
  __syncthreads();
  const uint64_t prefix = state->prefix, mask = state->mask;
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < n;
       i += uint64_t{gridDim.x} * blockDim.x) {
    const uint64_t k = key(i);
    if ((k & mask) == prefix) atomicAdd(&local[(k >> shift) & 0xffu], 1u);
  }
  __syncthreads();
  for (uint32_t d = threadIdx.x; d < 256; d += blockDim.x) {
    if (local[d] != 0) atomicAdd(&histogram[d], local[d]);
  }
}

// 256 threads: picks the digit (selection_plan.h PickDigit) and clears the histogram for
// the next round.
__global__ void PickDigitKernel(DeviceState* state, int shift, uint32_t* histogram) {
  __shared__ uint32_t local[256];
  local[threadIdx.x] = histogram[threadIdx.x];
  __syncthreads();
  histogram[threadIdx.x] = 0;
  if (threadIdx.x == 0) {
    uint64_t remaining = state->remaining;
    const uint32_t digit = PickDigit(local, remaining);
    state->remaining = remaining;
    state->prefix |= uint64_t{digit} << shift;
    state->mask |= uint64_t{0xff} << shift;
  }
}

template <typename KeyFn>
int RadixSelect(KeyFn key, uint64_t n, uint64_t k, int digits, DeviceState* state,
                uint32_t* histogram, cudaStream_t stream) {
  InitSelectKernel<<<1, 1, 0, stream>>>(state, k);
  cudaMemsetAsync(histogram, 0, 256 * sizeof(uint32_t), stream);
  for (int d = 0; d < digits; ++d) {
    const int shift = 56 - 8 * d;
    DigitHistogramKernel<<<GridFor(n), kBlockThreads, 0, stream>>>(key, n, state, shift, histogram);
    PickDigitKernel<<<1, 256, 0, stream>>>(state, shift, histogram);
  }
  return static_cast<int>(cudaGetLastError());
}

// One block per kScanTile; the rounds cover the tile in index order.
template <typename KeyFn>
__global__ void CountAtLeastKernel(KeyFn key, uint64_t n, const DeviceState* state,
                                   uint32_t* counts) {
  const uint64_t min_key = state->prefix;
  const uint64_t base = uint64_t{blockIdx.x} * kScanTile;
  uint32_t count = 0;
  for (uint32_t round = 0; round < kRoundsPerTile; ++round) {
    const uint64_t i = base + round * kBlockThreads + threadIdx.x;
    count += __syncthreads_count(i < n && key(i) >= min_key);
  }
  if (threadIdx.x == 0) counts[blockIdx.x] = count;
}

// Ordered compaction: the same tiles and rounds as CountAtLeastKernel, so tile b's hits
// start at offsets[b]; inside a tile a round's hits are placed by warp then lane, which is
// index order. `sink(position, key)` writes one hit.
template <typename KeyFn, typename Sink>
__global__ void CompactKernel(KeyFn key, uint64_t n, const DeviceState* state,
                              const uint32_t* offsets, Sink sink) {
  __shared__ uint32_t warp_hits[kWarps];
  const uint64_t min_key = state->prefix;
  const uint64_t base = uint64_t{blockIdx.x} * kScanTile;
  const uint32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  uint64_t written = offsets[blockIdx.x];
  for (uint32_t round = 0; round < kRoundsPerTile; ++round) {
    const uint64_t i = base + round * kBlockThreads + threadIdx.x;
    const uint64_t k = i < n ? key(i) : 0;
    const bool hit = i < n && k >= min_key;
    const uint32_t ballot = __ballot_sync(0xffffffffu, hit);
    if (lane == 0) warp_hits[warp] = __popc(ballot);
    __syncthreads();
    uint32_t before = 0, total = 0;
    for (uint32_t w = 0; w < kWarps; ++w) {
      before += w < warp ? warp_hits[w] : 0;
      total += warp_hits[w];
    }
    if (hit) sink(written + before + __popc(ballot & ((1u << lane) - 1u)), k);
    written += total;
    __syncthreads();  // warp_hits is rewritten by the next round
  }
}

struct KeySink {
  uint64_t* out;
  __device__ void operator()(uint64_t position, uint64_t key) const { out[position] = key; }
};

// The residual gives the selected value up: moved out bit-for-bit, +0 left behind (as the
// CPU's ResidualValues::Take).
struct TakeSink {
  float* residual;
  uint32_t* indices;
  float* values;
  __device__ void operator()(uint64_t position, uint64_t key) const {
    const uint64_t j = KeyIndex(key);
    indices[position] = static_cast<uint32_t>(j);
    values[position] = residual[j];
    residual[j] = 0.0f;
  }
};

// One block of 1024 threads scans the tile counts in chunks of 1024 (the counts of a
// 2^32-element tensor are 2^20 values: a few microseconds).
__global__ void ExclusiveScanKernel(const uint32_t* counts, uint32_t* offsets, uint64_t tiles,
                                    DeviceState* state) {
  __shared__ uint32_t warp_sums[32];
  __shared__ uint64_t carry;
  const uint32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (threadIdx.x == 0) carry = 0;
  __syncthreads();
  for (uint64_t chunk = 0; chunk < tiles; chunk += blockDim.x) {
    const uint64_t t = chunk + threadIdx.x;
    const uint32_t value = t < tiles ? counts[t] : 0;
    uint32_t inclusive = value;
    for (uint32_t d = 1; d < 32; d <<= 1) {
      const uint32_t other = __shfl_up_sync(0xffffffffu, inclusive, d);
      if (lane >= d) inclusive += other;
    }
    if (lane == 31) warp_sums[warp] = inclusive;
    __syncthreads();
    uint32_t warp_before = 0, chunk_total = 0;
    for (uint32_t w = 0; w < blockDim.x / 32; ++w) {
      warp_before += w < warp ? warp_sums[w] : 0;
      chunk_total += warp_sums[w];
    }
    if (t < tiles) offsets[t] = static_cast<uint32_t>(carry + warp_before + inclusive - value);
    __syncthreads();
    if (threadIdx.x == 0) carry += chunk_total;
    __syncthreads();
  }
  if (threadIdx.x == 0) state->count = carry;
}

template <typename Fn>
int WithKeys(Keys keys, const void* data, Fn&& fn) {
  switch (keys) {
    case Keys::kSample:
      return fn(SampleKeys{static_cast<const uint32_t*>(data)});
    case Keys::kCandidates:
      return fn(CandidateKeys{static_cast<const uint64_t*>(data)});
    case Keys::kResidual:
      return fn(ResidualKeys{static_cast<const float*>(data)});
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

}  // namespace

int LaunchAccumulateAndSample(const float* trained, const float* served, float* residual,
                              uint64_t n, uint64_t seed, uint64_t iteration, uint64_t tensor_offset,
                              uint32_t* sample, void* stream) {
  AccumulateAndSampleKernel<<<Tiles(n, kSampleTile), kBlockThreads, 0, AsStream(stream)>>>(
      trained, served, residual, n, seed, iteration, tensor_offset, sample);
  return static_cast<int>(cudaGetLastError());
}

int LaunchAccumulateTakeAll(const float* trained, const float* served, float* residual, uint64_t n,
                            uint32_t* indices, float* values, void* stream) {
  AccumulateTakeAllKernel<<<GridFor(n), kBlockThreads, 0, AsStream(stream)>>>(
      trained, served, residual, n, indices, values);
  return static_cast<int>(cudaGetLastError());
}

int LaunchRadixSelect(Keys keys, const void* data, uint64_t n, uint64_t k, int digits,
                      DeviceState* state, uint32_t* histogram, void* stream) {
  return WithKeys(keys, data, [&](auto key) {
    return RadixSelect(key, n, k, digits, state, histogram, AsStream(stream));
  });
}

int LaunchCountAtLeast(Keys keys, const void* data, uint64_t n, const DeviceState* state,
                       uint32_t* counts, void* stream) {
  return WithKeys(keys, data, [&](auto key) {
    CountAtLeastKernel<<<Tiles(n, kScanTile), kBlockThreads, 0, AsStream(stream)>>>(key, n, state,
                                                                                    counts);
    return static_cast<int>(cudaGetLastError());
  });
}

int LaunchExclusiveScan(const uint32_t* counts, uint32_t* offsets, uint64_t tiles,
                        DeviceState* state, void* stream) {
  ExclusiveScanKernel<<<1, 1024, 0, AsStream(stream)>>>(counts, offsets, tiles, state);
  return static_cast<int>(cudaGetLastError());
}

int LaunchCompactKeys(const float* residual, uint64_t n, const DeviceState* state,
                      const uint32_t* offsets, uint64_t* out_keys, void* stream) {
  CompactKernel<<<Tiles(n, kScanTile), kBlockThreads, 0, AsStream(stream)>>>(
      ResidualKeys{residual}, n, state, offsets, KeySink{out_keys});
  return static_cast<int>(cudaGetLastError());
}

int LaunchTakeSelected(Keys keys, const void* data, uint64_t n, const DeviceState* state,
                       const uint32_t* offsets, float* residual, uint32_t* out_indices,
                       float* out_values, void* stream) {
  return WithKeys(keys, data, [&](auto key) {
    CompactKernel<<<Tiles(n, kScanTile), kBlockThreads, 0, AsStream(stream)>>>(
        key, n, state, offsets, TakeSink{residual, out_indices, out_values});
    return static_cast<int>(cudaGetLastError());
  });
}

}  // namespace streamtrain::gpu::internal
