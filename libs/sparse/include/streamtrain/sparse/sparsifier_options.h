// SparsifierOptions: which coordinates of a parameter update reach the served model.
//
// Filled by the services from flags (`--sparsifier`, `--ratio`, `--scope`, `--feedback`,
// `--warmup-iterations`, `--warmup`, `--seed`) through the Parse* helpers, whose errors name
// the flag; ValidateSparsifierOptions checks the whole struct. Plain values: copy freely.
//
//   ST_ASSIGN_OR_RETURN(options.kind, sparse::ParseSparsifierKind("threshold"));
//   ST_RETURN_IF_ERROR(sparse::ValidateSparsifierOptions(options));
#pragma once

#include <cstdint>
#include <string_view>

#include "streamtrain/common/status.h"

namespace streamtrain::sparse {

// How the k coordinates are chosen.
enum class SparsifierKind {
  kTopK,       // exact k largest magnitudes (histogram select: two read passes)
  kThreshold,  // the same exact k largest, found from a sampled threshold (one read pass)
  kRandomK,    // k coordinates uniformly at random, seeded
  kDpu,        // the k largest DPU combined contributions (contribution.h), threshold's way
  kNone,       // dense: every coordinate
};

// Where k is counted.
enum class SparsifierScope {
  kPerTensor,  // k = max(1, round(ratio * size)) in each tensor
  kGlobal,     // k = max(tensors, round(ratio * N)) over all, at least one per tensor
};

// What the trainer sparsifies (the services pick ErrorFeedbackSparsifier or ShadowSelector).
enum class FeedbackMode {
  kTrain,   // the model changes only at the selected coordinates; the rest is kept as residual
  kShadow,  // the trainer trains densely; the served copy gets the k largest differences
};

// What the first `warmup_iterations` iterations send.
enum class WarmupMode {
  kDense,  // every coordinate
  kRamp,   // ratio^((i + 1) / (W + 1)) at iteration i < W: from near 1 down to `ratio`
};

// Flag names, shared with the services so errors and --help say the same thing.
inline constexpr std::string_view kSparsifierFlag = "--sparsifier";
inline constexpr std::string_view kRatioFlag = "--ratio";
inline constexpr std::string_view kScopeFlag = "--scope";
inline constexpr std::string_view kFeedbackFlag = "--feedback";
inline constexpr std::string_view kWarmupIterationsFlag = "--warmup-iterations";
inline constexpr std::string_view kWarmupFlag = "--warmup";

struct SparsifierOptions {
  SparsifierKind kind = SparsifierKind::kThreshold;  // --sparsifier, default threshold
  double ratio = 0.01;                               // --ratio, fraction of coordinates, in (0, 1]
  SparsifierScope scope = SparsifierScope::kPerTensor;  // --scope, default per-tensor
  FeedbackMode feedback = FeedbackMode::kTrain;  // --feedback; the services default to shadow
  uint64_t warmup_iterations = 0;                // --warmup-iterations, default 0
  WarmupMode warmup = WarmupMode::kDense;        // --warmup, default dense
  uint64_t seed = 1;  // random-k and threshold sampling; results depend only on it
};

// Each parses the flag's value; the error names the flag and the accepted values.
Result<SparsifierKind> ParseSparsifierKind(
    std::string_view text);  // topk|threshold|randomk|dpu|none
Result<SparsifierScope> ParseSparsifierScope(std::string_view text);  // tensor|global
Result<FeedbackMode> ParseFeedbackMode(std::string_view text);        // train|shadow
Result<WarmupMode> ParseWarmupMode(std::string_view text);            // dense|ramp
Result<double> ParseRatio(std::string_view text);                     // (0, 1], e.g. 0.001

// The flag values, as the parsers accept them.
std::string_view SparsifierKindName(SparsifierKind kind);
std::string_view SparsifierScopeName(SparsifierScope scope);
std::string_view FeedbackModeName(FeedbackMode mode);
std::string_view WarmupModeName(WarmupMode mode);

// InvalidArgument naming the flag when a field is out of range (ratio outside (0, 1]).
Status ValidateSparsifierOptions(const SparsifierOptions& options);

// The ratio in force at `iteration` (0-based), warm-up included; 1 means dense.
double EffectiveRatio(const SparsifierOptions& options, uint64_t iteration);

}  // namespace streamtrain::sparse
