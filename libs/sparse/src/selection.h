// Selection: the ranking machinery shared by ErrorFeedbackSparsifier and ShadowSelector.
// Private to libs/sparse. Templated on `Values` (ResidualValues, DifferenceValues below),
// which gives the signed quantity ranked by magnitude, r[i] or trained[i] - served[i], so the
// shadow difference is never materialised.
//
// How k of n are found exactly, in one read pass when it goes as planned (threshold kind):
// sample n/256 values (at least 512, at most 16,384) in contiguous, prefetched blocks; take
// as threshold a sample value a few standard deviations below the estimated k-th magnitude
// (a histogram of the sample finds its bin, nth_element ranks that bin only); collect every
// value at or above it (candidate_scan.h: 8 values per AVX2 compare, a key per hit, written
// without a branch); find the k-th largest candidate with a histogram of the candidates'
// magnitudes above the threshold and nth_element over the one bin that holds it; keep those
// at or above it, in index order. Too few candidates (the sample misled) or too many (ties,
// clusters) and it falls back to the top-k kind's way: a histogram of the top 16 bits of |v|
// gives the exact threshold bin, then the same collect. Tensors of at most 2,048 values rank
// every key. Whatever the path, the result is the one exact top-k set below.
//
// Order: larger |v| first, ties to the lower flat index. Both are packed into one 64-bit key
// (|v|'s bits above the inverted index) so every comparison is one integer compare and the
// selection is a total order: deterministic, whatever the algorithm. The bits of |v| as an
// unsigned integer order like |v| for all non-NaN floats; a NaN ranks above infinity, so a
// diverged update is sent (and seen) rather than hidden in the residual.
//
// The dpu kind ranks the DPU score instead of |v| (ContributionValues): the same machinery on
// ScoreBits, with the score computed wherever the bits are read (sample, scan, histogram),
// after one pass per ranked range that sums the terms' totals (ForRanges).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "candidate_scan.h"
#include "streamtrain/sparse/contribution.h"
#include "streamtrain/sparse/sparse_update.h"
#include "streamtrain/sparse/sparsifier_options.h"

namespace streamtrain::sparse::internal {

class Selection {
 public:
  Selection(const SparsifierOptions& options, std::vector<TensorRange> layout);

  uint64_t KAt(uint64_t iteration) const;

  // Fills out.tensors[t].indices (ascending), their values (values.Take, which may also
  // change the source: the residual gives its values up) and out.dense for `iteration`.
  template <typename Values>
  void Select(const Values& values, uint64_t iteration, SparseUpdate& out);

 private:
  // k per tensor (per-tensor scope) or in total (global scope) at `ratio`.
  uint64_t TensorK(uint64_t size, double ratio) const;
  uint64_t GlobalK(double ratio) const;

  // Appends to selected_ (ascending) the k largest of `ranges`; with one_per_range, each
  // non-empty range's largest plus the k - (ranges) largest of the rest.
  template <typename Values>
  void SelectLargest(const Values& values, std::span<const TensorRange> ranges, uint64_t k,
                     bool sampled, uint64_t iteration, bool one_per_range);
  // From candidates_ (every value at or above some threshold), the selection; false when
  // they are too few to be sure of it.
  template <typename Values>
  bool Finish(const Values& values, std::span<const TensorRange> ranges, uint64_t k,
              bool one_per_range);
  template <typename Values>
  uint64_t LargestKey(const Values& values, const TensorRange& r);
  template <typename Values>
  std::optional<uint32_t> SampledThreshold(const Values& values,
                                           std::span<const TensorRange> ranges, uint64_t n,
                                           uint64_t needed, uint64_t iteration,
                                           uint64_t& expected_candidates);
  // Every value of `ranges` at or above `threshold` into candidates_ (about `expected` of
  // them); false when more than `cap`.
  template <typename Values>
  bool Collect(const Values& values, std::span<const TensorRange> ranges, uint32_t threshold,
               uint64_t cap, uint64_t expected);

