// ShadowSelector: `--feedback shadow`. The trainer trains a dense copy; each iteration the
// served copy receives the k coordinates where the trained and served parameters differ
// most, set to the trained values. The difference itself is the error-feedback memory, so
// nothing is kept here.
//
// Call order: Create once; per iteration Select(trained, served, iteration), then the caller
// sets served[i] = value for each selected (i, value) (through the same apply code replicas
// use). The selection is the same as ErrorFeedbackSparsifier's with r = trained - served:
// exact k largest |trained - served|, ties to the lower index; random-k draws the same
// coordinates for the same seed and iteration. The dpu kind ranks by the DPU combined
// contribution of trained - served and the caller's local accumulator instead (see
// ErrorFeedbackSparsifier).
//
// Thread safety: none; one thread calls Select at a time (it reuses scratch buffers).
//
//   ST_ASSIGN_OR_RETURN(auto selector, ShadowSelector::Create(options, layout));
//   SparseUpdate update = selector->Select(trained, served, iteration);
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

class ShadowSelector {
 public:
  // InvalidArgument for bad options (naming the flag) or an overlapping layout.
  static Result<std::unique_ptr<ShadowSelector>> Create(const SparsifierOptions& options,
                                                        std::span<const TensorRange> layout);
  ~ShadowSelector();

  // The k largest |trained - served| at `iteration`, with values trained[i] (the new
  // served values). Both spans hold at least LayoutEnd(layout) floats; neither is modified.
  // `local`: the dpu kind's local contributions (as many floats; zeroed where selected);
  // the other kinds ignore it. `totals`: AccumulateStep's totals per layout tensor for
  // this call's pending change and local (empty: Select sums them in a pass of its own).
  SparseUpdate Select(std::span<const float> trained, std::span<const float> served,
                      uint64_t iteration, std::span<float> local = {},
                      std::span<const ContributionSums> totals = {});

  // Coordinates Select returns at `iteration` (warm-up included).
  uint64_t KAt(uint64_t iteration) const;

  const SparsifierOptions& options() const { return options_; }

 private:
  ShadowSelector(const SparsifierOptions& options, std::vector<TensorRange> layout);

  SparsifierOptions options_;
  std::vector<TensorRange> layout_;
  std::unique_ptr<internal::Selection> selection_;
};

}  // namespace streamtrain::sparse
