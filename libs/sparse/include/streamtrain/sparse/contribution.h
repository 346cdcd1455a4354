// The DPU combined contribution (Qu, Liu, Guo and Thiele, "Deep Partial Updating", section
// 3.1): how much updating one coordinate of the served model towards the trained one is
// worth to the loss. Both `--sparsifier dpu` (every iteration's delta) and
// `--swap-deploy partial` (the mask of a retrained model's partial swap) rank coordinates
// by it, so it is defined once, here.
//
// For a served copy w and a trained copy w^f = w + delta:
//   global_i = 1/2 * delta_i^2                  the pending change, squared (the smoothness
//                                               term of the paper's upper bound)
//   local_i  = sum over steps t of -g_i(t) * step_i(t)
//                                               the loss decrease the optimisation path made
//                                               along coordinate i since it was last
//                                               deployed (a first-order path integral)
//   combined_i = global_i + local_i
// Coordinates with the largest combined contribution are deployed; the local accumulator of
// a deployed coordinate restarts at zero. Pure element-wise functions over flat vectors:
// no LibTorch, no state, thread-safe.
//
//   sparse::AccumulateLocalContribution(local, gradient, step);   // after every optimizer step
//   sparse::CombinedContribution(pending, local, score);          // before choosing the mask
#pragma once

#include <span>

namespace streamtrain::sparse {

// local[i] += -gradient[i] * step[i] for every i (all spans the same length): the gradient
// the optimizer used and the change it made to the parameters in that step.
void AccumulateLocalContribution(std::span<float> local, std::span<const float> gradient,
                                 std::span<const float> step);

// score[i] = 0.5 * pending[i]^2 + local[i] for every i (all spans the same length).
void CombinedContribution(std::span<const float> pending, std::span<const float> local,
                          std::span<float> score);

}  // namespace streamtrain::sparse