  // The lowest threshold with at least k values at or above it, and how many those are.
  template <typename Values>
  std::pair<uint32_t, uint64_t> HistogramThreshold(const Values& values,
                                                   std::span<const TensorRange> ranges, uint64_t k);
  // Moves the k largest candidates_ into selected_, in index order; false when
  // fewer than k remain.
  bool TrimCandidates(uint64_t k);
  // The k-th largest of candidates_ (k <= candidate_count_).
  uint64_t KthCandidate(uint64_t k);

  void RandomK(uint64_t iteration, double ratio);
  std::mt19937_64 IterationRng(uint64_t iteration, uint64_t salt) const;
  // Hands selected_ out to the tensors of `out` (indices and, through values.Take, values).
  template <typename Values>
  void Distribute(const Values& values, SparseUpdate& out);
  void DistributeIndices(SparseUpdate& out);

  SparsifierOptions options_;
  std::vector<TensorRange> layout_;
  std::vector<size_t> by_offset_;           // layout indices sorted by offset
  std::vector<TensorRange> sorted_layout_;  // the layout sorted by offset
  uint64_t total_ = 0;                      // elements over all tensors
  uint64_t nonempty_ = 0;                   // tensors with at least one element

  // Scratch reused across calls.
  std::vector<uint64_t> selected_;    // flat indices chosen so far this call
  std::vector<uint64_t> candidates_;  // rank keys in ascending index order; the first
  uint64_t candidate_count_ = 0;      // candidate_count_ are live, the rest is room
  uint32_t candidate_floor_ = 0;      // every candidate's |v| bits are at least this
  std::vector<uint64_t> ranked_;      // a copy of candidates_ to rank
  std::vector<size_t> segment_ends_;  // the candidate count after each range
  std::vector<uint64_t> excluded_;    // each range's largest key (sorted)
  std::vector<uint32_t> sample_;
  std::vector<uint32_t> sample_histogram_;
  std::vector<std::pair<uint64_t, uint64_t>> sample_blocks_;  // [begin, end) of each block
  std::vector<uint32_t> histogram_;
  std::vector<uint32_t> trim_histogram_;
};

// ---- templates ---------------------------------------------------------------------------

// Below this many elements the direct way (rank every key) is as fast as anything smarter;
// for top-k, whose alternative is a histogram of 2^16 bins, the bound is higher.
inline constexpr uint64_t kDirectMax = 1 << 15;
inline constexpr uint64_t kSampledDirectMax = 2048;
// Histogram bins over the top 16 of |v|'s 31 bits: exponent + 7 mantissa bits.
inline constexpr int kHistogramShift = 15;
inline constexpr size_t kHistogramBins = size_t{1} << 16;
// Contiguous sample blocks: a cache line pair each, so sampling costs few cache misses.
inline constexpr uint64_t kSampleBlock = 32;
// Sample size: n / kSampleDivisor within [kSampleMin, kSampleMax]. A small tensor's sample
// is small: a looser threshold costs it a few hundred more candidates, which trim cheaply,
// while at least 4,096 samples per tensor (ResNet-18 has 16 tensors of 36,864 to 589,824)
// cost half the floor in all.
inline constexpr uint64_t kSampleDivisor = 256;
inline constexpr uint64_t kSampleMin = 512;
inline constexpr uint64_t kSampleMax = 16384;
// Sample blocks prefetched ahead of the one read.
inline constexpr uint64_t kSamplePrefetch = 16;
// The sample's histogram: |v|'s exponent and 3 mantissa bits.
inline constexpr int kSampleShift = 20;
inline constexpr size_t kSampleBins = size_t{1} << (31 - kSampleShift);
// Trim histogram: bins of 2^13 |v| bits (1/1024 of a power of two) above the collect
// threshold, the last one open-ended. Past kTrimDirectMax candidates it beats nth_element.
inline constexpr int kTrimShift = 13;
inline constexpr size_t kTrimBins = 4096;
inline constexpr uint64_t kTrimDirectMax = 2048;

template <typename Values>
void Selection::Select(const Values& values, uint64_t iteration, SparseUpdate& out) {
  const double ratio = EffectiveRatio(options_, iteration);
  selected_.clear();
  excluded_.clear();
  out.dense = ratio >= 1.0;
  if (out.dense) {
    for (const TensorRange& r : layout_) {
      for (uint64_t i = 0; i < r.size; ++i) selected_.push_back(r.offset + i);
    }
  } else if (options_.kind == SparsifierKind::kRandomK) {
    RandomK(iteration, ratio);
  } else {
    // dpu ranks its score the threshold way: the score is computed where |v| would be read.
    const bool sampled =
        options_.kind == SparsifierKind::kThreshold || options_.kind == SparsifierKind::kDpu;
    if (options_.scope == SparsifierScope::kPerTensor) {
      // Each tensor is handed out as soon as it is chosen: taking its values then finds the
      // tensor still in cache.
      out.tensors.resize(layout_.size());
      for (size_t position = 0; position < sorted_layout_.size(); ++position) {
        const TensorRange& r = sorted_layout_[position];
        selected_.clear();
        const std::span<const TensorRange> one(&r, 1);
        const Values scoped =
            values.ForRanges(one, std::span<const size_t>(&by_offset_[position], 1));
        SelectLargest(scoped, one, TensorK(r.size, ratio), sampled, iteration,
                      /*one_per_range=*/false);
        TensorUpdate& t = out.tensors[by_offset_[position]];
        // Handed over, not copied: the output's storage is new each call anyway.
        t.indices.swap(selected_);
        scoped.Take(t.indices, t.values);
      }
      return;
    }
    SelectLargest(values.ForRanges(sorted_layout_, by_offset_), sorted_layout_, GlobalK(ratio),
                  sampled, iteration, /*one_per_range=*/true);
  }
  Distribute(values, out);
}

template <typename Values>
void Selection::Distribute(const Values& values, SparseUpdate& out) {
  DistributeIndices(out);
  for (TensorUpdate& t : out.tensors) values.Take(t.indices, t.values);
}

template <typename Values>
uint64_t Selection::LargestKey(const Values& values, const TensorRange& r) {
  uint32_t best = 0;
  for (uint64_t i = r.offset; i < r.offset + r.size; ++i) best = std::max(best, values.Bits(i));
  uint64_t at = r.offset;
  while (values.Bits(at) != best) ++at;
  return RankKey(best, at);
}

template <typename Values>
bool Selection::Finish(const Values& values, std::span<const TensorRange> ranges, uint64_t k,
                       bool one_per_range) {
  if (!one_per_range) return TrimCandidates(k);
  // Each tensor's largest: the largest of its candidates, which are contiguous in index
  // order; a tensor without any has all its values below the threshold and is scanned.
  excluded_.clear();
  size_t begin = 0;
  for (size_t r = 0; r < ranges.size(); ++r) {
    const size_t end = segment_ends_[r];
    if (ranges[r].size > 0) {
      excluded_.push_back(
          end > begin ? *std::max_element(candidates_.begin() + static_cast<ptrdiff_t>(begin),
                                          candidates_.begin() + static_cast<ptrdiff_t>(end))
                      : LargestKey(values, ranges[r]));
    }
    begin = end;
  }
  std::sort(excluded_.begin(), excluded_.end());
  candidate_count_ = static_cast<uint64_t>(
      std::remove_if(candidates_.data(), candidates_.data() + candidate_count_,
                     [&](uint64_t key) {
                       return std::binary_search(excluded_.begin(), excluded_.end(), key);
                     }) -
      candidates_.data());
  const size_t before = selected_.size();
  if (!TrimCandidates(k - excluded_.size())) return false;
  const auto middle = static_cast<ptrdiff_t>(selected_.size());
  for (uint64_t key : excluded_) selected_.push_back(KeyIndex(key));
  std::sort(selected_.begin() + middle, selected_.end());
  std::inplace_merge(selected_.begin() + static_cast<ptrdiff_t>(before), selected_.begin() + middle,
                     selected_.end());
  return true;
}

template <typename Values>
void Selection::SelectLargest(const Values& values, std::span<const TensorRange> ranges, uint64_t k,
                              bool sampled, uint64_t iteration, bool one_per_range) {
  uint64_t n = 0;
  for (const TensorRange& r : ranges) n += r.size;
  if (k == 0) return;
  if (k >= n) {
    for (const TensorRange& r : ranges) {
      for (uint64_t i = r.offset; i < r.offset + r.size; ++i) selected_.push_back(i);
    }
    return;
  }
  if (n <= (sampled ? kSampledDirectMax : kDirectMax)) {
    Collect(values, ranges, 0, n, n);
    Finish(values, ranges, k, one_per_range);
    return;
  }
  if (sampled) {
    uint64_t expected = 0;
    const auto threshold = SampledThreshold(values, ranges, n, k, iteration, expected);
    // Past the cap the trim would cost more than the exact way; below k it cannot be exact.
    if (threshold &&
        Collect(values, ranges, *threshold, std::min(n, 3 * expected + k + 4096), expected) &&
        Finish(values, ranges, k, one_per_range)) {
      return;
    }
  }
  // At least k values at or above the histogram threshold: always enough, also after
  // setting the tensors' largest apart.
  const auto [threshold, count] = HistogramThreshold(values, ranges, k);
  Collect(values, ranges, threshold, count, count);
  Finish(values, ranges, k, one_per_range);
}

template <typename Values>
std::optional<uint32_t> Selection::SampledThreshold(const Values& values,
                                                    std::span<const TensorRange> ranges, uint64_t n,
                                                    uint64_t needed, uint64_t iteration,
                                                    uint64_t& expected_candidates) {
  const uint64_t target = std::clamp<uint64_t>(n / kSampleDivisor, kSampleMin, kSampleMax);
  const uint64_t blocks = target / kSampleBlock;
  const uint64_t stride = n / blocks;  // n > kSampledDirectMax: stride >= 2 * kSampleBlock
  // SplitMix64: seeding a Mersenne Twister per tensor cost more than the whole sample.
  uint64_t state = options_.seed ^ (iteration * 0x9e3779b97f4a7c15ull) ^ ranges.front().offset;
  auto rng = [&state] {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  sample_.resize(blocks * kSampleBlock);
  sample_histogram_.assign(kSampleBins, 0);
  uint32_t* sample = sample_.data();
  uint32_t* histogram = sample_histogram_.data();
  uint64_t size = 0;
  uint32_t top = 0;
  // Block starts are jittered inside their stride so periodic structure in the parameters
  // (one row of a matrix after another) cannot line up with the sample.
  sample_blocks_.clear();
  size_t range_index = 0;
  uint64_t range_start = 0;  // position of ranges[range_index] in the concatenation
  for (uint64_t b = 0; b < blocks; ++b) {
    const uint64_t start = b * stride + rng() % (stride - kSampleBlock + 1);
    while (start >= range_start + ranges[range_index].size) {
      range_start += ranges[range_index].size;
      ++range_index;
    }
    const TensorRange& r = ranges[range_index];
    const uint64_t begin = r.offset + (start - range_start);
    sample_blocks_.push_back({begin, std::min(begin + kSampleBlock, r.offset + r.size)});
  }
  // The blocks are cache misses far apart: prefetched ahead, several are in flight at once.
  for (uint64_t b = 0; b < std::min(blocks, kSamplePrefetch); ++b) {
    values.Prefetch(sample_blocks_[b].first);
  }
  for (uint64_t b = 0; b < blocks; ++b) {
    if (b + kSamplePrefetch < blocks) values.Prefetch(sample_blocks_[b + kSamplePrefetch].first);
    const auto [begin, end] = sample_blocks_[b];
    for (uint64_t i = begin; i < end; ++i) {
      const uint32_t bits = values.Bits(i);
      sample[size++] = bits;
      ++histogram[bits >> kSampleShift];
      top = std::max(top, bits);
    }
  }
  // Aim a few standard deviations above the expected rank of the needed-th largest, so the
  // collect pass finds at least `needed` with high probability.
  const double s = static_cast<double>(size);
  const double hits = static_cast<double>(needed) * s / static_cast<double>(n + needed);
  const auto rank = static_cast<uint64_t>(std::ceil(hits + 3.0 * std::sqrt(hits) + 4.0));
  if (rank >= size / 2) return std::nullopt;
  // The rank-th largest sample: the histogram finds its bin, nth_element ranks only the
  // bin's samples (a few percent of them) instead of all.
  uint64_t above = 0;  // samples in bins above `bin`
  uint32_t bin = top >> kSampleShift;
  while (above + histogram[bin] < rank) above += histogram[bin--];
  uint64_t in_bin = 0;
  for (uint64_t j = 0; j < size; ++j) {
    const uint32_t bits = sample[j];
    sample[in_bin] = bits;  // in_bin <= j: overwrites only what was read
    in_bin += (bits >> kSampleShift) == bin ? 1 : 0;
  }
  const uint64_t bin_rank = rank - above;  // 1 <= bin_rank <= in_bin
  std::nth_element(sample, sample + (bin_rank - 1), sample + in_bin, std::greater<>());
  const uint32_t threshold = sample[bin_rank - 1];
  if (threshold == 0) return std::nullopt;  // zeros everywhere: every element a candidate
  expected_candidates =
      static_cast<uint64_t>(static_cast<double>(rank) * static_cast<double>(n) / s);
  return threshold;
}

// The things ranked. Each gives one value (the signed pending change), its rank bits, the
// arrays the scan reads, and ForRanges: itself as ranked over those ranges (the dpu kind's
// local weight depends on them; the others are the same everywhere).
struct ResidualValues {
  float* residual;
  float operator()(uint64_t i) const { return residual[i]; }
  uint32_t Bits(uint64_t i) const { return AbsBits(residual[i]); }
  // The value moves from the residual to the update unchanged: no arithmetic, no loss.
  void Take(std::span<const uint64_t> indices, std::vector<float>& out) const {
    out.resize(indices.size());
    for (size_t j = 0; j < indices.size(); ++j) {
      out[j] = residual[indices[j]];
      residual[indices[j]] = 0.0f;
    }
  }
  ScanSource source() const { return {.minuend = residual}; }
  ResidualValues ForRanges(std::span<const TensorRange>, std::span<const size_t>) const {
    return *this;
  }
  // The two cache lines of a sample block at i.
  void Prefetch(uint64_t i) const {
    __builtin_prefetch(residual + i);
    __builtin_prefetch(residual + i + 16);
  }
};

struct DifferenceValues {
  const float* trained;
  const float* served;
  float operator()(uint64_t i) const { return trained[i] - served[i]; }
  uint32_t Bits(uint64_t i) const { return AbsBits(trained[i] - served[i]); }
  // The new served values.
  void Take(std::span<const uint64_t> indices, std::vector<float>& out) const {
    out.resize(indices.size());
    for (size_t j = 0; j < indices.size(); ++j) out[j] = trained[indices[j]];
  }
  ScanSource source() const { return {.minuend = trained, .subtrahend = served}; }
  DifferenceValues ForRanges(std::span<const TensorRange>, std::span<const size_t>) const {
    return *this;
  }
  void Prefetch(uint64_t i) const {
    __builtin_prefetch(trained + i);
    __builtin_prefetch(trained + i + 16);
    __builtin_prefetch(served + i);
    __builtin_prefetch(served + i + 16);
  }
};

// The dpu kind: `Pending` (one of the above) ranked by the DPU score (contribution.h) with
// the local contribution `local`, computed where the rank bits are read, never stored.
// Taking a coordinate deploys it, so its local restarts at zero.
template <typename Pending>
struct ContributionValues {
  Pending pending;
  float* local;
  // The caller's totals per layout tensor (AccumulateStep), or null: summed here.
  const ContributionSums* totals = nullptr;
  float weight = 1.0f;  // LocalWeight over the ranges ranked together (ForRanges)
  float operator()(uint64_t i) const { return pending(i); }
  uint32_t Bits(uint64_t i) const { return ScoreBits(CombinedScore(pending(i), local[i], weight)); }
  void Take(std::span<const uint64_t> indices, std::vector<float>& out) const {
    pending.Take(indices, out);
    for (uint64_t i : indices) local[i] = 0.0f;
  }
  ScanSource source() const {
    ScanSource s = pending.source();
    s.local = local;
    s.local_weight = weight;
    return s;
  }
  // The weight over `ranges` (layout tensors `tensors`, same order): from the caller's
  // totals, or else from a pass of its own, the one extra pass of the dpu kind. Either way
  // the same sums (AccumulateStep adds in AddContributionSums' order).
  ContributionValues ForRanges(std::span<const TensorRange> ranges,
                               std::span<const size_t> tensors) const {
    const ScanSource s = pending.source();
    ContributionSums sums;
    for (size_t j = 0; j < ranges.size(); ++j) {
      const TensorRange& r = ranges[j];
      if (totals != nullptr) {
        sums.pending_squares += totals[tensors[j]].pending_squares;
        sums.local_magnitudes += totals[tensors[j]].local_magnitudes;
      } else {
        AddContributionSums(s.minuend + r.offset,
                            s.subtrahend != nullptr ? s.subtrahend + r.offset : nullptr,
                            local + r.offset, r.size, sums);
      }
    }
    ContributionValues scoped = *this;
    scoped.weight = LocalWeight(sums);
    return scoped;
  }
  void Prefetch(uint64_t i) const {
    pending.Prefetch(i);
    __builtin_prefetch(local + i);
    __builtin_prefetch(local + i + 16);
  }
};

template <typename Values>
bool Selection::Collect(const Values& values, std::span<const TensorRange> ranges,
                        uint32_t threshold, uint64_t cap, uint64_t expected) {
  // The scan writes past the count (kScanSlack); the buffer only grows, so it is
  // initialised only once.
  if (candidates_.size() < cap + kScanSlack) candidates_.resize(cap + kScanSlack);
  uint64_t n = 0;
  for (const TensorRange& r : ranges) n += r.size;
  const bool sparse = static_cast<double>(expected) < kSparseHitFraction * static_cast<double>(n);
  uint64_t count = 0;
  segment_ends_.clear();
  candidate_floor_ = threshold;
  for (const TensorRange& r : ranges) {
    count = ScanForCandidates(values.source(), r.offset, r.offset + r.size, threshold, sparse,
                              candidates_.data(), count, cap);
    if (count > cap) return false;
    segment_ends_.push_back(count);
  }
  candidate_count_ = count;
  return true;
}

template <typename Values>
std::pair<uint32_t, uint64_t> Selection::HistogramThreshold(const Values& values,
                                                            std::span<const TensorRange> ranges,
                                                            uint64_t k) {
  histogram_.assign(kHistogramBins, 0);
  for (const TensorRange& r : ranges) {
    for (uint64_t i = r.offset; i < r.offset + r.size; ++i) {
      ++histogram_[values.Bits(i) >> kHistogramShift];
    }
  }
  uint64_t seen = 0;
  for (size_t bin = kHistogramBins; bin-- > 0;) {
    seen += histogram_[bin];
    if (seen >= k) return {static_cast<uint32_t>(bin << kHistogramShift), seen};
  }
  return {0, seen};
}

}  // namespace streamtrain::sparse::internal
