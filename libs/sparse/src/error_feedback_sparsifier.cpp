#include "streamtrain/sparse/error_feedback_sparsifier.h"

#include <cassert>

#include "selection.h"

namespace streamtrain::sparse {

Result<std::unique_ptr<ErrorFeedbackSparsifier>> ErrorFeedbackSparsifier::Create(
    const SparsifierOptions& options, std::span<const TensorRange> layout) {
  ST_RETURN_IF_ERROR(ValidateSparsifierOptions(options));
  ST_RETURN_IF_ERROR(ValidateLayout(layout));
  return std::unique_ptr<ErrorFeedbackSparsifier>(
      new ErrorFeedbackSparsifier(options, {layout.begin(), layout.end()}));
}

ErrorFeedbackSparsifier::ErrorFeedbackSparsifier(const SparsifierOptions& options,
                                                 std::vector<TensorRange> layout)
    : options_(options),
      layout_(std::move(layout)),
      selection_(std::make_unique<internal::Selection>(options_, layout_)) {}

ErrorFeedbackSparsifier::~ErrorFeedbackSparsifier() = default;

uint64_t ErrorFeedbackSparsifier::KAt(uint64_t iteration) const {
  return selection_->KAt(iteration);
}

SparseUpdate ErrorFeedbackSparsifier::Select(std::span<float> update_in_residual_out,
                                             uint64_t iteration) {
  assert(update_in_residual_out.size() >= LayoutEnd(layout_));
  float* residual = update_in_residual_out.data();
  SparseUpdate update;
  selection_->Select(internal::ResidualValues{residual}, iteration, update);
  // The value moves from the residual to the update unchanged: no arithmetic, no loss.
  for (TensorUpdate& t : update.tensors) {
    t.values.resize(t.indices.size());
    for (size_t j = 0; j < t.indices.size(); ++j) {
      t.values[j] = residual[t.indices[j]];
      residual[t.indices[j]] = 0.0f;
    }
  }
  return update;
}

}  // namespace streamtrain::sparse
