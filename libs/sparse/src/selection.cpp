#include "selection.h"

#include <cassert>
#include <numeric>
#include <unordered_set>

#include "streamtrain/common/random.h"

namespace streamtrain::sparse::internal {

Selection::Selection(const SparsifierOptions& options, std::vector<TensorRange> layout)
    : options_(options), layout_(std::move(layout)) {
  by_offset_.resize(layout_.size());
  std::iota(by_offset_.begin(), by_offset_.end(), size_t{0});
  std::sort(by_offset_.begin(), by_offset_.end(),
            [&](size_t a, size_t b) { return layout_[a].offset < layout_[b].offset; });
  for (size_t t : by_offset_) sorted_layout_.push_back(layout_[t]);
  for (const TensorRange& r : layout_) {
    total_ += r.size;
    nonempty_ += r.size > 0 ? 1 : 0;
  }
}

uint64_t Selection::TensorK(uint64_t size, double ratio) const {
  if (size == 0) return 0;
  const auto k = static_cast<uint64_t>(std::llround(ratio * static_cast<double>(size)));
  return std::clamp<uint64_t>(k, 1, size);
}

uint64_t Selection::GlobalK(double ratio) const {
  const auto k = static_cast<uint64_t>(std::llround(ratio * static_cast<double>(total_)));
  return std::clamp<uint64_t>(k, nonempty_, total_);
}

uint64_t Selection::KAt(uint64_t iteration) const {
  const double ratio = EffectiveRatio(options_, iteration);
  if (ratio >= 1.0) return total_;
  if (options_.scope == SparsifierScope::kGlobal) return GlobalK(ratio);
  uint64_t k = 0;
  for (const TensorRange& r : layout_) k += TensorK(r.size, ratio);
  return k;
}

bool Selection::TrimCandidates(uint64_t k) {
  if (candidate_count_ < k) return false;
  if (k == 0) return true;
  // Keys are distinct, so the k largest are one well-defined set: those at or above the
  // k-th. Filtering candidates_ (rather than taking the ranked prefix) keeps index order,
  // which saves sorting k indices later.
  const uint64_t* candidates = candidates_.data();
  const uint64_t kth = KthCandidate(k);
  // Branch-free: at ratios near 1% about half the candidates qualify, at random.
  const size_t base = selected_.size();
  selected_.resize(base + candidate_count_);
  uint64_t* out = selected_.data() + base;
  size_t taken = 0;
  for (uint64_t i = 0; i < candidate_count_; ++i) {
    out[taken] = KeyIndex(candidates[i]);
    taken += candidates[i] >= kth ? 1 : 0;
  }
  selected_.resize(base + taken);
  return true;
}

uint64_t Selection::KthCandidate(uint64_t k) {
  const uint64_t* candidates = candidates_.data();
  const uint64_t count = candidate_count_;
  if (count <= kTrimDirectMax) {
    ranked_.assign(candidates, candidates + count);
    std::nth_element(ranked_.begin(), ranked_.begin() + static_cast<ptrdiff_t>(k - 1),
                     ranked_.end(), std::greater<>());
    return ranked_[k - 1];
  }
  // nth_element over every candidate (1.4k of them at ratio 1%) cost more than the scan
  // itself. A histogram of |v| above the collect threshold finds the bin that holds the
  // k-th; only that bin (typically a few hundred) is ranked.
  trim_histogram_.assign(kTrimBins, 0);
  const uint64_t floor = uint64_t{candidate_floor_};
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t bin = ((candidates[i] >> 32) - floor) >> kTrimShift;
    ++trim_histogram_[std::min<uint64_t>(bin, kTrimBins - 1)];
  }
  uint64_t above = 0;  // candidates in bins above `bin`
  size_t bin = kTrimBins - 1;
  while (above + trim_histogram_[bin] < k) above += trim_histogram_[bin--];
  // The bin's keys are [low, high): compare whole keys, no shift per candidate.
  const uint64_t low = (floor + (uint64_t{bin} << kTrimShift)) << 32;
  const uint64_t high =
      bin == kTrimBins - 1 ? UINT64_MAX : (floor + (uint64_t{bin + 1} << kTrimShift)) << 32;
  ranked_.resize(trim_histogram_[bin] + 1);
  uint64_t* out = ranked_.data();
  uint64_t in_bin = 0;
  for (uint64_t i = 0; i < count; ++i) {
    out[in_bin] = candidates[i];
    in_bin += (candidates[i] >= low) & (candidates[i] < high) ? 1 : 0;
  }
  assert(in_bin == trim_histogram_[bin]);
  const uint64_t rank = k - above;  // 1 <= rank <= in_bin
  std::nth_element(out, out + (rank - 1), out + in_bin, std::greater<>());
  return out[rank - 1];
}

