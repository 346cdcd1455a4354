#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "streamtrain/common/random.h"
#include "streamtrain/training/history_sampler.h"

namespace streamtrain::training {
namespace {

std::unique_ptr<HistorySampler> Make(SamplerKind kind, uint64_t seed = 7, uint64_t window = 50,
                                     double half_life = 20) {
  auto sampler = HistorySampler::Create(
      {.kind = kind, .seed = seed, .window = window, .half_life = half_life});
  REQUIRE(sampler.ok());
  return std::move(sampler).value();
}

std::vector<uint64_t> Values(const std::vector<SequenceNumber>& seqs) {
  std::vector<uint64_t> out;
  for (SequenceNumber s : seqs) out.push_back(s.value());
  return out;
}

std::vector<uint64_t> SampleValues(HistorySampler& sampler, uint64_t first, uint64_t end,
                                   size_t n) {
  auto sample = sampler.Sample(SequenceNumber(first), SequenceNumber(end), n);
  REQUIRE(sample.ok());
  return Values(*sample);
}

// The states end in a little-endian FNV-1a 64 of the bytes before it; recomputing it lets a
// test hand the sampler bytes that pass the checksum but hold impossible contents.
std::string Reseal(std::string bytes) {
  if (bytes.size() < 8) return bytes;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i + 8 < bytes.size(); ++i) {
    h ^= static_cast<uint8_t>(bytes[i]);
    h *= 0x100000001b3ULL;
  }
  for (int i = 0; i < 8; ++i) bytes[bytes.size() - 8 + i] = static_cast<char>(h >> (8 * i));
  return bytes;
}

double ChiSquare(const std::vector<double>& counts, double expected) {
  double chi2 = 0;
  for (double c : counts) chi2 += (c - expected) * (c - expected) / expected;
  return chi2;
}

// Inclusion probability of each item when `picks` distinct items are drawn one after another,
// each proportional to its weight among those not drawn yet (successive sampling).
std::vector<double> InclusionProbabilities(const std::vector<double>& weights, size_t picks) {
  std::vector<double> inclusion(weights.size(), 0);
  std::vector<bool> taken(weights.size(), false);
  std::function<void(size_t, double)> walk = [&](size_t depth, double p) {
    if (depth == picks) {
      for (size_t i = 0; i < weights.size(); ++i) inclusion[i] += taken[i] ? p : 0;
      return;
    }
    double free = 0;
    for (size_t i = 0; i < weights.size(); ++i) free += taken[i] ? 0 : weights[i];
    for (size_t i = 0; i < weights.size(); ++i) {
      if (taken[i]) continue;
      taken[i] = true;
      walk(depth + 1, p * weights[i] / free);
      taken[i] = false;
    }
  };
  walk(0, 1.0);
  return inclusion;
}

// Critical value of chi-square with 99 degrees of freedom at p = 0.001.
constexpr double kChi2Df99P001 = 148.23;

}  // namespace

TEST_CASE("sampler kinds parse from their names and a wrong name lists the accepted ones",
          "[training]") {
  for (SamplerKind kind : {SamplerKind::kUniform, SamplerKind::kWindow, SamplerKind::kRecency,
                           SamplerKind::kInverseFrequency}) {
    auto parsed = ParseSamplerKind(SamplerKindName(kind));
    REQUIRE(parsed.ok());
    CHECK(*parsed == kind);
  }
  CHECK(SamplerKindName(SamplerKind::kInverseFrequency) == "inverse-frequency");
  auto bad = ParseSamplerKind("lifo");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == ErrorCode::kInvalidArgument);
  CHECK(bad.status().message() ==
        "unknown sampler kind 'lifo'; accepted: uniform, window, recency, inverse-frequency");
}

TEST_CASE("invalid sampler options are rejected", "[training]") {
  CHECK(HistorySampler::Create({.kind = SamplerKind::kWindow, .window = 0}).status().code() ==
        ErrorCode::kInvalidArgument);
  for (double half_life :
       {0.0, -5.0, std::nan(""), std::numeric_limits<double>::infinity(), 1e-9}) {
    INFO("half-life " << half_life);
    CHECK(HistorySampler::Create({.kind = SamplerKind::kRecency, .half_life = half_life})
              .status()
              .code() == ErrorCode::kInvalidArgument);
  }
  CHECK(HistorySampler::Create({.kind = SamplerKind::kRecency, .half_life = 0.5}).ok());
}

