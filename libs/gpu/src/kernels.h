// Launchers of the libs/gpu kernels, with plain types only, so the host code that strings
// them together (error_feedback.cpp, apply.cpp) is ordinary C++ compiled by the host
// compiler. Private to libs/gpu. Each returns the cudaError_t of its launch as an int
// (0: launched); each runs asynchronously on `stream` (a cudaStream_t).
#pragma once

#include <cstdint>

#include "streamtrain/gpu/bit_exact.h"

namespace streamtrain::gpu::internal {

// Device-side state of one call: radix-select progress, counts, digests and flags.
struct DeviceState {
  uint64_t prefix = 0;     // radix select: the digits of the answer chosen so far
  uint64_t mask = 0;       // radix select: which bits of prefix are chosen
  uint64_t remaining = 0;  // radix select: rank of the answer among keys matching prefix
  uint64_t count = 0;      // the total of the last exclusive scan
  uint64_t digest = 0;     // a digest or digest change, mod 2^64
  uint32_t bad = 0;        // apply: an index out of range or out of order
  uint32_t pad = 0;
};

// What a radix select, count or compaction ranks (all as 64-bit keys, larger first).
enum class Keys {
  kSample,      // uint32 |v| bits; key = bits << 32
  kCandidates,  // uint64 rank keys
  kResidual,    // float r[i]; key = RankKey(AbsBits(r[i]), i)
};

// r[i] += trained[i] - served[i] for i < n; per tile of kSampleTile, the |r| bits of its
// sample run into sample (SampleCount(n) values).
int LaunchAccumulateAndSample(const float* trained, const float* served, float* residual,
                              uint64_t n, uint64_t seed, uint64_t iteration, uint64_t tensor_offset,
                              uint32_t* sample, void* stream);
// r[i] += trained[i] - served[i], then every i taken: indices[i] = i, values[i] = r[i],
// r[i] = 0.
int LaunchAccumulateTakeAll(const float* trained, const float* served, float* residual, uint64_t n,
                            uint32_t* indices, float* values, void* stream);
// state->prefix = the k-th largest key (1 <= k <= n) of `data`, over the top `digits`
// bytes of the keys (the rest of prefix is zero). histogram: 256 uint32 of scratch.
int LaunchRadixSelect(Keys keys, const void* data, uint64_t n, uint64_t k, int digits,
                      DeviceState* state, uint32_t* histogram, void* stream);
// counts[b] = keys >= state->prefix in scan tile b (ceil(n / kScanTile) tiles).
int LaunchCountAtLeast(Keys keys, const void* data, uint64_t n, const DeviceState* state,
                       uint32_t* counts, void* stream);
// offsets = exclusive prefix sum of counts (`tiles` values); state->count = their total.
int LaunchExclusiveScan(const uint32_t* counts, uint32_t* offsets, uint64_t tiles,
                        DeviceState* state, void* stream);
// The keys >= state->prefix of the residual, in index order, at out_keys[offsets[tile]...].
int LaunchCompactKeys(const float* residual, uint64_t n, const DeviceState* state,
                      const uint32_t* offsets, uint64_t* out_keys, void* stream);
// For each key >= state->prefix, in index order: its index j = KeyIndex(key) and r[j] out,
// and r[j] = 0.
int LaunchTakeSelected(Keys keys, const void* data, uint64_t n, const DeviceState* state,
                       const uint32_t* offsets, float* residual, uint32_t* out_indices,
                       float* out_values, void* stream);

// state->bad = 1 when an index is >= n or not above the one before.
int LaunchCheckIndices(const uint64_t* indices, uint64_t count, uint64_t n, DeviceState* state,
                       void* stream);
// Unless state->bad: state->digest += the digest change of applying values at indices;
// when `params_out` is set, also writes the new values there and the old ones to `saved`.
int LaunchApply(const uint64_t* indices, const float* values, uint64_t count, Encoding encoding,
                const float* params, float* params_out, float* saved, DeviceState* state,
                void* stream);
// params[indices[j]] = saved[j].
int LaunchRestore(const uint64_t* indices, const float* saved, uint64_t count, float* params,
                  void* stream);
// state->digest += sum of DigestTerm(i, params[i]) for i < n.
int LaunchDigestParameters(const float* params, uint64_t n, DeviceState* state, void* stream);

}  // namespace streamtrain::gpu::internal
