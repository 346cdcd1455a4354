// Inputs for the selection tests: (trained, served) pairs whose differences are random,
// tied, clustered or otherwise hard for a sampled threshold. Shared by the host emulation
// test and the device test so both see the same cases.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace streamtrain::gpu::testing {

enum class Pattern {
  kNormal,        // Gaussian differences
  kZeros,         // trained == served: every |r| is 0, all ties
  kConstant,      // one magnitude everywhere, alternating sign: all ties
  kFewLevels,     // four magnitudes: large tie groups at the threshold
  kSpikes,        // a few large values among tiny ones
  kAscending,     // |r| grows with the index: the largest all at the end
  kTilePeriodic,  // large values once per 8192, where a periodic sample would miss them
  kSpecials,      // infinities, -0, subnormals, the largest float
};

inline std::string PatternName(Pattern p) {
  switch (p) {
    case Pattern::kNormal:
      return "normal";
    case Pattern::kZeros:
      return "zeros";
    case Pattern::kConstant:
      return "constant";
    case Pattern::kFewLevels:
      return "few-levels";
    case Pattern::kSpikes:
      return "spikes";
    case Pattern::kAscending:
      return "ascending";
    case Pattern::kTilePeriodic:
      return "tile-periodic";
    case Pattern::kSpecials:
      return "specials";
  }
  return "?";
}

// The difference trained - served to aim for at element i (exact in float for these
// served values, so the residual sees exactly this).
inline void MakeInputs(Pattern pattern, uint64_t n, uint64_t seed, std::vector<float>& trained,
                       std::vector<float>& served) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  trained.resize(n);
  served.resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    float d = 0.0f;
    switch (pattern) {
      case Pattern::kNormal:
        d = normal(rng) * 1e-3f;
        break;
      case Pattern::kZeros:
        d = 0.0f;
        break;
      case Pattern::kConstant:
        d = (i % 2 ? -0.25f : 0.25f);
        break;
      case Pattern::kFewLevels:
        d = std::ldexp(1.0f, -static_cast<int>(rng() % 4)) * (rng() % 2 ? 1 : -1);
        break;
      case Pattern::kSpikes:
        d = (rng() % 997 == 0) ? normal(rng) * 100.0f : normal(rng) * 1e-6f;
        break;
      case Pattern::kAscending:
        d = static_cast<float>(i) * 1e-4f;
        break;
      case Pattern::kTilePeriodic:
        d = (i % 8192 == 4000) ? 1.0f + static_cast<float>(i % 7) : normal(rng) * 1e-3f;
        break;
      case Pattern::kSpecials: {
        const float specials[] = {std::numeric_limits<float>::infinity(),
                                  -std::numeric_limits<float>::infinity(),
                                  -0.0f,
                                  0.0f,
                                  std::numeric_limits<float>::denorm_min(),
                                  -std::numeric_limits<float>::denorm_min() * 3,
                                  std::numeric_limits<float>::max(),
                                  1e-40f};
        d = (rng() % 5 == 0) ? specials[rng() % 8] : normal(rng);
        break;
      }
    }
    // served is 0 or -0, so trained - served == d exactly (and -0 - 0 keeps -0).
    served[i] = 0.0f;
    trained[i] = d;
  }
}

}  // namespace streamtrain::gpu::testing
