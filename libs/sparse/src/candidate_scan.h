// CandidateScan: the collect pass of the selection, the one loop that reads every value.
// Private to libs/sparse (selection.h uses it; the tests force its paths).
//
// ScanForCandidates appends to `out`, in ascending index order, the rank key (RankKey
// below) of every i in [begin, end) whose rank bits are at least `threshold`. The rank bits
// are |v[i]|'s (AbsBits), where v[i] is minuend[i], or minuend[i] - subtrahend[i] when
// subtrahend is not null; with `local` set (the dpu kind) they are ScoreBits of the DPU
// score CombinedScore(v[i], local[i], local_weight) (contribution.h), computed on the fly so
// no score array is written. Two
// implementations produce the same keys in the same order, so the selection depends only on
// the data: an AVX2 one (8 values per compare; the hits' keys left-packed with a 256-entry
// permutation table and stored unconditionally, the output advanced by the popcount), used
// where the CPU has AVX2 (checked once, at run time), and a portable one (SSE2 where the
// compiler targets it, scalar otherwise).
//
// The output is written branch-free: up to kScanSlack keys past the returned count may be
// overwritten, so `out` needs room for cap + kScanSlack keys. The scan stops early, with a
// count above `cap`, once more than `cap` keys are out.
#pragma once

#include <bit>
#include <cstdint>

namespace streamtrain::sparse::internal {

// Order: larger |v| first, ties to the lower flat index, both packed into one 64-bit key
// (|v|'s bits above the inverted index). The bits of |v| as an unsigned integer order like
// |v| for all non-NaN floats; a NaN ranks above infinity.
inline uint32_t AbsBits(float v) { return std::bit_cast<uint32_t>(v) & 0x7fffffffu; }
inline uint64_t RankKey(uint32_t abs_bits, uint64_t index) {
  return (uint64_t{abs_bits} << 32) | (0xffffffffu - static_cast<uint32_t>(index));
}
inline uint64_t KeyIndex(uint64_t key) { return 0xffffffffu - static_cast<uint32_t>(key); }

// A signed score's rank bits: the float's bits mapped to an unsigned order (negative scores
// flipped below the positive ones), then halved to the 31 bits the keys, thresholds and
// histograms of |v| use. Halving merges neighbouring floats (24 -> 23 bits of precision);
// the index still breaks those ties, so the order stays total. The AVX2 scan computes the
// same bits.
inline uint32_t ScoreBits(float score) {
  const uint32_t bits = std::bit_cast<uint32_t>(score);
  const uint32_t flip = static_cast<uint32_t>(static_cast<int32_t>(bits) >> 31) | 0x80000000u;
  return (bits ^ flip) >> 1;
}

// What one scan reads.
struct ScanSource {
  const float* minuend = nullptr;
  const float* subtrahend = nullptr;  // null: v = minuend
  const float* local = nullptr;       // null: rank |v|; else the DPU score (ScoreBits)
  float local_weight = 0.0f;          // the score's weight of local (LocalWeight)
};

enum class ScanPath {
  kPortable,  // SSE2 or scalar: any CPU
  kAvx2,      // 8-wide, branch-free packing: CPUs with AVX2
};

// Keys past the returned count that a scan may write.
inline constexpr uint64_t kScanSlack = 64;

// Expected hit density below which the AVX2 scan skips hit-free blocks of 64 values with one
// branch and takes a block's hits one by one; above it (ratio 1%: about half of the blocks
// have a hit) every 8 values are packed without a branch.
inline constexpr double kSparseHitFraction = 0.012;

// Whether this CPU runs the AVX2 path.
bool Avx2Available();

// The path scans take now: AVX2 where available, unless a test forced another.
ScanPath ActiveScanPath();

// Tests only: makes later scans take `path` (kAvx2 only where available; otherwise the
// portable path stays). Not thread-safe against concurrent selections.
void ForceScanPathForTesting(ScanPath path);

// Appends the keys of the hits in [begin, end) at out[count...]; returns the new count (above
// cap when it stopped early). `sparse`: hits are expected below kSparseHitFraction.
uint64_t ScanForCandidates(const ScanSource& source, uint64_t begin, uint64_t end,
                           uint32_t threshold, bool sparse, uint64_t* out, uint64_t count,
                           uint64_t cap);

}  // namespace streamtrain::sparse::internal
