#include "streamtrain/sparse/contribution.h"

#include <cassert>

namespace streamtrain::sparse {

void AccumulateLocalContribution(std::span<float> local, std::span<const float> gradient,
                                 std::span<const float> step) {
  assert(gradient.size() == local.size() && step.size() == local.size());
  for (size_t i = 0; i < local.size(); ++i) local[i] -= gradient[i] * step[i];
}

void CombinedContribution(std::span<const float> pending, std::span<const float> local,
                          std::span<float> score) {
  assert(pending.size() == score.size() && local.size() == score.size());
  for (size_t i = 0; i < score.size(); ++i) {
    score[i] = 0.5f * pending[i] * pending[i] + local[i];
  }
}

}  // namespace streamtrain::sparse
