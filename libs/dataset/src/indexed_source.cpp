#include "streamtrain/dataset/indexed_source.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "streamtrain/common/random.h"

namespace streamtrain::dataset {

IndexedSource::IndexedSource(std::unique_ptr<IndexedDataset> dataset,
                             const IndexedSourceOptions& options)
    : dataset_(std::move(dataset)), shuffle_seed_(options.shuffle_seed) {
  const uint64_t n = dataset_->size();
  if (shuffle_seed_) {
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), size_t{0});
    std::mt19937_64 rng(*shuffle_seed_);
    Shuffle(order_, rng);
  }
  begin_ = std::min(options.offset, n);
  end_ = options.limit ? begin_ + std::min(*options.limit, n - begin_) : n;
  position_ = begin_;
}

std::optional<schema::Record> IndexedSource::Next() {
  if (position_ >= end_) return std::nullopt;
  const uint64_t i = position_++;
  return dataset_->At(order_.empty() ? i : order_[i]);
}

std::string IndexedSource::Describe() const {
  std::string out = dataset_->Describe();
  if (shuffle_seed_) out += ", shuffled (seed " + std::to_string(*shuffle_seed_) + ")";
  if (begin_ != 0 || end_ != dataset_->size()) {
    out += ", records [" + std::to_string(begin_) + ", " + std::to_string(end_) + ")";
  }
  return out;
}

}  // namespace streamtrain::dataset
