// Recency sampling: weight 0.5^(age / half_life), age = end - 1 - s, drawn without
// replacement by successive sampling.
//
// The weights of ages [0, R) form a truncated geometric law with ratio q = 0.5^(1/h), whose
// inverse CDF is closed-form, so one draw costs O(1) whatever R. Duplicates are rejected,
// which leaves each pick distributed as the law restricted to the records not yet picked.
// When the picks already hold most of the mass (a half-life short next to n), rejection
// would spin; the exact fallback then draws from that same restricted law directly, over the
// gaps between picked ages. Both give the same distribution, so switching is invisible.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <unordered_set>

#include "samplers.h"

namespace streamtrain::training::internal {
namespace {

// Consecutive duplicates after which the exact fallback takes over. At 16, rejection is
// abandoned only once a draw is a duplicate with probability around 1/2 or more.
constexpr int kMaxConsecutiveDuplicates = 16;
// Gap weights are relative to the youngest free age; rescale before they underflow.
constexpr double kRescaleBelow = 1e-200;

class RecencySampler final : public HistorySampler {
 public:
  explicit RecencySampler(const SamplerOptions& options)
      : rng_(options.seed), log_q_(-std::numbers::ln2 / options.half_life) {}

  SamplerKind kind() const override { return SamplerKind::kRecency; }

  Result<std::vector<SequenceNumber>> Sample(SequenceNumber first_retained, SequenceNumber end,
                                             size_t n) override {
    ST_RETURN_IF_ERROR(CheckRange(first_retained, end));
    const uint64_t range = end.value() - first_retained.value();
    const uint64_t k = std::min<uint64_t>(n, range);
    std::vector<uint64_t> ages;
    ages.reserve(k);
    if (k == range) {
      // Everything is picked: no randomness to spend.
      for (uint64_t a = 0; a < range; ++a) ages.push_back(a);
    } else {
      std::unordered_set<uint64_t> taken;
      taken.reserve(2 * k);
      const double mass = Mass(range);
      int duplicates = 0;
      while (ages.size() < k && duplicates < kMaxConsecutiveDuplicates) {
        const uint64_t age = DrawAge(range, mass);
        if (taken.insert(age).second) {
          ages.push_back(age);
          duplicates = 0;
        } else {
          ++duplicates;
        }
      }
      if (ages.size() < k) DrawRestricted(range, k, ages);
    }
    std::vector<SequenceNumber> out;
    out.reserve(ages.size());
    for (uint64_t a : ages) out.emplace_back(end.value() - 1 - a);
    return out;
  }

  std::string SerializeState() const override {
    return std::move(BeginSamplerState(SamplerKind::kRecency, rng_)).Finish();
  }

  Status RestoreState(std::string_view state) override {
    std::mt19937_64 rng;
    ST_ASSIGN_OR_RETURN(StateReader reader, OpenSamplerState(state, SamplerKind::kRecency, &rng));
    ST_RETURN_IF_ERROR(reader.Finish());
    rng_ = rng;
    return Status::Ok();
  }

 private:
  struct Gap {
    uint64_t lo = 0;  // free ages [lo, hi)
    uint64_t hi = 0;
    double weight = 0;  // sum of q^(a - ref) over the gap, up to the common factor 1/(1 - q)
  };

  // 1 - q^len, the weight of ages [0, len) up to the factor 1/(1 - q); expm1 keeps it
  // accurate when q is within 1e-5 of 1 (long half-lives).
  double Mass(uint64_t len) const { return -std::expm1(static_cast<double>(len) * log_q_); }

  // An age in [0, len) with P(age = a) proportional to q^a (inverse CDF); mass = Mass(len).
  uint64_t DrawAge(uint64_t len, double mass) {
    const double x = std::log1p(-Uniform01(rng_) * mass) / log_q_;
    // Rounding can land on len itself; NaN cannot happen, but would be caught here too.
    if (!(x < static_cast<double>(len))) return len - 1;
    return static_cast<uint64_t>(x);
  }

  void Weigh(Gap& gap, uint64_t ref) const {
    gap.weight = std::exp(static_cast<double>(gap.lo - ref) * log_q_) * Mass(gap.hi - gap.lo);
  }

  // Adds picks until there are k, each drawn from the law restricted to the free ages.
  // O(k) per pick; only reached when rejection stalls.
  void DrawRestricted(uint64_t range, uint64_t k, std::vector<uint64_t>& ages) {
    std::vector<uint64_t> sorted = ages;
    std::sort(sorted.begin(), sorted.end());
    std::vector<Gap> gaps;
    uint64_t next = 0;
    for (uint64_t a : sorted) {
      if (a > next) gaps.push_back({next, a});
      next = a + 1;
    }
    if (next < range) gaps.push_back({next, range});
    uint64_t ref = gaps.front().lo;
    for (Gap& g : gaps) Weigh(g, ref);

    while (ages.size() < k) {
      double total = 0;
      for (const Gap& g : gaps) total += g.weight;
      if (!(total >= kRescaleBelow)) {
        ref = gaps.front().lo;
        total = 0;
        for (Gap& g : gaps) {
          Weigh(g, ref);
          total += g.weight;
        }
      }
      double target = Uniform01(rng_) * total;
      size_t j = 0;
      while (j + 1 < gaps.size() && target >= gaps[j].weight) {
        target -= gaps[j].weight;
        ++j;
      }
      // Rounding can carry the scan past the last gap that has any weight left.
      while (j > 0 && gaps[j].weight <= 0) --j;
      const Gap gap = gaps[j];
      const uint64_t age = gap.lo + DrawAge(gap.hi - gap.lo, Mass(gap.hi - gap.lo));
      ages.push_back(age);

      std::vector<Gap> split;
      if (age > gap.lo) split.push_back({gap.lo, age});
      if (age + 1 < gap.hi) split.push_back({age + 1, gap.hi});
      for (Gap& g : split) Weigh(g, ref);
      gaps.erase(gaps.begin() + static_cast<std::ptrdiff_t>(j));
      gaps.insert(gaps.begin() + static_cast<std::ptrdiff_t>(j), split.begin(), split.end());
    }
  }

  std::mt19937_64 rng_;
  double log_q_;  // ln q = ln(0.5) / half_life < 0
};

}  // namespace

std::unique_ptr<HistorySampler> MakeRecencySampler(const SamplerOptions& options) {
  return std::make_unique<RecencySampler>(options);
}

}  // namespace streamtrain::training::internal
