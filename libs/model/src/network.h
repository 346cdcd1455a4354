// Network: the seam between Model and the two kinds of LibTorch module it drives, a C++
// torch::nn::Module built here (lenet5, mlp, logreg, resnet18) and a scripted
// torch::jit::Module loaded from a file. Private to the library.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/model/model_spec.h"

namespace streamtrain::model {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

class Network {
 public:
  virtual ~Network() = default;
  // Logits [batch, num_classes] for input [batch, input_shape...], already scaled.
  virtual at::Tensor Forward(const at::Tensor& input) = 0;
  // Training mode (BatchNorm uses batch statistics and updates its running ones) or eval.
  virtual void SetTraining(bool training) = 0;
  // Trainable tensors in registration order, with dotted names ("layer1.0.conv1.weight").
  virtual NamedTensors NamedParameters() const = 0;
  // Non-trainable state that still has to be checkpointed (BatchNorm running statistics).
  virtual NamedTensors NamedBuffers() const = 0;
  // Moves parameters and buffers to `device` (before the optimizer is made over them).
  virtual void To(const c10::Device& device) = 0;
};

// Builds a built-in architecture. Initial weights come from LibTorch's default generator:
// the caller seeds it (and holds a lock so that no other thread draws from it meanwhile).
// InvalidArgument when input_shape does not suit the architecture.
Result<std::unique_ptr<Network>> BuildNetwork(const ModelSpec& spec,
                                              const std::vector<int64_t>& input_shape,
                                              int64_t num_classes);

// Loads spec.torchscript_path and checks that it has float32 parameters and maps one
// example of input_shape to [1, num_classes]. NotFound for a missing file.
Result<std::unique_ptr<Network>> LoadTorchScriptNetwork(const std::string& path,
                                                        const std::vector<int64_t>& input_shape,
                                                        int64_t num_classes);

// "1x28x28".
std::string ShapeString(const std::vector<int64_t>& shape);

// First line of a LibTorch exception message, without the C++ stack trace.
std::string TorchErrorMessage(const std::exception& e);

}  // namespace streamtrain::model
