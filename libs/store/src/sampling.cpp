#include "streamtrain/store/sampling.h"

#include <unordered_set>

#include "streamtrain/common/random.h"

namespace streamtrain::store {

std::vector<uint64_t> SampleDistinct(uint64_t lo, uint64_t hi, size_t n, std::mt19937_64& rng) {
  std::vector<uint64_t> out;
  if (hi <= lo || n == 0) return out;
  const uint64_t range = hi - lo;
  if (range <= n) {
    out.reserve(range);
    for (uint64_t v = lo; v < hi; ++v) out.push_back(v);
  } else {
    // Floyd: for j in [range-n, range): draw t in [0, j]; take t unless already taken, then j.
    out.reserve(n);
    std::unordered_set<uint64_t> taken;
    taken.reserve(n * 2);
    for (uint64_t j = range - n; j < range; ++j) {
      uint64_t t = UniformBelow(rng, j + 1);
      uint64_t pick = taken.insert(t).second ? t : j;
      if (pick == j) taken.insert(j);
      out.push_back(lo + pick);
    }
  }
  // Floyd's output order is not uniform; callers may rely on a random order.
  Shuffle(out, rng);
  return out;
}

}  // namespace streamtrain::store
