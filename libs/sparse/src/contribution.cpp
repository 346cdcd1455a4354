#include "streamtrain/sparse/contribution.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

// The scan path switch: the sums take the AVX2 path exactly when the scan does.
#include "candidate_scan.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

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

namespace {

// Eight partial sums per term, element j of every block of eight into lane j, combined in
// a fixed tree: the order of additions is fixed by this code, so the AVX2 version (two
// 4-wide double vectors per term, no FMA) and the portable one give the same sums bit for
// bit, and the selection depends only on the data. Doubles: millions of float squares
// summed in float would lose the small ones.
constexpr size_t kLanes = 8;

template <bool kDifference>
size_t AddSumsPortable(const float* minuend, const float* subtrahend, const float* local, size_t i,
                       size_t n, double* squares, double* magnitudes) {
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t lane = 0; lane < kLanes; ++lane) {
      float pending = minuend[i + lane];
      if constexpr (kDifference) pending -= subtrahend[i + lane];
      const double p = pending;
      squares[lane] += p * p;
      magnitudes[lane] += std::fabs(double{local[i + lane]});
    }
  }
  return i;
}

#if defined(__x86_64__) || defined(__i386__)
// The same lanes: the low four floats of a block into the first double vector, the high
// four into the second.
template <bool kDifference>
__attribute__((target("avx2"))) size_t AddSumsAvx2(const float* minuend, const float* subtrahend,
                                                   const float* local, size_t i, size_t n,
                                                   double* squares, double* magnitudes) {
  __m256d sq_low = _mm256_loadu_pd(squares), sq_high = _mm256_loadu_pd(squares + 4);
  __m256d mag_low = _mm256_loadu_pd(magnitudes), mag_high = _mm256_loadu_pd(magnitudes + 4);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (; i + kLanes <= n; i += kLanes) {
    __m256 p = _mm256_loadu_ps(minuend + i);
    if constexpr (kDifference) p = _mm256_sub_ps(p, _mm256_loadu_ps(subtrahend + i));
    const __m256d p_low = _mm256_cvtps_pd(_mm256_castps256_ps128(p));
    const __m256d p_high = _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1));
    sq_low = _mm256_add_pd(sq_low, _mm256_mul_pd(p_low, p_low));
    sq_high = _mm256_add_pd(sq_high, _mm256_mul_pd(p_high, p_high));
    const __m256 l = _mm256_andnot_ps(sign, _mm256_loadu_ps(local + i));
    mag_low = _mm256_add_pd(mag_low, _mm256_cvtps_pd(_mm256_castps256_ps128(l)));
    mag_high = _mm256_add_pd(mag_high, _mm256_cvtps_pd(_mm256_extractf128_ps(l, 1)));
  }
  _mm256_storeu_pd(squares, sq_low);
  _mm256_storeu_pd(squares + 4, sq_high);
  _mm256_storeu_pd(magnitudes, mag_low);
  _mm256_storeu_pd(magnitudes + 4, mag_high);
  return i;
}
#endif

template <bool kDifference>
void AddSums(const float* minuend, const float* subtrahend, const float* local, size_t n,
             double* squares, double* magnitudes) {
  size_t i = 0;
#if defined(__x86_64__) || defined(__i386__)
  if (internal::ActiveScanPath() == internal::ScanPath::kAvx2) {
    i = AddSumsAvx2<kDifference>(minuend, subtrahend, local, i, n, squares, magnitudes);
  }
#endif
  i = AddSumsPortable<kDifference>(minuend, subtrahend, local, i, n, squares, magnitudes);
  for (size_t lane = 0; i < n; ++i, ++lane) {
    float pending = minuend[i];
    if constexpr (kDifference) pending -= subtrahend[i];
    const double p = pending;
    squares[lane] += p * p;
    magnitudes[lane] += std::fabs(double{local[i]});
  }
}

double Combine(const double* lanes) {
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
         ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

}  // namespace

void AddContributionSums(const float* minuend, const float* subtrahend, const float* local,
                         size_t n, ContributionSums& sums) {
  double squares[kLanes] = {};
  double magnitudes[kLanes] = {};
  if (subtrahend != nullptr) {
    AddSums<true>(minuend, subtrahend, local, n, squares, magnitudes);
  } else {
    AddSums<false>(minuend, nullptr, local, n, squares, magnitudes);
  }
  sums.pending_squares += Combine(squares);
  sums.local_magnitudes += Combine(magnitudes);
}

ContributionSums AccumulateStep(std::span<float> local, std::span<float> residual,
                                std::span<const float> gradient, std::span<const float> after,
                                std::span<const float> before, std::span<const float> served) {
  const size_t n = local.size();
  assert(gradient.size() == n && after.size() == n && before.size() == n && served.size() == n);
  assert(residual.empty() || residual.size() == n);
  double squares[kLanes] = {};
  double magnitudes[kLanes] = {};
  // The lanes of AddSums: element j of every block of eight into lane j, the tail into the
  // first lanes, so the totals are bit-identical to a separate AddContributionSums.
  auto one = [&](size_t i, size_t lane) {
    const float l = local[i] - gradient[i] * (after[i] - before[i]);
    local[i] = l;
    float pending = after[i] - served[i];
    if (!residual.empty()) pending = residual[i] += pending;
    const double p = pending;
    squares[lane] += p * p;
    magnitudes[lane] += std::fabs(double{l});
  };
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t lane = 0; lane < kLanes; ++lane) one(i + lane, lane);
  }
  for (size_t lane = 0; i < n; ++i, ++lane) one(i, lane);
  ContributionSums sums;
  sums.pending_squares = Combine(squares);
  sums.local_magnitudes = Combine(magnitudes);
  return sums;
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
