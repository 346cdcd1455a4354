// FenwickTree: prefix sums and weighted search over integer weights in O(log N).
//
// Weights are unsigned integers rather than doubles on purpose: integer sums are exact, so
// the tree never drifts however many updates it takes, needs no periodic rebuild, and is a
// pure function of its leaves. That is what lets a sampler restored from a checkpoint (tree
// rebuilt from counts) draw exactly what the uninterrupted one (tree built by updates) would.
// Callers keep the total below 2^64.
#pragma once

#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace streamtrain::training::internal {

class FenwickTree {
 public:
  size_t size() const { return tree_.size() - 1; }

  // Replaces the contents with `weights`, O(N).
  void Assign(const std::vector<uint64_t>& weights) {
    tree_.assign(weights.size() + 1, 0);
    for (size_t i = 1; i <= weights.size(); ++i) {
      tree_[i] += weights[i - 1];
      const size_t parent = i + (i & (~i + 1));
      if (parent <= weights.size()) tree_[parent] += tree_[i];
    }
  }

  // Appends one weight, O(log N): node i covers (i - lowbit(i), i].
  void PushBack(uint64_t weight) {
    const size_t i = tree_.size();
    const size_t low = i & (~i + 1);
    tree_.push_back(weight + Prefix(i - 1) - Prefix(i - low));
  }

  // Adds `delta` (mod 2^64, so a negative change is its two's complement) to weight i.
  void Add(size_t index, uint64_t delta) {
    for (size_t i = index + 1; i < tree_.size(); i += i & (~i + 1)) tree_[i] += delta;
  }

  // Sum of weights [0, n).
  uint64_t Prefix(size_t n) const {
    uint64_t sum = 0;
    for (size_t i = n; i > 0; i -= i & (~i + 1)) sum += tree_[i];
    return sum;
  }

  // The smallest index i with Prefix(i + 1) > target, for target < Prefix(size()). Its
  // weight is positive, which is what keeps zero-weight records from ever being drawn.
  size_t Find(uint64_t target) const {
    assert(target < Prefix(size()));
    size_t pos = 0;
    for (size_t step = std::bit_floor(size()); step > 0; step >>= 1) {
      if (pos + step <= size() && tree_[pos + step] <= target) {
        pos += step;
        target -= tree_[pos];
      }
    }
    return pos;
  }

 private:
  std::vector<uint64_t> tree_ = std::vector<uint64_t>(1, 0);  // 1-based; tree_[0] unused
};

}  // namespace streamtrain::training::internal
