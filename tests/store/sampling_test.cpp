#include "streamtrain/store/sampling.h"

#include <catch2/catch.hpp>
#include <set>

namespace streamtrain::store {

TEST_CASE("samples are distinct and inside the range", "[store][sampling]") {
  std::mt19937_64 rng(11);
  const uint64_t lo = GENERATE(0, 1000);
  const uint64_t span = GENERATE(1, 10, 120, 100000);
  const size_t n = GENERATE(0, 1, 120);
  auto sample = SampleDistinct(lo, lo + span, n, rng);
  CHECK(sample.size() == std::min<uint64_t>(n, span));
  std::set<uint64_t> unique(sample.begin(), sample.end());
  CHECK(unique.size() == sample.size());
  for (uint64_t v : sample) {
    CHECK(v >= lo);
    CHECK(v < lo + span);
  }
}

TEST_CASE("uniform sampling passes a chi-square test at a fixed seed", "[store][sampling]") {
  // 20,000 draws of 10 distinct values from [0, 100): each value is expected 2,000 times.
  std::mt19937_64 rng(20261123);
  constexpr int kRange = 100, kPerDraw = 10, kDraws = 20000;
  std::vector<double> counts(kRange, 0);
  for (int d = 0; d < kDraws; ++d) {
    for (uint64_t v : SampleDistinct(0, kRange, kPerDraw, rng)) counts[v] += 1;
  }
  const double expected = static_cast<double>(kDraws) * kPerDraw / kRange;
  double chi2 = 0;
  for (double c : counts) chi2 += (c - expected) * (c - expected) / expected;
  // Critical value of chi-square with 99 degrees of freedom at p = 0.001.
  CHECK(chi2 < 148.23);
  INFO("chi2 = " << chi2);

  // The order within a sample is uniform too: each value is equally likely first.
  std::vector<double> first(kRange, 0);
  for (int d = 0; d < kDraws; ++d) first[SampleDistinct(0, kRange, kPerDraw, rng)[0]] += 1;
  const double expected_first = static_cast<double>(kDraws) / kRange;
  double chi2_first = 0;
  for (double c : first) chi2_first += (c - expected_first) * (c - expected_first) / expected_first;
  CHECK(chi2_first < 148.23);
}

TEST_CASE("sampling is reproducible for a seed", "[store][sampling]") {
  std::mt19937_64 a(3), b(3);
  CHECK(SampleDistinct(0, 1 << 20, 120, a) == SampleDistinct(0, 1 << 20, 120, b));
}

}  // namespace streamtrain::store
