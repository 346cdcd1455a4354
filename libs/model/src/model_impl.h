// The inside of a Model, shared by the library's sources (model.cpp: creation, the span API,
// state; model_gradients.cpp: the data-parallel halves of a step and the tensor-level API of
// torch_model.h). Private to libs/model.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "network.h"
#include "streamtrain/model/model.h"

namespace streamtrain::model {

struct Model::Impl {
  ModelOptions options;
  ModelSpec spec;
  int64_t feature_count = 0;
  std::unique_ptr<Network> network;
  std::vector<at::Tensor> parameters;  // layout order; the optimizer holds the same tensors
  NamedTensors buffers;
  ParameterLayout layout;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  bool training = true;  // mirrors the network's mode, to skip redundant recursive switches
  uint64_t steps = 0;
  c10::Device device{c10::kCPU};  // options.device, parsed
};

Model::Impl& ImplOf(Model& model);

// Runs `body`, turning a LibTorch exception into a Status: a bad TorchScript module or an
// unexpected shape must not take the service down.
template <typename Body>
auto Guarded(std::string_view what, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const std::exception& e) {
    return Internal(std::string(what) + ": LibTorch error: " + TorchErrorMessage(e));
  }
}

// Applies SetIntraOpThreads' count to the calling thread (OpenMP keeps it per thread).
void ApplyThreadsHere();
void SetTraining(Model::Impl& impl, bool training);
// `t` on the model's device.
at::Tensor ToDevice(const Model::Impl& impl, const at::Tensor& t);
// Raw features [batch, ...] to the network's input: shaped, scaled and shifted, on device.
Result<at::Tensor> PrepareInput(const Model::Impl& impl, const at::Tensor& features);
// A float span of `batch` examples as a tensor (no copy).
Result<at::Tensor> FromSpan(const Model::Impl& impl, std::span<const float> features, size_t batch);
Result<at::Tensor> ForwardScaled(Model::Impl& impl, const at::Tensor& input);
// Forward and backward passes: the parameters' grad() hold the batch's mean gradient.
Result<float> ForwardBackward(Model::Impl& impl, const at::Tensor& input, const at::Tensor& labels);
// ForwardBackward, then one optimizer step.
Result<float> TrainScaled(Model::Impl& impl, const at::Tensor& input, const at::Tensor& labels,
                          TrainStepTiming* timing);
Status CheckLabels(const Model::Impl& impl, const int32_t* labels, size_t n);
// Class indices as the int64 tensor the loss takes (a copy).
at::Tensor LabelsTensor(std::span<const int32_t> labels);

}  // namespace streamtrain::model