TEST_CASE("every sampler kind returns distinct records inside the range", "[training]") {
  const SamplerKind kind = GENERATE(SamplerKind::kUniform, SamplerKind::kWindow,
                                    SamplerKind::kRecency, SamplerKind::kInverseFrequency);
  const uint64_t first = GENERATE(uint64_t{0}, uint64_t{1'000'000'000'000});
  const uint64_t span = GENERATE(0, 1, 10, 120, 5000, 1'000'000);
  const size_t n = GENERATE(0, 1, 64, 500);
  const uint64_t window = 50;
  auto sampler = Make(kind, 7, window, /*half_life=*/20);
  // A few calls on a range that moves, as the trainer's does.
  for (uint64_t call = 0; call < 3; ++call) {
    const uint64_t lo = first + call * span / 10, hi = first + span + call * span / 5;
    INFO("kind " << SamplerKindName(kind) << " range [" << lo << ", " << hi << ") n " << n);
    auto sample = SampleValues(*sampler, lo, hi, n);
    uint64_t candidates = hi - lo;
    if (kind == SamplerKind::kWindow) candidates = std::min(candidates, window);
    CHECK(sample.size() == std::min<uint64_t>(n, candidates));
    CHECK(std::set<uint64_t>(sample.begin(), sample.end()).size() == sample.size());
    const uint64_t min_allowed = kind == SamplerKind::kWindow ? std::max(lo, hi - candidates) : lo;
    for (uint64_t s : sample) {
      REQUIRE(s >= min_allowed);
      REQUIRE(s < hi);
    }
  }
}

