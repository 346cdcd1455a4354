// ModelOptions and OptimizerOptions: everything CreateModel needs to build a trainable model.
//
// Plain structs filled by services from flags and config files; CreateModel validates them
// and names the offending field in its error ("optimizer.learning_rate: ..."). Defaults are
// the thesis setup: LeNet-5 on 1x28x28 Fashion-MNIST pixels, 10 classes, Adam with lr 1e-3.
//
//   ModelOptions options{.model = "mlp:128", .optimizer = {.kind = OptimizerKind::kSgd}};
//   ST_ASSIGN_OR_RETURN(auto model, CreateModel(options));
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::model {

enum class OptimizerKind {
  kSgd,   // stochastic gradient descent, optionally with (Nesterov) momentum
  kAdam,  // Adam (Kingma and Ba 2015), optionally AMSGrad
};

// "sgd" or "adam".
std::string_view OptimizerKindName(OptimizerKind kind);
// Parses "sgd" or "adam"; InvalidArgument naming optimizer.kind otherwise.
Result<OptimizerKind> ParseOptimizerKind(std::string_view text);

struct OptimizerOptions {
  // Which update rule. Default: Adam, as in the thesis.
  OptimizerKind kind = OptimizerKind::kAdam;
  // Step size, > 0. Default: 1e-3 (the thesis' Adam setting).
  double learning_rate = 1e-3;
  // L2 penalty added to the gradient (not decoupled AdamW), >= 0. Default: 0.
  double weight_decay = 0.0;
  // SGD only: momentum factor in [0, 1). Default: 0 (plain SGD).
  double momentum = 0.0;
  // SGD only: Nesterov momentum; needs momentum > 0. Default: false.
  bool nesterov = false;
  // Adam only: decay rates of the first and second moment estimates, in [0, 1).
  // Defaults: 0.9 and 0.999.
  double beta1 = 0.9;
  double beta2 = 0.999;
  // Adam only: term added to the denominator for numerical stability, > 0. Default: 1e-8.
  double epsilon = 1e-8;
  // Adam only: use the AMSGrad variant (max of past second moments). Default: false.
  bool amsgrad = false;

  // Ok, or InvalidArgument naming the first bad field ("optimizer.momentum: ...").
  Status Validate() const;
  // "adam lr=0.001" / "sgd lr=0.01 momentum=0.9".
  std::string Describe() const;
};

struct ModelOptions {
  // Architecture spec, see ModelSpec: lenet5 | mlp[:H,..] | logreg | resnet18 |
  // torchscript:FILE. Default: "lenet5".
  std::string model = "lenet5";
  // Shape of one example, without the batch dimension, e.g. {1, 28, 28} (C x H x W) for
  // Fashion-MNIST. Convolutional models need exactly 3 dimensions. Default: {1, 28, 28}.
  std::vector<int64_t> input_shape{1, 28, 28};
  // Number of classes; labels are in [0, num_classes). >= 2. Default: 10.
  int32_t num_classes = 10;
  // Seed of the initial weights. With one intra-op thread, two models created with the same
  // options and seed are bit-identical, and stay so when trained on the same batches.
  // Ignored by torchscript models (their weights come from the file). Default: 1.
  uint64_t seed = 1;
  // Features are multiplied by this inside Forward/TrainStep, so producers can send raw
  // values (Fashion-MNIST pixels are 0..255). Finite and non-zero. Default: 1/255.
  float feature_scale = 1.0f / 255.0f;
  // Added after the scale: the model sees feature * feature_scale + feature_shift, which
  // standardises inputs when scale = 1/(255 std) and shift = -mean/std. Finite. Default: 0.
  float feature_shift = 0.0f;
  // Update rule and its hyper-parameters. Default: Adam, lr 1e-3.
  OptimizerOptions optimizer;
  // If > 0, CreateModel calls SetIntraOpThreads(intra_op_threads): process-wide, it changes
  // every model in the process. 0 leaves LibTorch's setting alone. Default: 0.
  int intra_op_threads = 0;
  // If true, CreateModel calls RetainFreedMemory() (process-wide, see model.h): freed tensor
  // memory stays in the process for the next step instead of going back to the kernel.
  // Default: true.
  bool retain_freed_memory = true;
  // Where the parameters, optimizer state and batches live: "cpu", or "cuda" / "cuda:N" in
  // a build configured with -DSTREAMTRAIN_CUDA=ON (docs/gpu.md). Inputs and outputs of the
  // span API stay in host memory. Default: "cpu".
  std::string device = "cpu";
};

// Whether this build can place models on CUDA devices (configured with -DSTREAMTRAIN_CUDA=ON).
bool BuiltWithCuda();
// Ok for "cpu", "cuda" and "cuda:N"; InvalidArgument naming `device` otherwise, and for a
// cuda device in a build without CUDA support. Whether the device exists is checked when a
// model is created.
Status ValidateDevice(std::string_view device);

}  // namespace streamtrain::model
