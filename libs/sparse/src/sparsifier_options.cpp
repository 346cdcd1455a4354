#include "streamtrain/sparse/sparsifier_options.h"

#include <charconv>
#include <cmath>
#include <string>

namespace streamtrain::sparse {
namespace {

Status BadValue(std::string_view flag, std::string_view text, std::string_view expected) {
  return InvalidArgument(std::string(flag) + ": '" + std::string(text) + "' is not one of " +
                         std::string(expected));
}

}  // namespace

Result<SparsifierKind> ParseSparsifierKind(std::string_view text) {
  if (text == "topk") return SparsifierKind::kTopK;
  if (text == "threshold") return SparsifierKind::kThreshold;
  if (text == "randomk") return SparsifierKind::kRandomK;
  if (text == "dpu") return SparsifierKind::kDpu;
  if (text == "none") return SparsifierKind::kNone;
  return BadValue(kSparsifierFlag, text, "topk|threshold|randomk|dpu|none");
}

Result<SparsifierScope> ParseSparsifierScope(std::string_view text) {
  if (text == "tensor") return SparsifierScope::kPerTensor;
  if (text == "global") return SparsifierScope::kGlobal;
  return BadValue(kScopeFlag, text, "tensor|global");
}

Result<FeedbackMode> ParseFeedbackMode(std::string_view text) {
  if (text == "train") return FeedbackMode::kTrain;
  if (text == "shadow") return FeedbackMode::kShadow;
  return BadValue(kFeedbackFlag, text, "train|shadow");
}

Result<WarmupMode> ParseWarmupMode(std::string_view text) {
  if (text == "dense") return WarmupMode::kDense;
  if (text == "ramp") return WarmupMode::kRamp;
  return BadValue(kWarmupFlag, text, "dense|ramp");
}

Result<double> ParseRatio(std::string_view text) {
  double ratio = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), ratio);
  if (error != std::errc() || end != text.data() + text.size()) {
    return InvalidArgument(std::string(kRatioFlag) + ": '" + std::string(text) +
                           "' is not a number (e.g. 0.001)");
  }
  SparsifierOptions options;
  options.ratio = ratio;
  ST_RETURN_IF_ERROR(ValidateSparsifierOptions(options));
  return ratio;
}

std::string_view SparsifierKindName(SparsifierKind kind) {
  switch (kind) {
    case SparsifierKind::kTopK:
      return "topk";
    case SparsifierKind::kThreshold:
      return "threshold";
    case SparsifierKind::kRandomK:
      return "randomk";
    case SparsifierKind::kDpu:
      return "dpu";
    case SparsifierKind::kNone:
      return "none";
  }
  return "?";
}

std::string_view SparsifierScopeName(SparsifierScope scope) {
  return scope == SparsifierScope::kPerTensor ? "tensor" : "global";
}

std::string_view FeedbackModeName(FeedbackMode mode) {
  return mode == FeedbackMode::kTrain ? "train" : "shadow";
}

std::string_view WarmupModeName(WarmupMode mode) {
  return mode == WarmupMode::kDense ? "dense" : "ramp";
}

Status ValidateSparsifierOptions(const SparsifierOptions& options) {
  // `!(x > 0)` also rejects NaN.
  if (!(options.ratio > 0.0) || options.ratio > 1.0) {
    return InvalidArgument(std::string(kRatioFlag) + ": " + std::to_string(options.ratio) +
                           " is outside (0, 1]; e.g. 0.01 sends 1% of the parameters");
  }
  return Status::Ok();
}

double EffectiveRatio(const SparsifierOptions& options, uint64_t iteration) {
  if (options.kind == SparsifierKind::kNone) return 1.0;
  if (iteration >= options.warmup_iterations) return options.ratio;
  if (options.warmup == WarmupMode::kDense) return 1.0;
  // Geometric, as deep gradient compression's warm-up: each step shrinks by the same factor.
  const double w = static_cast<double>(options.warmup_iterations);
  return std::pow(options.ratio, (static_cast<double>(iteration) + 1.0) / (w + 1.0));
}

}  // namespace streamtrain::sparse
