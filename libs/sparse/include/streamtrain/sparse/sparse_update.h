// TensorRange and SparseUpdate: the input layout and the output of every selector.
//
// A layout is a list of tensors, each a contiguous (offset, size) slice of one flat parameter
// vector (model::ParameterLayout's slices map onto it one to one). A SparseUpdate holds, per
// tensor of the layout and in its order, the selected flat indices (ascending, into the whole
// vector) and their values. Plain values, no shared state.
//
//   std::vector<sparse::TensorRange> layout = {{.offset = 0, .size = 784 * 64}, {...}};
//   for (const auto& t : update.tensors) ApplyAt(params, t.indices, t.values);
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::sparse {

// One tensor: elements [offset, offset + size) of the flat parameter vector.
struct TensorRange {
  uint64_t offset = 0;
  uint64_t size = 0;
};

// The selected coordinates of one tensor.
struct TensorUpdate {
  std::vector<uint64_t> indices;  // flat indices into the whole vector, strictly ascending
  std::vector<float> values;      // values[i] belongs to indices[i]
};

struct SparseUpdate {
  std::vector<TensorUpdate> tensors;  // one per TensorRange of the layout, same order
  bool dense = false;                 // every coordinate of every tensor is selected

  // Total selected coordinates (the k of this iteration).
  uint64_t size() const;
};

// Ok when the ranges do not overlap and end below 2^32 (indices are ranked in 32 bits).
Status ValidateLayout(std::span<const TensorRange> layout);

// One past the last element any range covers: the flat vector must be at least this long.
uint64_t LayoutEnd(std::span<const TensorRange> layout);

}  // namespace streamtrain::sparse
