// Partial swaps (`--swap-deploy partial`): deploy a full retraining as k sparse coordinates.
//
// Deep Partial Updating (Qu, Liu, Guo and Thiele, "DPU"): at a swap there is the deployed
// model w and a model w^f retrained on the whole store. Instead of shipping w^f as a
// snapshot, a partial swap
//   1. ranks every coordinate by the DPU combined contribution (sparse/contribution.h) of
//      moving it from w to w^f and keeps the k = ceil(ratio * N) best (the mask);
//   2. starts from w with the masked coordinates taken from w^f;
//   3. fine-tunes Q steps on mini-batches sampled from the store range the retraining used,
//      changing only the masked coordinates (after each optimizer step the others are
//      written back to w: for per-coordinate optimizers such as SGD and Adam this is the
//      same as masking their gradients, and it cancels the momentum the retraining left);
//   4. leaves the result for the Deployer to publish as deltas of those k coordinates
//      (Deployer::ReplaceCoordinates), in the normal version sequence.
// The local term needs the optimisation path from w to w^f. With `--swap-retrain-from
// deployed` (partial swaps' default, DPU's own setting) the retraining starts from w and
// AfterRetrainStep accumulates the true path integral; `scratch` retrains from fresh
// weights, as full swaps do, and there is no path from w: the local term is then the
// trapezoid -1/2 (g(w) + g(w^f)) * (w^f - w) on one store batch (docs/deployment.md
// compares both).
//
// Call order: the retraining thread calls Prepare once, then AfterRetrainStep after each of
// its optimizer steps; after joining it, the loop thread calls Finish. No locking: the two
// threads never use it at the same time.
//
//   PartialSwap swap(options.swap, store, options.batch);
//   swap.Prepare(*model, deployed);  ... train, swap.AfterRetrainStep(*model) ...
//   ST_ASSIGN_OR_RETURN(PartialSwapResult r, swap.Finish(*model, lo, hi, seed));
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::model {
class Model;
}
namespace streamtrain::store {
class HistoricalStore;
}

namespace streamtrain::trainer {

// How a full retraining replaces the served model (the `kind` label of
// streamtrain_trainer_swaps_total).
enum class SwapDeploy {
  kFull,     // a snapshot of the retrained model (the thesis' full retraining)
  kPartial,  // k coordinates of it, fine-tuned, as deltas
};

// Where a retraining starts.
enum class SwapRetrainFrom {
  kDeployed,  // the deployed weights: the true local term along the retraining (DPU)
  kScratch,   // fresh weights (the thesis' full retraining): a partial swap's local term is
              // then a trapezoid estimate
};

struct SwapOptions {
  // --swap-deploy. Default: full.
  SwapDeploy deploy = SwapDeploy::kFull;
  // --swap-ratio: k / N of a partial swap, in (0, 1]. Default: 0.01.
  double ratio = 0.01;
  // --swap-finetune-steps: Q sparse fine-tuning steps of b records. Default: 100.
  uint64_t finetune_steps = 100;
  // --swap-retrain-from. Default (unset): deployed for partial swaps, scratch for full
  // ones (RetrainStart).
  std::optional<SwapRetrainFrom> retrain_from;
};

// Where the retraining starts: retrain_from, or its default for the swap kind.
SwapRetrainFrom RetrainStart(const SwapOptions& options);

std::string_view SwapDeployName(SwapDeploy deploy);
Result<SwapDeploy> ParseSwapDeploy(std::string_view text);            // full|partial
Result<SwapRetrainFrom> ParseSwapRetrainFrom(std::string_view text);  // deployed|scratch
// InvalidArgument naming the flag (--swap-ratio, ...) for values out of range.
Status ValidateSwapOptions(const SwapOptions& options);

// k of a partial swap over n parameters: ceil(ratio * n), at least 1, at most n.
uint64_t PartialSwapCoordinates(double ratio, uint64_t n);

// The k coordinates with the largest combined contribution of moving `deployed` to
// `retrained` (ties: the lower index), ascending. `local` as in sparse/contribution.h.
std::vector<uint64_t> ChoosePartialMask(std::span<const float> deployed,
                                        std::span<const float> retrained,
                                        std::span<const float> local, uint64_t k);

struct PartialSwapResult {
  std::vector<float> params;   // the deployed model with the mask's coordinates replaced
  std::vector<uint64_t> mask;  // ascending flat indices, k of them
};

class PartialSwap {
 public:
  PartialSwap(const SwapOptions& options, store::HistoricalStore& store, size_t batch);

  // Retraining thread, before training: remembers `deployed`; with a deployed start loads
  // it into `model` (the retraining then starts from it).
  Status Prepare(model::Model& model, std::span<const float> deployed);
  // Retraining thread, after each optimizer step of the retraining (deployed start only).
  void AfterRetrainStep(model::Model& model);
  // Loop thread: mask, rewind and sparse fine-tuning of `retrained` (which it trains) on
  // records [lo, hi) of the store. Deterministic for a given seed.
  Result<PartialSwapResult> Finish(model::Model& retrained, uint64_t lo, uint64_t hi,
                                   uint64_t seed);

  const SwapOptions& options() const { return options_; }
  // The local contribution accumulated along the retraining (empty for scratch).
  std::span<const float> local() const { return local_; }

 private:
  // Scratch start: -1/2 (g(w) + g(w^f)) * (w^f - w) on one batch of [lo, hi).
  Result<std::vector<float>> TrapezoidLocal(const model::Model& retrained,
                                            std::span<const float> retrained_params, uint64_t lo,
                                            uint64_t hi, uint64_t seed);
  // b records sampled uniformly from [lo, hi) into features_/labels_; the rows read.
  Result<size_t> SampleBatch(uint64_t lo, uint64_t hi, std::mt19937_64& rng);

  SwapOptions options_;
  store::HistoricalStore& store_;
  size_t batch_;
  std::vector<float> deployed_;
  std::vector<float> local_;     // deployed start: sum of -g * step along the retraining
  std::vector<float> previous_;  // parameters before the current retraining step
  std::vector<float> current_;   // scratch: the parameters after it
  std::vector<float> gradient_;
  std::vector<float> features_;
  std::vector<int32_t> labels_;
};

}  // namespace streamtrain::trainer
