#include "candidate_scan.h"

#include <array>
#include <atomic>
#include <bit>
#include <cassert>

#if defined(__x86_64__) || defined(__i386__)
#define STREAMTRAIN_SCAN_X86 1
#include <immintrin.h>
#endif

namespace streamtrain::sparse::internal {
namespace {

// Portable: SSE2 where the compiler targets it (every x86-64), else scalar.
constexpr uint64_t kPortableBlock = 32;

template <bool kDifference>
float ValueAt(const ScanSource& src, uint64_t i) {
  if constexpr (kDifference) {
    return src.minuend[i] - src.subtrahend[i];
  } else {
    return src.minuend[i];
  }
}

// The rank bits of i: |v| or, for dpu, the score's (the same expression as CombinedScore in
// contribution.h, written out so it inlines into the scan).
template <bool kDifference, bool kDpu>
uint32_t BitsAt(const ScanSource& src, uint64_t i) {
  const float v = ValueAt<kDifference>(src, i);
  if constexpr (kDpu) {
    const float global = v * v;
    const float local = src.local_weight * src.local[i];
    return ScoreBits(global + local);
  } else {
    return AbsBits(v);
  }
}

// The values at [i, i + n) that no vector loop covered, branch-free (store, then advance
// if it qualifies).
template <bool kDifference, bool kDpu>
uint64_t ScanScalar(const ScanSource& src, uint64_t i, uint64_t end, uint32_t threshold,
                    uint64_t* out, uint64_t count) {
  for (; i < end; ++i) {
    const uint32_t bits = BitsAt<kDifference, kDpu>(src, i);
    out[count] = RankKey(bits, i);
    count += bits >= threshold ? 1 : 0;
  }
  return count;
}

// Bit j set when the value at i + j (j < kPortableBlock) qualifies. Written with SSE2
// because GCC turns the plain loop into a scalar max (SSE2 has no 32-bit integer max to
// vectorise it with). The common case, no hit, costs one OR per four values.
template <bool kDifference, bool kDpu>
uint32_t PortableHitMask(const ScanSource& src, uint64_t i, int32_t threshold) {
#if defined(__SSE2__)
  const __m128i magnitude = _mm_set1_epi32(0x7fffffff);
  const __m128i below = _mm_set1_epi32(threshold - 1);  // threshold >= 0: no overflow
  const __m128 weight = _mm_set1_ps(src.local_weight);
  const __m128i sign = _mm_set1_epi32(static_cast<int32_t>(0x80000000u));
  auto compare = [&](uint64_t j) {
    __m128 v = _mm_loadu_ps(src.minuend + i + j);
    if constexpr (kDifference) v = _mm_sub_ps(v, _mm_loadu_ps(src.subtrahend + i + j));
    if constexpr (kDpu) {
      // ScoreBits, four at a time.
      const __m128 score =
          _mm_add_ps(_mm_mul_ps(v, v), _mm_mul_ps(weight, _mm_loadu_ps(src.local + i + j)));
      const __m128i bits = _mm_castps_si128(score);
      const __m128i ordered = _mm_xor_si128(bits, _mm_or_si128(_mm_srai_epi32(bits, 31), sign));
      return _mm_cmpgt_epi32(_mm_srli_epi32(ordered, 1), below);
    } else {
      return _mm_cmpgt_epi32(_mm_and_si128(_mm_castps_si128(v), magnitude), below);
    }
  };
  __m128i any = _mm_setzero_si128();
  for (uint64_t j = 0; j < kPortableBlock; j += 4) any = _mm_or_si128(any, compare(j));
  if (_mm_movemask_epi8(any) == 0) return 0;
  uint32_t mask = 0;
  for (uint64_t j = 0; j < kPortableBlock; j += 4) {
    mask |= static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(compare(j)))) << j;
  }
  return mask;
#else
  uint32_t mask = 0;
  for (uint64_t j = 0; j < kPortableBlock; ++j) {
    const auto bits = static_cast<int32_t>(BitsAt<kDifference, kDpu>(src, i + j));
    mask |= static_cast<uint32_t>(bits >= threshold) << j;
  }
  return mask;
#endif
}

template <bool kDifference, bool kDpu>
uint64_t ScanPortable(const ScanSource& src, uint64_t begin, uint64_t end, uint32_t threshold,
                      uint64_t* out, uint64_t count, uint64_t cap) {
  // |v|'s bits fit in 31, so a signed compare is exact, and SSE2 has one (not unsigned).
  const auto signed_threshold = static_cast<int32_t>(threshold);
  uint64_t i = begin;
  for (; i + kPortableBlock <= end; i += kPortableBlock) {
    uint32_t mask = PortableHitMask<kDifference, kDpu>(src, i, signed_threshold);
    if (mask == 0) continue;
    // Two hits without a branch on how many there are (at ratio 1% about 99% of blocks with
    // a hit have at most two; an empty mask stores harmlessly inside the block), then the rest.
    for (int h = 0; h < 2 || mask != 0; ++h, mask &= mask - 1) {
      const uint64_t j = i + static_cast<uint64_t>(std::countr_zero(mask) & (kPortableBlock - 1));
      out[count] = RankKey(BitsAt<kDifference, kDpu>(src, j), j);
      count += mask != 0 ? 1 : 0;
    }
    if (count > cap) return count;
  }
  return ScanScalar<kDifference, kDpu>(src, i, end, threshold, out, count);
}

