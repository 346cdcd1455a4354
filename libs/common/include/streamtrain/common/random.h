// Portable random helpers. std::uniform_int_distribution and std::shuffle differ between
// standard libraries; these do not, so a seeded run samples the same records everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace streamtrain {

// 128-bit product for Lemire's method; __extension__ keeps -Wpedantic quiet about the
// GCC/Clang builtin type.
__extension__ using Uint128 = unsigned __int128;

// Uniform integer in [0, bound), bound > 0, without modulo bias (Lemire's method).
inline uint64_t UniformBelow(std::mt19937_64& rng, uint64_t bound) {
  Uint128 m = static_cast<Uint128>(rng()) * bound;
  auto low = static_cast<uint64_t>(m);
  if (low < bound) {
    const uint64_t threshold = -bound % bound;
    while (low < threshold) {
      m = static_cast<Uint128>(rng()) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

template <typename T>
void Shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    std::swap(v[i - 1], v[UniformBelow(rng, i)]);
  }
}

}  // namespace streamtrain
