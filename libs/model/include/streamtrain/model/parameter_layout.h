// ParameterLayout: how a model's parameter tensors map onto one flat float vector.
//
// Tensors are laid out back to back in the model's registration order (for LeNet-5:
// conv1.weight, conv1.bias, conv2.weight, ...), each in row-major order. Deltas,
// snapshots and digests address parameters by their index in this flat vector, so the
// fingerprint (a hash of names and shapes) is what a replica compares before it applies
// anything. Buffers (BatchNorm running statistics) are not parameters and are not in it.
// Immutable after construction; safe to share between threads.
//
//   const ParameterLayout& layout = model.layout();
//   for (const TensorSlice& t : layout.tensors()) Print(t.name, t.offset, t.size);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace streamtrain::model {

// One parameter tensor's place in the flat vector.
struct TensorSlice {
  std::string name;            // e.g. "conv1.weight"
  std::vector<int64_t> shape;  // e.g. {6, 1, 5, 5}
  uint64_t offset = 0;         // index of its first element in the flat vector
  uint64_t size = 0;           // number of elements, the product of shape

  bool operator==(const TensorSlice&) const = default;
};

class ParameterLayout {
 public:
  ParameterLayout() = default;
  // Lays out (name, shape) pairs back to back, in the order given.
  explicit ParameterLayout(
      const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors);

  const std::vector<TensorSlice>& tensors() const { return tensors_; }
  // Total number of parameters, the length of the flat vector.
  uint64_t parameter_count() const { return parameter_count_; }
  // 64-bit FNV-1a over, per tensor in order: the name's bytes, a 0 byte, the rank and each
  // dimension as 8-byte little-endian integers. Stable across processes and builds.
  uint64_t fingerprint() const { return fingerprint_; }
  // Position in tensors() of the tensor holding flat index `index` (< parameter_count()).
  size_t TensorIndexOf(uint64_t index) const;
  // "8 tensors, 61706 parameters, fingerprint 0123456789abcdef".
  std::string Describe() const;

  bool operator==(const ParameterLayout&) const = default;

 private:
  std::vector<TensorSlice> tensors_;
  uint64_t parameter_count_ = 0;
  uint64_t fingerprint_ = 0xcbf29ce484222325;  // FNV-1a of nothing, as for an empty list
};

}  // namespace streamtrain::model
