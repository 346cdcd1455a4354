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
                                             uint64_t iteration, std::span<float> local,
                                             std::span<const ContributionSums> totals) {
  assert(update_in_residual_out.size() >= LayoutEnd(layout_));
  float* residual = update_in_residual_out.data();
  SparseUpdate update;
  if (options_.kind == SparsifierKind::kDpu) {
    assert(local.size() >= LayoutEnd(layout_));
    assert(totals.empty() || totals.size() == layout_.size());
    selection_->Select(
        internal::ContributionValues<internal::ResidualValues>{
            .pending = {residual},
            .local = local.data(),
            .totals = totals.empty() ? nullptr : totals.data()},
        iteration, update);
    return update;
  }
  // Takes the selected values out of the residual (ResidualValues::Take).
  selection_->Select(internal::ResidualValues{residual}, iteration, update);
  return update;
}

}  // namespace streamtrain::sparse