#if defined(STREAMTRAIN_SCAN_X86)

// kPackLanes[mask] lists the positions (0..7) of mask's set bits, the h-th hit in lane
// kSlot[h]: unpacking the low and high 32-bit halves of the keys then yields hits 0-3 in the
// first four 64-bit keys and 4-7 in the next four, the order AVX2's in-lane unpack produces.
// Lanes past the hits hold 0: keys stored there lie past the count and are overwritten.
struct PackTable {
  alignas(64) uint8_t lanes[256][8];  // widened to 32 bits by the load (vpmovzxbd)
};

constexpr PackTable MakePackTable() {
  constexpr std::array<int, 8> kSlot = {0, 1, 4, 5, 2, 3, 6, 7};
  PackTable table{};
  for (int mask = 0; mask < 256; ++mask) {
    int hit = 0;
    for (int bit = 0; bit < 8; ++bit) {
      if (((mask >> bit) & 1) != 0) {
        table.lanes[mask][kSlot[static_cast<size_t>(hit++)]] = static_cast<uint8_t>(bit);
      }
    }
  }
  return table;
}

constexpr PackTable kPackTable = MakePackTable();

#define STREAMTRAIN_AVX2 __attribute__((target("avx2,popcnt")))

// The rank bits of the 8 values at i: |v|'s (the sign bit cleared) or the DPU score's
// (ScoreBits: no FMA, so the bits equal the scalar expression's).
template <bool kDifference, bool kDpu>
STREAMTRAIN_AVX2 inline __m256i Magnitudes8(const ScanSource& src, uint64_t i) {
  __m256 v = _mm256_loadu_ps(src.minuend + i);
  if constexpr (kDifference) v = _mm256_sub_ps(v, _mm256_loadu_ps(src.subtrahend + i));
  if constexpr (kDpu) {
    const __m256 score = _mm256_add_ps(
        _mm256_mul_ps(v, v),
        _mm256_mul_ps(_mm256_set1_ps(src.local_weight), _mm256_loadu_ps(src.local + i)));
    const __m256i bits = _mm256_castps_si256(score);
    const __m256i flip = _mm256_or_si256(_mm256_srai_epi32(bits, 31),
                                         _mm256_set1_epi32(static_cast<int32_t>(0x80000000u)));
    return _mm256_srli_epi32(_mm256_xor_si256(bits, flip), 1);
  } else {
    return _mm256_castps_si256(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v));
  }
}

STREAMTRAIN_AVX2 inline uint32_t HitMask8(__m256i magnitudes, __m256i below) {
  return static_cast<uint32_t>(
      _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(magnitudes, below))));
}

// The low half of the keys of the 8 values at i, before the lane offsets are subtracted:
// 0xffffffff - i in every lane (RankKey; indices are below 2^32).
STREAMTRAIN_AVX2 inline __m256i InvertedBase(uint64_t i) {
  return _mm256_set1_epi32(static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(i)));
}

// Stores the keys of the hits among 8 values (both vectors, whatever the count: no branch)
// and advances the count by the hits.
STREAMTRAIN_AVX2 inline uint64_t Pack8(__m256i magnitudes, uint32_t mask, __m256i inverted_base,
                                       uint64_t* out, uint64_t count) {
  const __m256i lanes = _mm256_cvtepu8_epi32(
      _mm_loadl_epi64(reinterpret_cast<const __m128i*>(kPackTable.lanes[mask])));
  const __m256i low = _mm256_sub_epi32(inverted_base, lanes);
  const __m256i high = _mm256_permutevar8x32_epi32(magnitudes, lanes);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + count), _mm256_unpacklo_epi32(low, high));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + count + 4),
                      _mm256_unpackhi_epi32(low, high));
  return count + static_cast<uint64_t>(std::popcount(mask));
}