std::mt19937_64 Selection::IterationRng(uint64_t iteration, uint64_t salt) const {
  // A function of (seed, iteration, salt) only: a restarted trainer draws the same.
  std::seed_seq seq{
      static_cast<uint32_t>(options_.seed), static_cast<uint32_t>(options_.seed >> 32),
      static_cast<uint32_t>(iteration),     static_cast<uint32_t>(iteration >> 32),
      static_cast<uint32_t>(salt),          static_cast<uint32_t>(salt >> 32)};
  return std::mt19937_64(seq);
}

namespace {

// `count` distinct positions of [0, n), none in `taken` (which they are added to).
void DrawDistinct(uint64_t n, uint64_t count, std::mt19937_64& rng,
                  std::unordered_set<uint64_t>& taken, std::vector<uint64_t>& out) {
  const uint64_t free = n - taken.size();
  assert(count <= free);
  if (count * 2 <= free) {
    // Rejection: at least half of the draws are new, so this is O(count) expected.
    while (count > 0) {
      const uint64_t p = UniformBelow(rng, n);
      if (taken.insert(p).second) {
        out.push_back(p);
        --count;
      }
    }
    return;
  }
  std::vector<uint64_t> pool;
  pool.reserve(free);
  for (uint64_t p = 0; p < n; ++p) {
    if (!taken.contains(p)) pool.push_back(p);
  }
  for (uint64_t i = 0; i < count; ++i) {
    std::swap(pool[i], pool[i + UniformBelow(rng, pool.size() - i)]);
    taken.insert(pool[i]);
    out.push_back(pool[i]);
  }
}

}  // namespace

void Selection::RandomK(uint64_t iteration, double ratio) {
  std::mt19937_64 rng = IterationRng(iteration, 0);
  std::unordered_set<uint64_t> taken;
  std::vector<uint64_t> local;
  if (options_.scope == SparsifierScope::kPerTensor) {
    for (const TensorRange& r : layout_) {
      taken.clear();
      local.clear();
      DrawDistinct(r.size, TensorK(r.size, ratio), rng, taken, local);
      for (uint64_t p : local) selected_.push_back(r.offset + p);
    }
    return;
  }
  // Positions in the concatenation of the tensors (layout order), mapped back at the end.
  std::vector<uint64_t> starts;
  uint64_t start = 0;
  for (const TensorRange& r : layout_) {
    starts.push_back(start);
    if (r.size > 0) {
      const uint64_t p = start + UniformBelow(rng, r.size);
      taken.insert(p);
      local.push_back(p);
    }
    start += r.size;
  }
  DrawDistinct(total_, GlobalK(ratio) - local.size(), rng, taken, local);
  for (uint64_t p : local) {
    const size_t t =
        static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), p) - starts.begin()) - 1;
    // Empty tensors share a start with the next one; upper_bound lands on the last of them.
    selected_.push_back(layout_[t].offset + (p - starts[t]));
  }
}

void Selection::DistributeIndices(SparseUpdate& out) {
  // Top-k paths produce ascending indices already; random-k does not.
  if (!std::is_sorted(selected_.begin(), selected_.end())) {
    std::sort(selected_.begin(), selected_.end());
  }
  out.tensors.resize(layout_.size());
  for (TensorUpdate& t : out.tensors) {
    t.indices.clear();
    t.values.clear();
  }
  auto it = selected_.begin();
  for (size_t t : by_offset_) {
    const TensorRange& r = layout_[t];
    auto end = std::lower_bound(it, selected_.end(), r.offset + r.size);
    out.tensors[t].indices.assign(it, end);
    it = end;
  }
  assert(it == selected_.end());
}

}  // namespace streamtrain::sparse::internal
