#include "streamtrain/sparse/sparse_update.h"

#include <algorithm>
#include <string>

namespace streamtrain::sparse {

uint64_t SparseUpdate::size() const {
  uint64_t n = 0;
  for (const TensorUpdate& t : tensors) n += t.indices.size();
  return n;
}

uint64_t LayoutEnd(std::span<const TensorRange> layout) {
  uint64_t end = 0;
  for (const TensorRange& r : layout) end = std::max(end, r.offset + r.size);
  return end;
}

Status ValidateLayout(std::span<const TensorRange> layout) {
  // Rank keys hold the flat index in 32 bits (see selection.h).
  constexpr uint64_t kMaxEnd = uint64_t{1} << 32;
  std::vector<TensorRange> sorted(layout.begin(), layout.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const TensorRange& a, const TensorRange& b) { return a.offset < b.offset; });
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i].size > kMaxEnd || sorted[i].offset > kMaxEnd - sorted[i].size) {
      return InvalidArgument("tensor at offset " + std::to_string(sorted[i].offset) +
                             " ends past 2^32 parameters");
    }
    if (i > 0 && sorted[i - 1].offset + sorted[i - 1].size > sorted[i].offset) {
      return InvalidArgument("tensors at offsets " + std::to_string(sorted[i - 1].offset) +
                             " and " + std::to_string(sorted[i].offset) + " overlap");
    }
  }
  return Status::Ok();
}

}  // namespace streamtrain::sparse
