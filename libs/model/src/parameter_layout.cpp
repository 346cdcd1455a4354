#include "streamtrain/model/parameter_layout.h"

#include <algorithm>
#include <cassert>
#include <cstdio>

namespace streamtrain::model {
namespace {

constexpr uint64_t kFnvPrime = 0x100000001b3;

void HashByte(uint64_t& hash, uint8_t byte) {
  hash ^= byte;
  hash *= kFnvPrime;
}

// Little-endian whatever the host, so the fingerprint means the same on every machine.
void HashInt(uint64_t& hash, uint64_t value) {
  for (int i = 0; i < 8; ++i) HashByte(hash, static_cast<uint8_t>(value >> (8 * i)));
}

}  // namespace

ParameterLayout::ParameterLayout(
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
  tensors_.reserve(tensors.size());
  for (const auto& [name, shape] : tensors) {
    uint64_t size = 1;
    for (int64_t dim : shape) size *= static_cast<uint64_t>(dim);
    tensors_.push_back({name, shape, parameter_count_, size});
    parameter_count_ += size;
    for (char c : name) HashByte(fingerprint_, static_cast<uint8_t>(c));
    HashByte(fingerprint_, 0);
    HashInt(fingerprint_, shape.size());
    for (int64_t dim : shape) HashInt(fingerprint_, static_cast<uint64_t>(dim));
  }
}

size_t ParameterLayout::TensorIndexOf(uint64_t index) const {
  assert(index < parameter_count_);
  // The first tensor that starts after `index`, minus one, holds it.
  auto it = std::upper_bound(tensors_.begin(), tensors_.end(), index,
                             [](uint64_t i, const TensorSlice& t) { return i < t.offset; });
  return static_cast<size_t>(it - tensors_.begin()) - 1;
}

std::string ParameterLayout::Describe() const {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(fingerprint_));
  return std::to_string(tensors_.size()) + " tensors, " + std::to_string(parameter_count_) +
         " parameters, fingerprint " + hex;
}

}  // namespace streamtrain::model
