// IndexedSource: a RecordSource over a finite IndexedDataset, optionally shuffled and cut.
//
// The order is the dataset's, or a seeded Fisher-Yates shuffle of it (the same order on
// every platform, see common/random.h); then the first `offset` records of that order are
// skipped and at most `limit` are emitted. Not thread-safe: one thread calls Next().
//
//   IndexedSource source(std::make_unique<ImageDataset>(std::move(train)),
//                        {.offset = 1000, .limit = 500, .shuffle_seed = 7});
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streamtrain/dataset/indexed_dataset.h"
#include "streamtrain/dataset/record_source.h"

namespace streamtrain::dataset {

struct IndexedSourceOptions {
  // Records of the (shuffled) order to skip. Default: 0.
  uint64_t offset = 0;
  // Most records to emit after the offset; nullopt = all the rest. Default: nullopt.
  std::optional<uint64_t> limit;
  // Seed of the shuffle; nullopt keeps the dataset's order. Default: nullopt.
  std::optional<uint64_t> shuffle_seed;
};

class IndexedSource : public RecordSource {
 public:
  IndexedSource(std::unique_ptr<IndexedDataset> dataset, const IndexedSourceOptions& options);

  std::optional<schema::Record> Next() override;
  schema::RecordSchema schema() const override { return dataset_->schema(); }
  // Records still to come.
  std::optional<uint64_t> size() const override { return end_ - position_; }
  // The dataset's description plus the shuffle and cut, e.g.
  // "fashion-mnist train (60000 records), shuffled (seed 7), records [1000, 1500)".
  std::string Describe() const override;

  const IndexedDataset& dataset() const { return *dataset_; }

 private:
  std::unique_ptr<IndexedDataset> dataset_;
  std::optional<uint64_t> shuffle_seed_;
  std::vector<size_t> order_;  // empty when not shuffled: position i is record i
  uint64_t begin_;
  uint64_t end_;
  uint64_t position_;
};

}  // namespace streamtrain::dataset
