#include "partial_swap.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "streamtrain/model/model.h"
#include "streamtrain/model/torch_model.h"
#include "streamtrain/sparse/contribution.h"
#include "streamtrain/store/historical_store.h"

namespace streamtrain::trainer {
namespace {

// The gradients of the model's last step, flat in layout order.
void CopyGradients(model::Model& model, std::vector<float>& out) {
  out.resize(model.ParameterCount());
  size_t at = 0;
  for (const at::Tensor& p : model::ParameterTensors(model)) {
    const int64_t n = p.numel();
    if (p.grad().defined()) {
      at::Tensor g = p.grad().detach().to(torch::kCPU).contiguous().view({-1});
      std::copy_n(g.data_ptr<float>(), n, out.begin() + static_cast<ptrdiff_t>(at));
    } else {
      std::fill_n(out.begin() + static_cast<ptrdiff_t>(at), n, 0.0f);
    }
    at += static_cast<size_t>(n);
  }
}

}  // namespace

std::string_view SwapDeployName(SwapDeploy deploy) {
  return deploy == SwapDeploy::kPartial ? "partial" : "full";
}

Result<SwapDeploy> ParseSwapDeploy(std::string_view text) {
  if (text == "full") return SwapDeploy::kFull;
  if (text == "partial") return SwapDeploy::kPartial;
  return InvalidArgument("--swap-deploy: unknown kind '" + std::string(text) +
                         "' (expected full|partial)");
}

Result<SwapRetrainFrom> ParseSwapRetrainFrom(std::string_view text) {
  if (text == "deployed") return SwapRetrainFrom::kDeployed;
  if (text == "scratch") return SwapRetrainFrom::kScratch;
  return InvalidArgument("--swap-retrain-from: unknown start '" + std::string(text) +
                         "' (expected deployed|scratch)");
}

Status ValidateSwapOptions(const SwapOptions& options) {
  // Written so that NaN fails too.
  if (!(options.ratio > 0 && options.ratio <= 1)) {
    return InvalidArgument("--swap-ratio: must be in (0, 1], got " + std::to_string(options.ratio));
  }
  // A bound keeps a typo (an extra zero or three) from stalling every swap for hours.
  constexpr uint64_t kMaxFinetuneSteps = 1000000;
  if (options.finetune_steps > kMaxFinetuneSteps) {
    return InvalidArgument("--swap-finetune-steps: at most " + std::to_string(kMaxFinetuneSteps) +
                           ", got " + std::to_string(options.finetune_steps));
  }
  return Status::Ok();
}

SwapRetrainFrom RetrainStart(const SwapOptions& options) {
  if (options.retrain_from) return *options.retrain_from;
  // Full swaps keep the thesis' retraining from scratch; partial ones need a path from the
  // deployed model for the local term (docs/deployment.md, "Partial swaps").
  return options.deploy == SwapDeploy::kPartial ? SwapRetrainFrom::kDeployed
                                                : SwapRetrainFrom::kScratch;
}

uint64_t PartialSwapCoordinates(double ratio, uint64_t n) {
  if (n == 0) return 0;
  const auto k = static_cast<uint64_t>(std::ceil(ratio * static_cast<double>(n)));
  return std::clamp<uint64_t>(k, 1, n);
}

std::vector<uint64_t> ChoosePartialMask(std::span<const float> deployed,
                                        std::span<const float> retrained,
                                        std::span<const float> local, uint64_t k) {
  const size_t n = deployed.size();
  std::vector<float> pending(n);
  for (size_t i = 0; i < n; ++i) pending[i] = retrained[i] - deployed[i];
  std::vector<float> zeros;
  if (local.empty()) {
    zeros.assign(n, 0.0f);
    local = zeros;
  }
  std::vector<float> score(n);
  sparse::CombinedContribution(pending, local, score);
  std::vector<uint64_t> order(n);
  std::iota(order.begin(), order.end(), uint64_t{0});
  k = std::min<uint64_t>(k, n);
  // NaN scores rank last; ties go to the lower index so trainer runs are reproducible.
  auto better = [&](uint64_t a, uint64_t b) {
    const float sa = std::isnan(score[a]) ? -INFINITY : score[a];
    const float sb = std::isnan(score[b]) ? -INFINITY : score[b];
    return sa != sb ? sa > sb : a < b;
  };
  std::nth_element(order.begin(), order.begin() + static_cast<ptrdiff_t>(k), order.end(), better);
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

PartialSwap::PartialSwap(const SwapOptions& options, store::HistoricalStore& store, size_t batch)
    : options_(options), store_(store), batch_(batch) {}

Status PartialSwap::Prepare(model::Model& model, std::span<const float> deployed) {
  deployed_.assign(deployed.begin(), deployed.end());
  if (RetrainStart(options_) != SwapRetrainFrom::kDeployed) return Status::Ok();
  ST_RETURN_IF_ERROR(model.SetParameters(deployed));
  local_.assign(deployed.size(), 0.0f);
  previous_ = deployed_;
  return Status::Ok();
}

void PartialSwap::AfterRetrainStep(model::Model& model) {
  if (local_.empty()) return;
  CopyGradients(model, gradient_);
  current_.resize(previous_.size());
  // Fails only for a model of another parameter count than Prepare's: nothing to add then.
  if (!model.CopyParametersTo(current_).ok()) return;
  // previous_ becomes the step (now - before), then the parameters now.
  for (size_t i = 0; i < current_.size(); ++i) previous_[i] = current_[i] - previous_[i];
  sparse::AccumulateLocalContribution(local_, gradient_, previous_);
  previous_.swap(current_);
}

Result<size_t> PartialSwap::SampleBatch(uint64_t lo, uint64_t hi, std::mt19937_64& rng) {
  const size_t width = store_.schema().feature_count();
  ST_ASSIGN_OR_RETURN(auto seqs,
                      store_.SampleUniform(SequenceNumber(lo), SequenceNumber(hi), batch_, rng));
  if (seqs.empty()) return FailedPrecondition("partial swap: no records left in the store range");
  features_.resize(seqs.size() * width);
  labels_.resize(seqs.size());
  ST_RETURN_IF_ERROR(store_.ReadBatch(seqs, features_, labels_));
  return seqs.size();
}

Result<std::vector<float>> PartialSwap::TrapezoidLocal(const model::Model& retrained,
                                                       std::span<const float> retrained_params,
                                                       uint64_t lo, uint64_t hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ST_ASSIGN_OR_RETURN(size_t rows, SampleBatch(lo, hi, rng));
  // A throw-away copy: the gradient is read after a step, which must not touch `retrained`.
  ST_ASSIGN_OR_RETURN(auto probe, model::Model::Create(retrained.options()));
  const size_t width = store_.schema().feature_count();
  std::span<const float> features(features_.data(), rows * width);
  std::span<const int32_t> labels(labels_.data(), rows);
  std::vector<float> at_deployed, at_retrained;
  ST_RETURN_IF_ERROR(probe->SetParameters(deployed_));
  ST_RETURN_IF_ERROR(probe->TrainStep(features, labels).status());
  CopyGradients(*probe, at_deployed);
  ST_RETURN_IF_ERROR(probe->SetParameters(retrained_params));
  ST_RETURN_IF_ERROR(probe->TrainStep(features, labels).status());
  CopyGradients(*probe, at_retrained);
  std::vector<float> local(deployed_.size(), 0.0f);
  std::vector<float> mean_gradient(deployed_.size()), delta(deployed_.size());
  for (size_t i = 0; i < local.size(); ++i) {
    mean_gradient[i] = 0.5f * (at_deployed[i] + at_retrained[i]);
    delta[i] = retrained_params[i] - deployed_[i];
  }
  sparse::AccumulateLocalContribution(local, mean_gradient, delta);
  return local;
}

Result<PartialSwapResult> PartialSwap::Finish(model::Model& retrained, uint64_t lo, uint64_t hi,
                                              uint64_t seed) {
  const size_t n = deployed_.size();
  if (n != retrained.ParameterCount()) {
    return FailedPrecondition("partial swap: Prepare was not called with this model's layout");
  }
  std::vector<float> trained = retrained.GetParameters();
  std::vector<float> local;
  if (RetrainStart(options_) == SwapRetrainFrom::kDeployed) {
    local = local_;
  } else {
    ST_ASSIGN_OR_RETURN(local, TrapezoidLocal(retrained, trained, lo, hi, seed));
  }
  PartialSwapResult result;
  result.mask =
      ChoosePartialMask(deployed_, trained, local, PartialSwapCoordinates(options_.ratio, n));
  // Rewind: the deployed model, with only the masked coordinates from the retrained one.
  result.params = deployed_;
  for (uint64_t i : result.mask) result.params[i] = trained[i];
  ST_RETURN_IF_ERROR(retrained.SetParameters(result.params));
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  const size_t width = store_.schema().feature_count();
  for (uint64_t step = 0; step < options_.finetune_steps; ++step) {
    ST_ASSIGN_OR_RETURN(size_t rows, SampleBatch(lo, hi, rng));
    ST_RETURN_IF_ERROR(retrained
                           .TrainStep(std::span<const float>(features_.data(), rows * width),
                                      std::span<const int32_t>(labels_.data(), rows))
                           .status());
    // Only the mask moves: the rest goes back to the deployed values (bit for bit).
    ST_RETURN_IF_ERROR(retrained.CopyParametersTo(trained));
    for (uint64_t i : result.mask) result.params[i] = trained[i];
    ST_RETURN_IF_ERROR(retrained.SetParameters(result.params));
  }
  local_.clear();
  previous_.clear();
  return result;
}

}  // namespace streamtrain::trainer
