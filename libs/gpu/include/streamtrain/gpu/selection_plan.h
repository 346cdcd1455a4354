// SelectionPlan: the sizes and positions the error-feedback selection kernels use, as plain
// host/device functions, so the host code, the kernels and the CPU tests agree on them.
//
// k per tensor is the CPU's (sparse Selection::TensorK): max(1, round(ratio * size)), at
// most size. The sample is one run of kSampleRun contiguous values per tile of kSampleTile
// (n/256 values, as the CPU's kSampleDivisor), its start jittered inside the tile by
// SplitMix64 of (seed, iteration, tensor offset, tile). The threshold is the rank-th
// largest sampled |v| with the CPU's rank formula; the collect is then capped at the CPU's
// cap. None of this decides the result: the kernels always return the exact k largest by
// RankKey, and fall back to an exact radix select when the sample misleads.
// Pure functions; thread-safe.
//
//   const uint64_t k = TensorK(size, 0.01);
//   const SamplePlan plan = PlanSample(size, k, SampleCount(size));
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "streamtrain/gpu/bit_exact.h"

namespace streamtrain::gpu {

// Threads per block of every selection kernel.
inline constexpr uint32_t kBlockThreads = 256;
// Elements per block of the accumulate-and-sample pass, and sampled values per tile.
inline constexpr uint64_t kSampleTile = 8192;
inline constexpr uint64_t kSampleRun = 32;
// Elements per block of the count and compact passes (16 rounds of 256).
inline constexpr uint64_t kScanTile = 4096;

// Coordinates selected from a tensor of `size` at `ratio` (sparse's per-tensor k).
inline uint64_t TensorK(uint64_t size, double ratio) {
  if (size == 0) return 0;
  const auto k = static_cast<uint64_t>(std::llround(ratio * static_cast<double>(size)));
  return std::clamp<uint64_t>(k, 1, size);
}

// Sampled values of a tensor of n elements.
ST_HOST_DEVICE uint64_t SampleCount(uint64_t n) {
  const uint64_t full = n / kSampleTile, rest = n % kSampleTile;
  return full * kSampleRun + (rest < kSampleRun ? rest : kSampleRun);
}

// Where tile `tile` (of length tile_len) starts its sample run, relative to the tile.
ST_HOST_DEVICE uint64_t SampleStart(uint64_t seed, uint64_t iteration, uint64_t tensor_offset,
                                    uint64_t tile, uint64_t tile_len) {
  if (tile_len <= kSampleRun) return 0;
  const uint64_t h =
      SplitMix64(seed ^ (iteration * 0x9e3779b97f4a7c15ull) ^ tensor_offset ^ (tile << 40));
  return h % (tile_len - kSampleRun + 1);
}

struct SamplePlan {
  bool usable = false;    // the sample can give a threshold (rank below half of it)
  uint64_t rank = 0;      // the threshold is the rank-th largest sampled |v| (1-based)
  uint64_t expected = 0;  // candidates expected at or above it
  uint64_t cap = 0;       // more candidates than this: exact fallback instead
};

// The CPU's rule (selection.h SampledThreshold): a few standard deviations past the
// expected rank of the k-th largest, so at least k are collected with high probability.
inline SamplePlan PlanSample(uint64_t n, uint64_t k, uint64_t samples) {
  SamplePlan plan;
  if (samples == 0 || k >= n) return plan;
  const double s = static_cast<double>(samples);
  const double hits = static_cast<double>(k) * s / static_cast<double>(n + k);
  plan.rank = static_cast<uint64_t>(std::ceil(hits + 3.0 * std::sqrt(hits) + 4.0));
  plan.usable = plan.rank < samples / 2;
  plan.expected =
      static_cast<uint64_t>(static_cast<double>(plan.rank) * static_cast<double>(n) / s);
  plan.cap = std::min(n, 3 * plan.expected + k + 4096);
  return plan;
}

// One step of a radix select for the remaining-th largest key: given the histogram of the
// next digit (256 bins) over the keys that match the digits chosen so far, the digit that
// holds it; `remaining` becomes its rank among the keys with that digit.
ST_HOST_DEVICE uint32_t PickDigit(const uint32_t* histogram, uint64_t& remaining) {
  uint64_t above = 0;
  for (uint32_t d = 256; d-- > 0;) {
    if (above + histogram[d] >= remaining) {
      remaining -= above;
      return d;
    }
    above += histogram[d];
  }
  return 0;  // fewer keys than remaining: a broken invariant, never reached
}

}  // namespace streamtrain::gpu
