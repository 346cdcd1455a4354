#include "streamtrain/training/history_sampler.h"

#include <array>
#include <cmath>
#include <string>

#include "samplers.h"

namespace streamtrain::training {
namespace {

constexpr std::string_view kStateMagic = "STHS";
constexpr uint8_t kStateVersion = 1;

constexpr std::array<SamplerKind, 4> kAllKinds = {SamplerKind::kUniform, SamplerKind::kWindow,
                                                  SamplerKind::kRecency,
                                                  SamplerKind::kInverseFrequency};

// Bounds of a usable half-life: below, log(0.5) / half_life overflows towards -inf; above,
// every weight rounds to 1 and the sampler is uniform anyway.
constexpr double kMinHalfLife = 1e-3;
constexpr double kMaxHalfLife = 1e18;

}  // namespace

std::string_view SamplerKindName(SamplerKind kind) {
  switch (kind) {
    case SamplerKind::kUniform:
      return "uniform";
    case SamplerKind::kWindow:
      return "window";
    case SamplerKind::kRecency:
      return "recency";
    case SamplerKind::kInverseFrequency:
      return "inverse-frequency";
  }
  return "unknown";
}

Result<SamplerKind> ParseSamplerKind(std::string_view name) {
  std::string accepted;
  for (SamplerKind kind : kAllKinds) {
    if (name == SamplerKindName(kind)) return kind;
    if (!accepted.empty()) accepted += ", ";
    accepted += SamplerKindName(kind);
  }
  return InvalidArgument("unknown sampler kind '" + std::string(name) + "'; accepted: " + accepted);
}

Result<std::unique_ptr<HistorySampler>> HistorySampler::Create(const SamplerOptions& options) {
  switch (options.kind) {
    case SamplerKind::kUniform:
      return internal::MakeUniformSampler(options);
    case SamplerKind::kWindow:
      if (options.window == 0) return InvalidArgument("sampler window: must be at least 1 record");
      return internal::MakeUniformSampler(options);
    case SamplerKind::kRecency:
      if (!(options.half_life >= kMinHalfLife && options.half_life <= kMaxHalfLife)) {
        return InvalidArgument("sampler half-life: " + std::to_string(options.half_life) +
                               " records; must be between 0.001 and 1e18");
      }
      return internal::MakeRecencySampler(options);
    case SamplerKind::kInverseFrequency:
      return internal::MakeInverseFrequencySampler(options);
  }
  return InvalidArgument("sampler kind: " + std::to_string(static_cast<int>(options.kind)) +
                         " is not a SamplerKind");
}

namespace internal {

Status CheckRange(SequenceNumber first_retained, SequenceNumber end) {
  if (end < first_retained) {
    return InvalidArgument("sample range [" + std::to_string(first_retained.value()) + ", " +
                           std::to_string(end.value()) + "): end is before first_retained");
  }
  return Status::Ok();
}

StateWriter BeginSamplerState(SamplerKind kind, const std::mt19937_64& rng) {
  StateWriter writer(kStateMagic, kStateVersion);
  writer.U8(static_cast<uint8_t>(kind));
  writer.Rng(rng);
  return writer;
}

Result<StateReader> OpenSamplerState(std::string_view bytes, SamplerKind kind,
                                     std::mt19937_64* rng) {
  ST_ASSIGN_OR_RETURN(StateReader reader,
                      StateReader::Open(bytes, kStateMagic, kStateVersion, "sampler"));
  uint8_t stored = 0;
  if (!reader.U8(&stored)) return reader.Finish();
  if (stored >= kAllKinds.size())
    return Corrupt("sampler state: unknown kind " + std::to_string(stored));
  if (static_cast<SamplerKind>(stored) != kind) {
    return InvalidArgument("sampler state: saved by a '" +
                           std::string(SamplerKindName(static_cast<SamplerKind>(stored))) +
                           "' sampler, cannot restore a '" + std::string(SamplerKindName(kind)) +
                           "' one");
  }
  if (!reader.Rng(rng)) return reader.Finish();
  return reader;
}

}  // namespace internal
}  // namespace streamtrain::training
