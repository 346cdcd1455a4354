// Inverse-frequency sampling: weight 1 / (1 + c(s)), c(s) the times s was returned so far,
// so records the model has rarely revisited catch up.
//
// Weights live in a Fenwick tree indexed by s - base_, so a draw is a prefix-sum search,
// O(log N). They are fixed-point integers, round(2^32 / (1 + c)): exact sums are what make a
// restored sampler (tree rebuilt from the counts) draw bit for bit what the original (tree
// built by updates) would; the rounding is below one part in 2^32 / (1 + c). Records picked
// in the current call have weight 0 until it ends (distinct picks), evicted ones for good.
#include <algorithm>
#include <limits>

#include "fenwick_tree.h"
#include "samplers.h"
#include "streamtrain/common/random.h"

namespace streamtrain::training::internal {
namespace {

constexpr uint64_t kWeightScale = uint64_t{1} << 32;
// Keeps the tree's total (at most kWeightScale per record) below 2^63.
constexpr uint64_t kMaxTracked = uint64_t{1} << 31;
// Evicted records are dropped from memory once they are this many and half the arrays.
constexpr uint64_t kCompactAtLeast = 4096;

uint64_t Weight(uint32_t count) {
  const uint64_t d = uint64_t{count} + 1;
  return (kWeightScale + d / 2) / d;
}

class InverseFrequencySampler final : public HistorySampler {
 public:
  explicit InverseFrequencySampler(const SamplerOptions& options) : rng_(options.seed) {}

  SamplerKind kind() const override { return SamplerKind::kInverseFrequency; }

  Result<std::vector<SequenceNumber>> Sample(SequenceNumber first_retained, SequenceNumber end,
                                             size_t n) override {
    ST_RETURN_IF_ERROR(CheckRange(first_retained, end));
    if (counts_.empty()) base_ = live_ = std::max(live_, first_retained.value());
    Evict(first_retained.value());
    ST_RETURN_IF_ERROR(Grow(end.value()));
    Compact();

    const uint64_t lo = std::max(first_retained.value(), live_);
    const uint64_t hi = end.value();
    std::vector<SequenceNumber> out;
    if (hi <= lo || n == 0) return out;
    const uint64_t k = std::min<uint64_t>(n, hi - lo);
    std::vector<size_t> picks;
    picks.reserve(k);
    // Picks are inside [lo, hi), so zeroing one leaves the weight below lo alone and takes
    // exactly its weight off the range's: two prefix sums per call, not per pick.
    const uint64_t below = tree_.Prefix(lo - base_);
    uint64_t in_range = tree_.Prefix(hi - base_) - below;
    for (uint64_t i = 0; i < k; ++i) {
      // Every free record in [lo, hi) weighs >= 1, so in_range > 0 until k are picked.
      const size_t index = tree_.Find(below + UniformBelow(rng_, in_range));
      const uint64_t weight = Weight(counts_[index]);
      tree_.Add(index, -weight);
      in_range -= weight;
      picks.push_back(index);
    }
    out.reserve(k);
    for (size_t index : picks) {
      if (counts_[index] < std::numeric_limits<uint32_t>::max()) ++counts_[index];
      tree_.Add(index, Weight(counts_[index]));
      out.emplace_back(base_ + index);
    }
    return out;
  }

  std::string SerializeState() const override {
    StateWriter writer = BeginSamplerState(SamplerKind::kInverseFrequency, rng_);
    // Only live records: the evicted ones weigh 0 and cannot change a draw.
    const uint64_t from = live_ - base_;
    writer.VarU64(live_);
    writer.VarU64(counts_.size() - from);
    for (size_t i = from; i < counts_.size(); ++i) writer.VarU64(counts_[i]);
    return std::move(writer).Finish();
  }

  Status RestoreState(std::string_view state) override {
    std::mt19937_64 rng;
    ST_ASSIGN_OR_RETURN(StateReader reader,
                        OpenSamplerState(state, SamplerKind::kInverseFrequency, &rng));
    uint64_t live = 0, size = 0;
    reader.VarU64(&live);
    reader.VarU64(&size);
    // Each count takes at least one byte: this bounds the allocation by the input's size.
    if (size > reader.remaining() || size > kMaxTracked) reader.Fail("bad record count");
    if (live > std::numeric_limits<uint64_t>::max() - size) reader.Fail("bad live range");
    std::vector<uint32_t> counts;
    counts.reserve(std::min<uint64_t>(size, reader.remaining()));
    for (uint64_t i = 0; i < size; ++i) {
      uint64_t c = 0;
      if (!reader.VarU64(&c)) break;
      if (c > std::numeric_limits<uint32_t>::max()) {
        reader.Fail("selection count " + std::to_string(c) + " out of range");
        break;
      }
      counts.push_back(static_cast<uint32_t>(c));
    }
    ST_RETURN_IF_ERROR(reader.Finish());
    rng_ = rng;
    base_ = live_ = live;
    counts_ = std::move(counts);
    Rebuild();
    return Status::Ok();
  }

 private:
  uint64_t tracked_end() const { return base_ + counts_.size(); }

  void Rebuild() {
    std::vector<uint64_t> weights(counts_.size(), 0);
    for (size_t i = live_ - base_; i < counts_.size(); ++i) weights[i] = Weight(counts_[i]);
    tree_.Assign(weights);
  }

  // Records below `first` are gone from the store: weight 0, for good.
  void Evict(uint64_t first) {
    if (first <= live_) return;
    if (first >= tracked_end()) {
      counts_.clear();
      base_ = live_ = first;
      tree_.Assign({});
      return;
    }
    const uint64_t gone = first - live_;
    const uint64_t from = live_;
    live_ = first;
    if (gone > counts_.size() / 4) {
      Rebuild();
    } else {
      for (uint64_t s = from; s < first; ++s) {
        tree_.Add(s - base_, -Weight(counts_[s - base_]));
      }
    }
  }

  // Records up to `end` join with count 0.
  Status Grow(uint64_t end) {
    if (end <= tracked_end()) return Status::Ok();
    const uint64_t added = end - tracked_end();
    if (end - live_ > kMaxTracked) {
      return ResourceExhausted("inverse-frequency sampler: " + std::to_string(end - live_) +
                               " retained records is more than it can track (2^31)");
    }
    if (added > counts_.size()) {
      counts_.resize(counts_.size() + added, 0);
      Rebuild();
    } else {
      for (uint64_t i = 0; i < added; ++i) {
        counts_.push_back(0);
        tree_.PushBack(Weight(0));
      }
    }
    return Status::Ok();
  }

  void Compact() {
    const uint64_t dead = live_ - base_;
    if (dead < kCompactAtLeast || dead < counts_.size() / 2) return;
    counts_.erase(counts_.begin(), counts_.begin() + static_cast<std::ptrdiff_t>(dead));
    base_ = live_;
    Rebuild();
  }

  std::mt19937_64 rng_;
  uint64_t base_ = 0;             // sequence number of counts_[0]
  uint64_t live_ = 0;             // first record not evicted; base_ <= live_ <= tracked_end()
  std::vector<uint32_t> counts_;  // selection counts of [base_, tracked_end())
  FenwickTree tree_;              // their weights; 0 below live_
};

}  // namespace

std::unique_ptr<HistorySampler> MakeInverseFrequencySampler(const SamplerOptions& options) {
  return std::make_unique<InverseFrequencySampler>(options);
}

}  // namespace streamtrain::training::internal
