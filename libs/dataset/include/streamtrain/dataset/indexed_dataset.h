// IndexedDataset: a finite, in-memory dataset with random access by index.
//
// The datasets loaded from files (ImageDataset from IDX, TabularDataset from CSV) implement
// it so that IndexedSource can shuffle, skip and cut any of them the same way. Immutable
// after loading: const methods are safe to call from several threads.
//
//   const IndexedDataset& d = dataset;
//   for (size_t i = 0; i < d.size(); ++i) Use(d.At(i));
#pragma once

#include <cstddef>
#include <string>

#include "streamtrain/schema/record.h"

namespace streamtrain::dataset {

class IndexedDataset {
 public:
  virtual ~IndexedDataset() = default;

  // Number of records.
  virtual size_t size() const = 0;
  // Record i, i < size().
  virtual schema::Record At(size_t i) const = 0;
  // Input shape and class count of every record.
  virtual schema::RecordSchema schema() const = 0;
  // One line for logs, e.g. "fashion-mnist train (60000 records)".
  virtual std::string Describe() const = 0;
};

}  // namespace streamtrain::dataset
