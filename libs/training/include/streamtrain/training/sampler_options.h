// Which historical records a proactive-training batch draws, and how to configure it.
//
// The thesis samples history uniformly. The other kinds trade that off against drift
// (window, recency) or against records never being revisited (inverse-frequency); see
// HistorySampler for the exact law of each.
#pragma once

#include <cstdint>
#include <string_view>

#include "streamtrain/common/status.h"

namespace streamtrain::training {

enum class SamplerKind {
  kUniform,           // every retained record equally likely (the thesis)
  kWindow,            // uniform over the last `window` records only
  kRecency,           // weight halves every `half_life` records of age
  kInverseFrequency,  // weight 1 / (1 + times already selected)
};

// "uniform", "window", "recency", "inverse-frequency": the names flags and configs use.
std::string_view SamplerKindName(SamplerKind kind);

// Inverse of SamplerKindName; the error lists the accepted names.
Result<SamplerKind> ParseSamplerKind(std::string_view name);

struct SamplerOptions {
  // Which law history is sampled with. Default: uniform.
  SamplerKind kind = SamplerKind::kUniform;
  // Seed of the sampler's own RNG: equal seeds and equal calls give equal samples. Default: 1.
  uint64_t seed = 1;
  // kWindow: how many records before `end` may be drawn, records, >= 1. Default: 10,000.
  uint64_t window = 10'000;
  // kRecency: age at which a record's weight halves, records, finite and > 0. Default: 10,000.
  double half_life = 10'000;
};

}  // namespace streamtrain::training
