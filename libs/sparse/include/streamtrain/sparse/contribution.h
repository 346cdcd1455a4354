// The DPU combined contribution (Qu, Liu, Guo and Thiele, "Deep Partial Updating", section
// 3.1): how much updating one coordinate of the served model towards the trained one is
// worth to the loss. Both `--sparsifier dpu` (every iteration's delta) and
// `--swap-deploy partial` (the mask of a retrained model's partial swap) rank coordinates
// by it, so it is defined once, here.
//
// For a served copy w and a trained copy w^f = w + delta (the pending change p = delta):
//   global_i = p_i^2                            the pending change, squared (the smoothness
//                                               term of the paper's upper bound)
//   local_i  = sum over steps t of -g_i(t) * step_i(t)
//                                               the loss decrease the optimisation path made
//                                               along coordinate i since it was last
//                                               deployed (a first-order path integral)
//   combined_i = 1/2 * global_i / sum_j global_j + 1/2 * local_i / sum_j |local_j|
// summed over the coordinates ranked together (one tensor, or all with --scope global).
//
// Why normalised: the raw sum 1/2 p^2 + local is dominated by whichever term is larger,
// and the two differ by orders of magnitude (with Adam each step adds about lr * |g| to
// |local| but moves p by about lr, so p^2 starts near lr^2), which made the raw score a
// near copy of one ranking or the other. Dividing each by its total makes both fractions
// of 1, weighted equally (lambda = 1/2, the normalisation of the authors' code,
// github.com/zqu1992/DPU). Sums of |local| rather than of local: the local term can be
// negative (the path went uphill along i), and a signed total can be near zero.
//
// What is computed is the score CombinedScore(p, local, w) = p^2 + w * local with
// w = LocalWeight = sum p^2 / sum |local|: combined times 2 * sum p^2, so it ranks the same,
// but it is one multiply-add per coordinate in float (no division), which the selection scan
// evaluates on the fly. Scores from one call rank; those of different calls do not compare.
// The selection orders scores by their float bits mapped to 31 unsigned bits (one bit of
// precision fewer than a float; ties to the lower index), as its keys need.
// A deployed coordinate's local restarts at zero. Pure functions over flat vectors: no
// LibTorch, no state, thread-safe.
//
//   sparse::AccumulateLocalContribution(local, gradient, step);   // after every optimizer step
//   sparse::CombinedContribution(pending, local, score);          // before choosing the mask
//   totals[t] = sparse::AccumulateStep(...);  // or both fused, per tensor, for the selection
#pragma once

#include <cstddef>
#include <span>

namespace streamtrain::sparse {

// local[i] += -gradient[i] * step[i] for every i (all spans the same length): the gradient
// the optimizer used and the change it made to the parameters in that step.
void AccumulateLocalContribution(std::span<float> local, std::span<const float> gradient,
                                 std::span<const float> step);

// The same with step = after - before (the parameters after and before the step), so the
// step is never materialised.
void AccumulateLocalContribution(std::span<float> local, std::span<const float> gradient,
                                 std::span<const float> after, std::span<const float> before);

// The totals that normalise the two terms, over the coordinates ranked together.
struct ContributionSums {
  double pending_squares = 0;   // sum of p^2
  double local_magnitudes = 0;  // sum of |local|
};

// Adds n coordinates to `sums`, with p = minuend - subtrahend (subtrahend null: p = minuend).
// The one summation order every caller uses, so a fused and a reference ranking get the
// same weight bit for bit.
void AddContributionSums(const float* minuend, const float* subtrahend, const float* local,
                         size_t n, ContributionSums& sums);

// One tensor of one optimizer step for the dpu sparsifier, in one pass (all spans the same
// length; `residual` empty for --feedback shadow):
//   local[i] -= gradient[i] * (after[i] - before[i])
//   train:  residual[i] += after[i] - served[i], and p = residual[i]
//   shadow: p = after[i] - served[i]
// Returns the totals of p and the new local, exactly as AddContributionSums over them gives
// them, so the selection can take them instead of summing in a pass of its own.
ContributionSums AccumulateStep(std::span<float> local, std::span<float> residual,
                                std::span<const float> gradient, std::span<const float> after,
                                std::span<const float> before, std::span<const float> served);

// The weight w of the local term: sum p^2 / sum |local|; 1 when either is zero (then only
// one term ranks anything).
float LocalWeight(const ContributionSums& sums);

// The score of one coordinate (see above): p^2 + w * local, in this order, in float.
inline float CombinedScore(float pending, float local, float weight) {
  const float global_term = pending * pending;
  const float local_term = weight * local;
  return global_term + local_term;
}

// score[i] = CombinedScore(pending[i], local[i], w) with w from these spans' sums (all spans
// the same length): the reference the fused selection matches.
void CombinedContribution(std::span<const float> pending, std::span<const float> local,
                          std::span<float> score);

}  // namespace streamtrain::sparse
