// PermuteLabelsSource: sudden concept drift over any RecordSource.
//
// Passes the inner source's records through unchanged until `start` records have been
// emitted; from then on every label is mapped through a fixed permutation of the classes.
// The features do not change, so a model that had learned the old concept is suddenly
// wrong on every class. The permutation is a random cycle (Sattolo's algorithm) drawn from
// `seed`: never the identity, and no class keeps its label. Not thread-safe.
//
//   auto drifting = PermuteLabelsSource::Create(std::move(source), {.start = 1000}).value();
//   // records 0..999 keep their labels; from record 1000 on, label l becomes permutation()[l]
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/dataset/record_source.h"

namespace streamtrain::dataset {

struct PermuteLabelsOptions {
  // Index (0-based, counting the records this source emits) of the first relabelled record.
  // Default: 0, every record.
  uint64_t start = 0;
  // Seed of the permutation. Default: 42.
  uint64_t seed = 42;
  // The permutation itself (new label of each old label), instead of one drawn from `seed`:
  // how a recurring drift restores an earlier concept. Must permute 0..classes-1.
  // Default: empty, drawn from `seed`.
  std::vector<int32_t> permutation;
};

class PermuteLabelsSource : public RecordSource {
 public:
  // kInvalidArgument when the inner source has fewer than 2 classes (nothing to permute) or
  // an explicit permutation is not one of its classes.
  static Result<std::unique_ptr<PermuteLabelsSource>> Create(std::unique_ptr<RecordSource> inner,
                                                             const PermuteLabelsOptions& options);

  std::optional<schema::Record> Next() override;
  schema::RecordSchema schema() const override { return inner_->schema(); }
  std::optional<uint64_t> size() const override { return inner_->size(); }
  // The inner description plus ", labels permuted from record N".
  std::string Describe() const override;

  // New label of each old label: permutation()[old].
  std::span<const int32_t> permutation() const { return permutation_; }

 private:
  PermuteLabelsSource(std::unique_ptr<RecordSource> inner, const PermuteLabelsOptions& options,
                      std::vector<int32_t> permutation);

  std::unique_ptr<RecordSource> inner_;
  PermuteLabelsOptions options_;
  std::vector<int32_t> permutation_;
  uint64_t emitted_ = 0;
};

}  // namespace streamtrain::dataset
