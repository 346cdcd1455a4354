// Sampling of distinct integers, the core of history sampling. Pure functions.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace streamtrain::store {

// n distinct values drawn uniformly from [lo, hi) (all of them, shuffled, when the range
// holds n or fewer). Robert Floyd's algorithm: O(n) expected time and memory, independent of
// the range size, so sampling 120 of 10^9 records costs the same as 120 of 10^3.
std::vector<uint64_t> SampleDistinct(uint64_t lo, uint64_t hi, size_t n, std::mt19937_64& rng);

}  // namespace streamtrain::store
