#include "streamtrain/dataset/permute_labels_source.h"

#include <algorithm>
#include <cassert>
#include <numeric>
#include <random>
#include <utility>

#include "streamtrain/common/random.h"

namespace streamtrain::dataset {

Result<std::unique_ptr<PermuteLabelsSource>> PermuteLabelsSource::Create(
    std::unique_ptr<RecordSource> inner, const PermuteLabelsOptions& options) {
  const int32_t classes = inner->schema().num_classes;
  if (classes < 2) {
    return InvalidArgument("permute-labels needs at least 2 classes; " + inner->Describe() +
                           " has " + std::to_string(classes));
  }
  if (!options.permutation.empty()) {
    std::vector<int32_t> sorted = options.permutation;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int32_t> identity(static_cast<size_t>(classes));
    std::iota(identity.begin(), identity.end(), 0);
    if (sorted != identity) {
      return InvalidArgument("permute-labels: the given permutation does not permute the " +
                             std::to_string(classes) + " classes of " + inner->Describe());
    }
    return std::unique_ptr<PermuteLabelsSource>(
        new PermuteLabelsSource(std::move(inner), options, options.permutation));
  }
  // Sattolo's variant of Fisher-Yates (j < i, never j == i) yields a single cycle through
  // all classes, so every label changes: the drift hits every class.
  std::vector<int32_t> permutation(static_cast<size_t>(classes));
  std::iota(permutation.begin(), permutation.end(), 0);
  std::mt19937_64 rng(options.seed);
  for (size_t i = permutation.size() - 1; i > 0; --i) {
    std::swap(permutation[i], permutation[UniformBelow(rng, i)]);
  }
  return std::unique_ptr<PermuteLabelsSource>(
      new PermuteLabelsSource(std::move(inner), options, std::move(permutation)));
}

PermuteLabelsSource::PermuteLabelsSource(std::unique_ptr<RecordSource> inner,
                                         const PermuteLabelsOptions& options,
                                         std::vector<int32_t> permutation)
    : inner_(std::move(inner)), options_(options), permutation_(std::move(permutation)) {}

std::optional<schema::Record> PermuteLabelsSource::Next() {
  std::optional<schema::Record> record = inner_->Next();
  if (!record) return record;
  assert(record->label >= 0 && static_cast<size_t>(record->label) < permutation_.size());
  if (emitted_++ >= options_.start) {
    record->label = permutation_[static_cast<size_t>(record->label)];
  }
  return record;
}

std::string PermuteLabelsSource::Describe() const {
  if (!options_.permutation.empty()) {
    return inner_->Describe() + ", labels restored from record " + std::to_string(options_.start);
  }
  return inner_->Describe() + ", labels permuted from record " + std::to_string(options_.start) +
         " (seed " + std::to_string(options_.seed) + ")";
}

}  // namespace streamtrain::dataset