template <bool kDifference, bool kDpu>
STREAMTRAIN_AVX2 uint64_t ScanAvx2(const ScanSource& src, uint64_t begin, uint64_t end,
                                   uint32_t threshold, bool sparse, uint64_t* out, uint64_t count,
                                   uint64_t cap) {
  // |v|'s bits fit in 31, so the signed compare is exact; threshold 0 makes every value a hit.
  const __m256i below = _mm256_set1_epi32(static_cast<int32_t>(threshold) - 1);
  uint64_t i = begin;
  if (sparse) {
    // 64 values per branch: one OR tree and a test when, as usual, none qualifies.
    constexpr uint64_t kBlock = 64;
    for (; i + kBlock <= end; i += kBlock) {
      __m256i any = _mm256_setzero_si256();
      for (uint64_t j = 0; j < kBlock; j += 8) {
        any = _mm256_or_si256(
            any, _mm256_cmpgt_epi32(Magnitudes8<kDifference, kDpu>(src, i + j), below));
      }
      if (_mm256_testz_si256(any, any) != 0) continue;
      // A block with a hit usually has one: taken one by one (two without a branch on how
      // many), which cost less than packing all eight vectors.
      uint64_t mask = 0;
      for (uint64_t j = 0; j < kBlock; j += 8) {
        mask |= uint64_t{HitMask8(Magnitudes8<kDifference, kDpu>(src, i + j), below)} << j;
      }
      for (int h = 0; h < 2 || mask != 0; ++h, mask &= mask - 1) {
        const uint64_t at = i + static_cast<uint64_t>(std::countr_zero(mask) & (kBlock - 1));
        out[count] = RankKey(BitsAt<kDifference, kDpu>(src, at), at);
        count += mask != 0 ? 1 : 0;
      }
      if (count > cap) return count;
    }
  } else {
    constexpr uint64_t kBlock = 32;
    const __m256i eight = _mm256_set1_epi32(8);
    __m256i inverted_base = InvertedBase(i);
    for (; i + kBlock <= end; i += kBlock) {
      for (uint64_t j = 0; j < kBlock; j += 8) {
        const __m256i magnitudes = Magnitudes8<kDifference, kDpu>(src, i + j);
        count = Pack8(magnitudes, HitMask8(magnitudes, below), inverted_base, out, count);
        inverted_base = _mm256_sub_epi32(inverted_base, eight);
      }
      if (count > cap) return count;
    }
  }
  for (; i + 8 <= end; i += 8) {
    const __m256i magnitudes = Magnitudes8<kDifference, kDpu>(src, i);
    count = Pack8(magnitudes, HitMask8(magnitudes, below), InvertedBase(i), out, count);
  }
  if (count > cap) return count;
  return ScanScalar<kDifference, kDpu>(src, i, end, threshold, out, count);
}

#undef STREAMTRAIN_AVX2

#endif  // STREAMTRAIN_SCAN_X86

bool DetectAvx2() {
#if defined(STREAMTRAIN_SCAN_X86) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
#else
  return false;
#endif
}

std::atomic<ScanPath>& CurrentPath() {
  static std::atomic<ScanPath> path{Avx2Available() ? ScanPath::kAvx2 : ScanPath::kPortable};
  return path;
}

}  // namespace

bool Avx2Available() {
  static const bool available = DetectAvx2();
  return available;
}

ScanPath ActiveScanPath() { return CurrentPath().load(std::memory_order_relaxed); }

void ForceScanPathForTesting(ScanPath path) {
  if (path == ScanPath::kAvx2 && !Avx2Available()) path = ScanPath::kPortable;
  CurrentPath().store(path, std::memory_order_relaxed);
}

namespace {

template <bool kDifference, bool kDpu>
uint64_t Scan(const ScanSource& src, uint64_t begin, uint64_t end, uint32_t threshold, bool sparse,
              uint64_t* out, uint64_t count, uint64_t cap) {
#if defined(STREAMTRAIN_SCAN_X86)
  if (ActiveScanPath() == ScanPath::kAvx2) {
    return ScanAvx2<kDifference, kDpu>(src, begin, end, threshold, sparse, out, count, cap);
  }
#endif
  (void)sparse;  // the portable path always skips hit-free blocks
  return ScanPortable<kDifference, kDpu>(src, begin, end, threshold, out, count, cap);
}

}  // namespace

uint64_t ScanForCandidates(const ScanSource& source, uint64_t begin, uint64_t end,
                           uint32_t threshold, bool sparse, uint64_t* out, uint64_t count,
                           uint64_t cap) {
  assert(threshold <= 0x7fffffffu && count <= cap);
  const bool difference = source.subtrahend != nullptr;
  if (source.local != nullptr) {
    return difference ? Scan<true, true>(source, begin, end, threshold, sparse, out, count, cap)
                      : Scan<false, true>(source, begin, end, threshold, sparse, out, count, cap);
  }
  return difference ? Scan<true, false>(source, begin, end, threshold, sparse, out, count, cap)
                    : Scan<false, false>(source, begin, end, threshold, sparse, out, count, cap);
}

}  // namespace streamtrain::sparse::internal
