// Tensor-level access to a Model, for the trainer and tests that work with LibTorch tensors.
//
// This is the one public header of the library that includes LibTorch (~20 s per
// translation unit on two cores): include it only where tensors are needed, and link
// streamtrain::model_torch. Same semantics as the span API in model.h: features are raw
// (feature_scale is applied inside), float32, shaped [batch, input_shape...] or
// [batch, feature_count]; labels are int64 [batch]. Same thread rules as Model.
//
//   torch::Tensor logits = ForwardTensor(*model, batch_features).value();
//   ST_ASSIGN_OR_RETURN(float loss, TrainStepTensor(*model, batch_features, batch_labels));
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/model/model.h"

namespace streamtrain::model {

// Logits [batch, num_classes] in evaluation mode, without autograd.
Result<at::Tensor> ForwardTensor(Model& model, const at::Tensor& features);
// One optimizer step; returns the loss before the step (see Model::TrainStep).
Result<float> TrainStepTensor(Model& model, const at::Tensor& features, const at::Tensor& labels);
// The live parameter tensors in layout() order. Writing to them (under torch::NoGradGuard)
// changes the model. After a train step their grad() holds that step's gradients until the
// next step starts.
std::vector<at::Tensor> ParameterTensors(Model& model);
// The optimizer, e.g. to change the learning rate of its param_groups() between steps.
torch::optim::Optimizer& OptimizerOf(Model& model);

}  // namespace streamtrain::model
