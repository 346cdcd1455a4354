#include "streamtrain/sparse/shadow_selector.h"

#include <cassert>

#include "selection.h"

namespace streamtrain::sparse {

Result<std::unique_ptr<ShadowSelector>> ShadowSelector::Create(
    const SparsifierOptions& options, std::span<const TensorRange> layout) {
  ST_RETURN_IF_ERROR(ValidateSparsifierOptions(options));
  ST_RETURN_IF_ERROR(ValidateLayout(layout));
  return std::unique_ptr<ShadowSelector>(
      new ShadowSelector(options, {layout.begin(), layout.end()}));
}

ShadowSelector::ShadowSelector(const SparsifierOptions& options, std::vector<TensorRange> layout)
    : options_(options),
      layout_(std::move(layout)),
      selection_(std::make_unique<internal::Selection>(options_, layout_)) {}

ShadowSelector::~ShadowSelector() = default;

uint64_t ShadowSelector::KAt(uint64_t iteration) const { return selection_->KAt(iteration); }

SparseUpdate ShadowSelector::Select(std::span<const float> trained, std::span<const float> served,
                                    uint64_t iteration, std::span<float> local,
                                    std::span<const ContributionSums> totals) {
  assert(trained.size() >= LayoutEnd(layout_) && served.size() >= LayoutEnd(layout_));
  const float* t = trained.data();
  const float* s = served.data();
  SparseUpdate update;
  if (options_.kind == SparsifierKind::kDpu) {
    assert(local.size() >= LayoutEnd(layout_));
    assert(totals.empty() || totals.size() == layout_.size());
    selection_->Select(
        internal::ContributionValues<internal::DifferenceValues>{
            .pending = {t, s},
            .local = local.data(),
            .totals = totals.empty() ? nullptr : totals.data()},
        iteration, update);
    return update;
  }
  // Values are the trained ones (DifferenceValues::Take).
  selection_->Select(internal::DifferenceValues{t, s}, iteration, update);
  return update;
}

}  // namespace streamtrain::sparse
