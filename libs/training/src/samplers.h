// The HistorySampler implementations, one per SamplerKind, and what they share: range
// checks, uniform doubles and the common head of their checkpoint state.
#pragma once

#include <memory>
#include <random>
#include <string_view>

#include "state_codec.h"
#include "streamtrain/common/ids.h"
#include "streamtrain/training/history_sampler.h"

namespace streamtrain::training::internal {

// Options are validated by HistorySampler::Create before these run.
std::unique_ptr<HistorySampler> MakeUniformSampler(const SamplerOptions& options);
std::unique_ptr<HistorySampler> MakeRecencySampler(const SamplerOptions& options);
std::unique_ptr<HistorySampler> MakeInverseFrequencySampler(const SamplerOptions& options);

// kInvalidArgument when end < first_retained.
Status CheckRange(SequenceNumber first_retained, SequenceNumber end);

// Uniform in [0, 1) with 53 random bits, the same on every standard library.
inline double Uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Every sampler state starts with the kind and the RNG.
StateWriter BeginSamplerState(SamplerKind kind, const std::mt19937_64& rng);

// Opens a state written by BeginSamplerState for `kind` and reads its RNG into *rng (the
// caller commits it only once the whole state has been read). kInvalidArgument when the
// state belongs to another kind.
Result<StateReader> OpenSamplerState(std::string_view bytes, SamplerKind kind,
                                     std::mt19937_64* rng);

}  // namespace streamtrain::training::internal
