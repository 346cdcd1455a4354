#include "streamtrain/sparse/contribution.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

namespace streamtrain::sparse {

void AccumulateLocalContribution(std::span<float> local, std::span<const float> gradient,
                                 std::span<const float> step) {
  assert(gradient.size() == local.size() && step.size() == local.size());
  for (size_t i = 0; i < local.size(); ++i) local[i] -= gradient[i] * step[i];
}

void AccumulateLocalContribution(std::span<float> local, std::span<const float> gradient,
                                 std::span<const float> after, std::span<const float> before) {
  assert(gradient.size() == local.size() && after.size() == local.size() &&
         before.size() == local.size());
  for (size_t i = 0; i < local.size(); ++i) local[i] -= gradient[i] * (after[i] - before[i]);
}

void AddContributionSums(const float* minuend, const float* subtrahend, const float* local,
                         size_t n, ContributionSums& sums) {
  // Four partial sums per term: a single running sum is a chain of dependent additions
  // (latency-bound); four let the compiler keep several in flight. Doubles: millions of
  // float squares summed in float lose the small ones.
  double squares[4] = {0, 0, 0, 0};
  double magnitudes[4] = {0, 0, 0, 0};
  size_t i = 0;
  auto pending = [&](size_t j) {
    return subtrahend != nullptr ? minuend[j] - subtrahend[j] : minuend[j];
  };
  for (; i + 4 <= n; i += 4) {
    for (size_t lane = 0; lane < 4; ++lane) {
      const double p = pending(i + lane);
      squares[lane] += p * p;
      magnitudes[lane] += std::fabs(double{local[i + lane]});
    }
  }
  for (; i < n; ++i) {
    const double p = pending(i);
    squares[0] += p * p;
    magnitudes[0] += std::fabs(double{local[i]});
  }
  sums.pending_squares += (squares[0] + squares[1]) + (squares[2] + squares[3]);
  sums.local_magnitudes += (magnitudes[0] + magnitudes[1]) + (magnitudes[2] + magnitudes[3]);
}

float LocalWeight(const ContributionSums& sums) {
  if (!(sums.pending_squares > 0) || !(sums.local_magnitudes > 0)) return 1.0f;
  // Capped so that w * 0 stays 0 (an infinite weight would make it NaN).
  return static_cast<float>(std::min(sums.pending_squares / sums.local_magnitudes,
                                     double{std::numeric_limits<float>::max()}));
}

void CombinedContribution(std::span<const float> pending, std::span<const float> local,
                          std::span<float> score) {
  assert(pending.size() == score.size() && local.size() == score.size());
  ContributionSums sums;
  AddContributionSums(pending.data(), nullptr, local.data(), pending.size(), sums);
  const float weight = LocalWeight(sums);
  for (size_t i = 0; i < score.size(); ++i) score[i] = CombinedScore(pending[i], local[i], weight);
}

}  // namespace streamtrain::sparse
