// ErrorFeedbackSparsifier: `--feedback train`, thesis Algorithm 3 moved after the optimizer
// step, so that exactly k coordinates of the served model change per iteration whatever
// the optimizer.
//
// The caller owns the error-feedback buffer r (one float per parameter, zero at the start,
// checkpointed with the model). Each iteration, after the optimizer produced the dense
// update u (new minus old parameters, which the caller does not apply):
//   1. r += u                          (the caller; best fused into computing u)
//   2. update = Select(r, iteration)   picks the k largest |r[i]| (per the options), returns
//                                      their indices and values r[i], and sets r[i] = 0 there;
//                                      every other r[i] is left bit-for-bit as it was
//   3. params[i] += value for each selected (i, value): only those k coordinates change.
// Nothing is lost: a selected r[i] moves into the update bit-for-bit and an unselected one
// is untouched, so per coordinate the emitted values plus the final r account for every
// update (== in float whenever the caller's own sums are exact, as the tests check).
//
// The dpu kind ranks by the DPU combined contribution (contribution.h) instead of |r[i]|:
// the caller also owns the local-contribution accumulator (one float per parameter, zero at
// the start, checkpointed), adds each optimizer step to it (AccumulateLocalContribution)
// and passes it to Select, which zeroes it at the selected coordinates.
//
// Cost: the threshold kind reads r once (plus a sample of n/256 values per tensor, 512 to
// 16,384) and writes only the k selected entries; the read is 8-wide AVX2 where the CPU has
// it, with the same result as elsewhere. Top-k reads r twice (a histogram, then the collect).
// Results depend only on the data, the options (seed) and the iteration, never on timing.
//
// Thread safety: none; one thread calls Select at a time (it reuses scratch buffers).
//
//   ST_ASSIGN_OR_RETURN(auto sparsifier, ErrorFeedbackSparsifier::Create(options, layout));
//   SparseUpdate update = sparsifier->Select(residual, iteration);
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/sparse/contribution.h"
#include "streamtrain/sparse/sparse_update.h"
#include "streamtrain/sparse/sparsifier_options.h"

namespace streamtrain::sparse {

namespace internal {
class Selection;
}  // namespace internal

class ErrorFeedbackSparsifier {
 public:
  // InvalidArgument for bad options (naming the flag) or an overlapping layout.
  static Result<std::unique_ptr<ErrorFeedbackSparsifier>> Create(
      const SparsifierOptions& options, std::span<const TensorRange> layout);
  ~ErrorFeedbackSparsifier();

  // Selects from `update_in_residual_out` (r + u on entry, the new residual on exit; at
  // least LayoutEnd(layout) floats) the coordinates to apply at `iteration` (0-based).
  // `local`: the dpu kind's local contributions (as many floats; zeroed where selected);
  // the other kinds ignore it. `totals`: AccumulateStep's totals per layout tensor for
  // this call's pending change and local (empty: Select sums them in a pass of its own).
  SparseUpdate Select(std::span<float> update_in_residual_out, uint64_t iteration,
                      std::span<float> local = {}, std::span<const ContributionSums> totals = {});

  // Coordinates Select returns at `iteration` (warm-up included).
  uint64_t KAt(uint64_t iteration) const;

  const SparsifierOptions& options() const { return options_; }

 private:
  ErrorFeedbackSparsifier(const SparsifierOptions& options, std::vector<TensorRange> layout);

  SparsifierOptions options_;
  std::vector<TensorRange> layout_;
  std::unique_ptr<internal::Selection> selection_;
};

}  // namespace streamtrain::sparse