TEST_CASE("end before first_retained is an invalid argument", "[training]") {
  const SamplerKind kind = GENERATE(SamplerKind::kUniform, SamplerKind::kWindow,
                                    SamplerKind::kRecency, SamplerKind::kInverseFrequency);
  auto sample = Make(kind)->Sample(SequenceNumber(10), SequenceNumber(9), 1);
  REQUIRE_FALSE(sample.ok());
  CHECK(sample.status().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("uniform and window and recency sampling stay O(n) on ranges of billions", "[training]") {
  const SamplerKind kind =
      GENERATE(SamplerKind::kUniform, SamplerKind::kWindow, SamplerKind::kRecency);
  auto sampler = Make(kind, 3, 1'000'000, 10'000);
  const uint64_t first = 1'000, end = 4'000'000'000;
  for (int call = 0; call < 200; ++call) {
    auto sample = SampleValues(*sampler, first, end, 1000);
    REQUIRE(sample.size() == 1000);
    CHECK(std::set<uint64_t>(sample.begin(), sample.end()).size() == 1000);
  }
}

TEST_CASE("inverse-frequency sampling refuses a range too large to track", "[training]") {
  auto sample = Make(SamplerKind::kInverseFrequency)
                    ->Sample(SequenceNumber(0), SequenceNumber(uint64_t{1} << 32), 10);
  REQUIRE_FALSE(sample.ok());
  CHECK(sample.status().code() == ErrorCode::kResourceExhausted);
}

TEST_CASE("uniform history sampling passes a chi-square test at a fixed seed", "[training]") {
  // 20,000 draws of 10 distinct records from [500, 600): each is expected 2,000 times.
  auto sampler = Make(SamplerKind::kUniform, 20261123);
  std::vector<double> counts(100, 0);
  for (int d = 0; d < 20000; ++d) {
    for (uint64_t s : SampleValues(*sampler, 500, 600, 10)) counts[s - 500] += 1;
  }
  const double chi2 = ChiSquare(counts, 2000);
  INFO("chi2 = " << chi2);
  CHECK(chi2 < kChi2Df99P001);
}

TEST_CASE("window sampling is uniform over the last W records and never older", "[training]") {
  // [0, 1000) retained, W = 100: only [900, 1000) may be drawn, each 1,000 times expected.
  auto sampler = Make(SamplerKind::kWindow, 20261123, /*window=*/100);
  std::vector<double> counts(100, 0);
  for (int d = 0; d < 10000; ++d) {
    for (uint64_t s : SampleValues(*sampler, 0, 1000, 10)) {
      REQUIRE(s >= 900);
      counts[s - 900] += 1;
    }
  }
  const double chi2 = ChiSquare(counts, 1000);
  INFO("chi2 = " << chi2);
  CHECK(chi2 < kChi2Df99P001);
}

TEST_CASE("recency sampling halves a record's chance every half-life", "[training]") {
  // A range far longer than the half-life: P(age < h) = 1/2, P(h <= age < 2h) = 1/4, ...
  constexpr double kHalfLife = 1000;
  auto sampler = Make(SamplerKind::kRecency, 20261123, 50, kHalfLife);
  const uint64_t end = 1'000'000;
  std::vector<double> buckets(4, 0);
  double total = 0;
  for (int call = 0; call < 5000; ++call) {
    for (uint64_t s : SampleValues(*sampler, 0, end, 8)) {
      const uint64_t age = end - 1 - s;
      if (age < 4 * kHalfLife) buckets[age / static_cast<uint64_t>(kHalfLife)] += 1;
      total += 1;
    }
  }
  INFO("buckets " << buckets[0] << " " << buckets[1] << " " << buckets[2] << " " << buckets[3]);
  CHECK(buckets[0] / total == Approx(0.5).margin(0.01));
  CHECK(buckets[0] / buckets[1] == Approx(2.0).epsilon(0.05));
  CHECK(buckets[1] / buckets[2] == Approx(2.0).epsilon(0.05));
  CHECK(buckets[2] / buckets[3] == Approx(2.0).epsilon(0.1));
}

TEST_CASE("recency sampling without replacement follows successive sampling exactly",
          "[training]") {
  // Five records, three picks: steep weights force the exact fallback often, mild ones rarely;
  // either way each record's inclusion probability must match the successive-sampling law.
  const double half_life = GENERATE(0.5, 3.0);
  constexpr int kRange = 5, kPicks = 3, kCalls = 20000;
  std::vector<double> weight(kRange);
  for (int a = 0; a < kRange; ++a) weight[a] = std::pow(0.5, a / half_life);
  const std::vector<double> expected = InclusionProbabilities(weight, kPicks);

  auto sampler = Make(SamplerKind::kRecency, 99, 50, half_life);
  std::vector<double> seen(kRange, 0);
  for (int call = 0; call < kCalls; ++call) {
    for (uint64_t s : SampleValues(*sampler, 100, 100 + kRange, kPicks))
      seen[100 + kRange - 1 - s]++;
  }
  for (int a = 0; a < kRange; ++a) {
    const double p = expected[a], got = seen[a] / kCalls;
    INFO("half-life " << half_life << " age " << a << " expected " << p << " got " << got);
    CHECK(std::abs(got - p) < 5 * std::sqrt(p * (1 - p) / kCalls) + 1e-3);
  }
}

TEST_CASE("inverse-frequency sampling evens out selection counts", "[training]") {
  // 2,000 calls of 10 from 1,000 records: 20 selections each on average. Uniform sampling
  // spreads them binomially (variance ~20, some records picked 5 times, some 35). Under
  // 1 / (1 + c) a record's deviation d from the mean m pulls back at rate ~d / (1 + m), so
  // the variance levels off near (1 + m) / 2: a few times lower, and no record is starved.
  // (A reference simulation of the same law in Python gives variance 6.4 to 7.3, min 12-13.)
  auto spread = [](SamplerKind kind) {
    auto sampler = Make(kind, 5);
    std::vector<double> counts(1000, 0);
    for (int call = 0; call < 2000; ++call) {
      for (uint64_t s : SampleValues(*sampler, 0, 1000, 10)) counts[s] += 1;
    }
    const double mean = std::accumulate(counts.begin(), counts.end(), 0.0) / counts.size();
    double variance = 0;
    for (double c : counts) variance += (c - mean) * (c - mean) / counts.size();
    auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
    return std::tuple(variance, *lo, *hi);
  };
  const auto [uniform_var, uniform_min, uniform_max] = spread(SamplerKind::kUniform);
  const auto [inverse_var, inverse_min, inverse_max] = spread(SamplerKind::kInverseFrequency);
  INFO("uniform: variance " << uniform_var << " min " << uniform_min << " max " << uniform_max);
  INFO("inverse: variance " << inverse_var << " min " << inverse_min << " max " << inverse_max);
  CHECK(uniform_var > 15);
  CHECK(inverse_var < uniform_var / 2);
  CHECK(inverse_min >= 1.5 * uniform_min);
  CHECK(inverse_max / inverse_min < (uniform_max / uniform_min) / 2);
}

TEST_CASE("inverse-frequency picks follow 1 over 1 plus the selection count exactly",
          "[training]") {
  // Counts 4, 1, 0, 0 (weights 1/5, 1/2, 1, 1), then 2 distinct picks: each record's
  // inclusion probability must match successive sampling under those weights. Fresh
  // samplers per trial, since every call changes the counts.
  const std::vector<double> weights = {1.0 / 5, 1.0 / 2, 1, 1};
  const auto expected = InclusionProbabilities(weights, 2);
  constexpr int kTrials = 20000;
  std::vector<double> seen(4, 0);
  for (int trial = 0; trial < kTrials; ++trial) {
    auto sampler = Make(SamplerKind::kInverseFrequency, 1000 + trial);
    for (int i = 0; i < 3; ++i) SampleValues(*sampler, 0, 1, 1);  // record 0: count 3
    SampleValues(*sampler, 0, 2, 2);                              // records 0 and 1: +1
    for (uint64_t s : SampleValues(*sampler, 0, 4, 2)) seen[s] += 1;
  }
  for (size_t s = 0; s < 4; ++s) {
    const double p = expected[s], got = seen[s] / kTrials;
    INFO("record " << s << " expected " << p << " got " << got);
    CHECK(std::abs(got - p) < 5 * std::sqrt(p * (1 - p) / kTrials) + 1e-3);
  }
}

TEST_CASE("inverse-frequency sampling favours records that joined the range later", "[training]") {
  // After 500 calls every record of [0, 1000) has been picked ~5 times (weight ~1/6); the 100
  // records that then arrive start at weight 1 and take ~35% of the next 100 picks where
  // uniform sampling would give them ~9%.
  auto sampler = Make(SamplerKind::kInverseFrequency, 11);
  for (int call = 0; call < 500; ++call) SampleValues(*sampler, 0, 1000, 10);
  auto next = SampleValues(*sampler, 0, 1100, 100);
  const auto newcomers =
      std::count_if(next.begin(), next.end(), [](uint64_t s) { return s >= 1000; });
  CHECK(newcomers > 20);
}

TEST_CASE("inverse-frequency sampling never returns evicted records", "[training]") {
  auto sampler = Make(SamplerKind::kInverseFrequency, 13);
  uint64_t first = 0, end = 200;
  for (int call = 0; call < 3000; ++call) {
    first += 7;
    end += 10;
    for (uint64_t s : SampleValues(*sampler, first, end, 20)) {
      REQUIRE(s >= first);
      REQUIRE(s < end);
    }
  }
  // Eviction is for good: a caller that passes an older first_retained gets nothing older.
  for (int call = 0; call < 50; ++call) {
    for (uint64_t s : SampleValues(*sampler, 0, end, 50)) REQUIRE(s >= first);
  }
  // A jump past everything tracked leaves only the new range.
  for (uint64_t s : SampleValues(*sampler, end + 1'000'000, end + 1'000'010, 20)) {
    CHECK(s >= end + 1'000'000);
  }
}

TEST_CASE("a seed determines the samples", "[training]") {
  const SamplerKind kind = GENERATE(SamplerKind::kUniform, SamplerKind::kWindow,
                                    SamplerKind::kRecency, SamplerKind::kInverseFrequency);
  auto a = Make(kind, 42), b = Make(kind, 42), c = Make(kind, 43);
  bool differs = false;
  for (uint64_t call = 0; call < 20; ++call) {
    const auto sa = SampleValues(*a, call, 500 + 10 * call, 16);
    CHECK(sa == SampleValues(*b, call, 500 + 10 * call, 16));
    differs |= sa != SampleValues(*c, call, 500 + 10 * call, 16);
  }
  CHECK(differs);
}

TEST_CASE("a restored sampler continues the same sequence", "[training]") {
  const SamplerKind kind = GENERATE(SamplerKind::kUniform, SamplerKind::kWindow,
                                    SamplerKind::kRecency, SamplerKind::kInverseFrequency);
  const int split = GENERATE(0, 1, 17, 40);
  // The trainer's pattern: history grows, the oldest records are evicted (enough of them,
  // by call 25, for the inverse-frequency sampler to compact its arrays).
  auto call = [](HistorySampler& s, int i) { return SampleValues(s, 200 * i, 3000 + 220 * i, 32); };
  auto original = Make(kind, 2024);
  std::vector<std::vector<uint64_t>> uninterrupted;
  for (int i = 0; i < 60; ++i) uninterrupted.push_back(call(*original, i));

  auto first_life = Make(kind, 2024);
  for (int i = 0; i < split; ++i) call(*first_life, i);
  const std::string state = first_life->SerializeState();
  // Another seed: everything must come from the state.
  auto second_life = Make(kind, 999);
  REQUIRE(second_life->RestoreState(state).ok());
  CHECK(second_life->SerializeState() == state);
  for (int i = split; i < 60; ++i) {
    INFO("kind " << SamplerKindName(kind) << " split " << split << " call " << i);
    REQUIRE(call(*second_life, i) == uninterrupted[i]);
  }
  CHECK(second_life->SerializeState() == original->SerializeState());
}

TEST_CASE("corrupt sampler state is rejected and leaves the sampler unchanged", "[training]") {
  const SamplerKind kind = GENERATE(SamplerKind::kUniform, SamplerKind::kWindow,
                                    SamplerKind::kRecency, SamplerKind::kInverseFrequency);
  auto sampler = Make(kind, 77), twin = Make(kind, 77);
  for (int i = 0; i < 5; ++i) {
    SampleValues(*sampler, i, 300 + i, 20);
    SampleValues(*twin, i, 300 + i, 20);
  }
  const std::string good = sampler->SerializeState();
  auto expect = [&](std::string_view bytes, ErrorCode code) {
    const Status st = sampler->RestoreState(bytes);
    CHECK(st.code() == code);
  };

  SECTION("truncated at every length") {
    for (size_t len = 0; len < good.size(); ++len) expect(good.substr(0, len), ErrorCode::kCorrupt);
  }
  SECTION("a flipped bit anywhere") {
    for (size_t i = 0; i < good.size(); i += 3) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
      expect(bad, ErrorCode::kCorrupt);
    }
  }
  SECTION("garbage and empty input") {
    expect("", ErrorCode::kCorrupt);
    expect("not a sampler state at all, just text", ErrorCode::kCorrupt);
    expect(good + "x", ErrorCode::kCorrupt);
  }
  SECTION("a checksum-valid state with impossible contents") {
    // Cut the body short, or zero the RNG: the checksum passes, the contents must not.
    for (size_t len = 9; len < good.size(); len += 5) {
      const Status st = sampler->RestoreState(Reseal(good.substr(0, len - 8) + "01234567"));
      CHECK_FALSE(st.ok());
    }
    // Layout: magic (4), version, kind, the RNG text's length (a 2-byte varint), the text.
    std::string zero_rng = good;
    const size_t rng_len = (static_cast<uint8_t>(good[6]) & 0x7f) |
                           (static_cast<size_t>(static_cast<uint8_t>(good[7])) << 7);
    REQUIRE(8 + rng_len + 8 <= good.size());
    for (size_t i = 8; i < 8 + rng_len; ++i) {
      if (zero_rng[i] >= '1' && zero_rng[i] <= '9') zero_rng[i] = '0';
    }
    CHECK(sampler->RestoreState(Reseal(zero_rng)).code() == ErrorCode::kCorrupt);
  }
  SECTION("random checksum-valid mutations never crash") {
    std::mt19937_64 rng(5);
    for (int trial = 0; trial < 300; ++trial) {
      std::string bad = good;
      for (int k = 0; k < 3; ++k) {
        bad[UniformBelow(rng, bad.size() - 8)] = static_cast<char>(UniformBelow(rng, 256));
      }
      if (sampler->RestoreState(Reseal(bad)).ok()) {
        // Whatever it accepted must still sample correctly.
        auto s = SampleValues(*sampler, 10, 400, 20);
        CHECK(std::set<uint64_t>(s.begin(), s.end()).size() == s.size());
        REQUIRE(sampler->RestoreState(good).ok());
      }
    }
  }
  SECTION("another kind's state") {
    const SamplerKind other =
        kind == SamplerKind::kUniform ? SamplerKind::kRecency : SamplerKind::kUniform;
    expect(Make(other)->SerializeState(), ErrorCode::kInvalidArgument);
  }
  // Failed restores changed nothing.
  CHECK(SampleValues(*sampler, 7, 320, 20) == SampleValues(*twin, 7, 320, 20));
}

}  // namespace streamtrain::training
