// Model: a trainable classifier behind a LibTorch-free API, for the trainer and replicas.
//
// Built by CreateModel from ModelOptions (architecture, input shape, classes, seed,
// optimizer). Inputs are flat row-major float buffers of batch_size * feature_count()
// values in raw units (feature_scale is applied inside); labels are class indices. The
// trainer calls Predict (test) then TrainStep (train) per batch; deltas and snapshots read
// and write the parameters as one flat vector in layout() order; checkpoints use
// SaveState/LoadState. Tensor-level access for the trainer is in torch_model.h.
//
// Thread safety: none. One thread at a time may call a Model (the trainer's loop, or a
// replica behind its own lock); distinct Models may be used from distinct threads. The
// intra-op thread count is process-wide (SetIntraOpThreads).
//
//   ST_ASSIGN_OR_RETURN(auto model, CreateModel({.model = "lenet5"}));
//   ST_ASSIGN_OR_RETURN(float loss, model->TrainStep(pixels, labels));
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/model/model_options.h"
#include "streamtrain/model/model_spec.h"
#include "streamtrain/model/parameter_layout.h"

namespace streamtrain::model {

// The model's answer for one example.
struct Prediction {
  int32_t label = 0;                 // argmax of the logits
  float confidence = 0.0f;           // softmax probability of `label`
  std::vector<float> probabilities;  // softmax over all num_classes classes
};

// Where the time of one TrainStep went, for the trainer's per-phase metrics.
struct TrainStepTiming {
  double forward_backward_seconds = 0;  // forward pass, loss and backward pass
  double optimizer_seconds = 0;         // the optimizer's parameter update
};

class Model {
 public:
  // Validates `options` and builds the network and its optimizer. InvalidArgument names the
  // bad field ("model: ...", "input_shape: ..."); NotFound for a missing torchscript file.
  static Result<std::unique_ptr<Model>> Create(const ModelOptions& options);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelOptions& options() const;
  const ModelSpec& spec() const;
  // Values per example: the product of options().input_shape.
  size_t feature_count() const;
  int32_t num_classes() const;
  const ParameterLayout& layout() const;
  // Trainable parameters (weights and biases; not BatchNorm running statistics).
  uint64_t ParameterCount() const;
  // TrainSteps applied since creation, restored by LoadState.
  uint64_t steps() const;
  // "lenet5 1x28x28 -> 10 classes, 61706 parameters, adam lr=0.001".
  std::string Describe() const;

  // Logits of `batch_size` examples into `logits` (batch_size * num_classes values), in
  // evaluation mode and without autograd. InvalidArgument on a size mismatch.
  Status Forward(std::span<const float> features, size_t batch_size, std::span<float> logits);
  // As above, returning a new vector.
  Result<std::vector<float>> Forward(std::span<const float> features, size_t batch_size);
  // Argmax and softmax probabilities per example.
  Result<std::vector<Prediction>> Predict(std::span<const float> features, size_t batch_size);
  // One optimizer step on the batch (labels.size() examples, mean cross-entropy); returns the
  // loss before the step. A non-finite loss leaves the parameters unchanged and is an error.
  // If `timing` is given it receives the split of the step's time.
  Result<float> TrainStep(std::span<const float> features, std::span<const int32_t> labels,
                          TrainStepTiming* timing = nullptr);

  // TrainStep in two halves, for data-parallel training (the ranks exchange gradients in
  // between): ComputeGradient runs the forward and backward passes on the batch and copies
  // the mean gradient into `gradient` (ParameterCount() values, layout() order), leaving the
  // parameters unchanged; ApplyGradient takes one optimizer step with `gradient` as the
  // gradient, the learning rate multiplied by `learning_rate_scale` for that step. The two
  // in a row are bit-identical to TrainStep on the same batch.
  Result<float> ComputeGradient(std::span<const float> features, std::span<const int32_t> labels,
                                std::span<float> gradient, TrainStepTiming* timing = nullptr);
  Status ApplyGradient(std::span<const float> gradient, double learning_rate_scale = 1.0,
                       TrainStepTiming* timing = nullptr);

  // The parameters as one flat vector in layout() order.
  std::vector<float> GetParameters() const;
  // Copies the parameters into `out` (ParameterCount() values).
  Status CopyParametersTo(std::span<float> out) const;
  // Copies the gradients the last TrainStep's optimizer step used into `out`
  // (ParameterCount() values, layout() order; zeros before the first step or for a
  // parameter without a gradient). The dpu sparsifier's local contribution needs them.
  Status CopyGradientsTo(std::span<float> out) const;
  // Overwrites every parameter from `values` (ParameterCount() values); optimizer state and
  // buffers are kept.
  Status SetParameters(std::span<const float> values);

  // Parameters, buffers, optimizer state and step count as bytes (LibTorch archive format).
  Result<std::string> SaveState() const;
  // Restores SaveState bytes from a model with the same layout and optimizer kind; training
  // then continues bit-identically. Corrupt for unreadable bytes, FailedPrecondition for a
  // state of another layout. On error the model is unchanged.
  Status LoadState(std::string_view bytes);

  struct Impl;  // the LibTorch objects, defined in src/model.cpp

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend Impl& ImplOf(Model& model);
};

// Same as Model::Create.
Result<std::unique_ptr<Model>> CreateModel(const ModelOptions& options);

// Sets LibTorch's intra-op thread count (torch::set_num_threads); n < 1 counts as 1. On a
// machine whose cores other work also uses, 1 is the safe choice: OpenMP threads that wait
// for a busy core can make a step many times slower. Process-wide: it applies to every
// Model, and each thread that calls a Model picks it up on its next call (with OpenMP the
// count is per calling thread, so Model re-applies it where needed).
void SetIntraOpThreads(int n);
// The count last set by SetIntraOpThreads, or LibTorch's current one if never set.
int IntraOpThreads();

// Tells glibc malloc to keep freed memory for reuse (mmap threshold 32 MiB, trim threshold
// 256 MiB) instead of handing each step's activation buffers back to the kernel and
// page-faulting them in again on the next step, which cost up to ~40% of a LeNet-5 step.
// Process-wide and idempotent; a no-op without glibc. The process keeps up to 256 MiB of
// freed heap.
void RetainFreedMemory();

}  // namespace streamtrain::model
