// The two halves of a training step for data-parallel training (Model::ComputeGradient and
// ApplyGradient) and the tensor-level API of torch_model.h.
#include <ATen/Functions.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>

#include "model_impl.h"
#include "streamtrain/model/torch_model.h"

namespace streamtrain::model {

Result<float> Model::ComputeGradient(std::span<const float> features,
                                     std::span<const int32_t> labels, std::span<float> gradient,
                                     TrainStepTiming* timing) {
  if (gradient.size() != ParameterCount()) {
    return InvalidArgument("gradient: expected room for " + std::to_string(ParameterCount()) +
                           " values, got " + std::to_string(gradient.size()));
  }
  ST_ASSIGN_OR_RETURN(at::Tensor raw, FromSpan(*impl_, features, labels.size()));
  ST_RETURN_IF_ERROR(CheckLabels(*impl_, labels.data(), labels.size()));
  ApplyThreadsHere();
  const auto started = std::chrono::steady_clock::now();
  ST_ASSIGN_OR_RETURN(float loss, Guarded("gradient", [&]() -> Result<float> {
                        ST_ASSIGN_OR_RETURN(at::Tensor input, PrepareInput(*impl_, raw));
                        return ForwardBackward(*impl_, input, LabelsTensor(labels));
                      }));
  if (timing != nullptr) {
    timing->forward_backward_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  ST_RETURN_IF_ERROR(CopyGradientsTo(gradient));
  return loss;
}

Status Model::ApplyGradient(std::span<const float> gradient, double learning_rate_scale,
                            TrainStepTiming* timing) {
  if (gradient.size() != ParameterCount()) {
    return InvalidArgument("gradient: expected " + std::to_string(ParameterCount()) +
                           " values, got " + std::to_string(gradient.size()));
  }
  if (!(learning_rate_scale > 0) || !std::isfinite(learning_rate_scale)) {
    return InvalidArgument("learning rate scale: must be finite and > 0");
  }
  ApplyThreadsHere();
  const auto started = std::chrono::steady_clock::now();
  ST_RETURN_IF_ERROR(Guarded("apply gradient", [&]() -> Status {
    {
      torch::NoGradGuard no_grad;
      const auto& slices = impl_->layout.tensors();
      for (size_t i = 0; i < slices.size(); ++i) {
        at::Tensor& p = impl_->parameters[i];
        const at::Tensor values = at::from_blob(
            const_cast<float*>(gradient.data()) + slices[i].offset, slices[i].shape, at::kFloat);
        p.mutable_grad() = values.to(p.device(), /*non_blocking=*/false, /*copy=*/true);
      }
    }
    // Scaling the learning rate of every group for this one step (ScaDLES' gamma); the
    // configured rate is restored at once, so checkpoints never see the scaled one.
    std::vector<double> rates;
    if (learning_rate_scale != 1.0) {
      for (auto& group : impl_->optimizer->param_groups()) {
        rates.push_back(group.options().get_lr());
        group.options().set_lr(rates.back() * learning_rate_scale);
      }
    }
    impl_->optimizer->step();
    auto& groups = impl_->optimizer->param_groups();
    for (size_t g = 0; g < rates.size(); ++g) groups[g].options().set_lr(rates[g]);
    return Status::Ok();
  }));
  ++impl_->steps;
  if (timing != nullptr) {
    timing->optimizer_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  return Status::Ok();
}

// Tensor-level API (torch_model.h).

Result<at::Tensor> ForwardTensor(Model& model, const at::Tensor& features) {
  Model::Impl& impl = ImplOf(model);
  ApplyThreadsHere();
  return Guarded("forward", [&]() -> Result<at::Tensor> {
    // NoGradGuard rather than inference mode: callers may keep using the result in normal
    // tensor code, which inference tensors would refuse.
    torch::NoGradGuard no_grad;
    ST_ASSIGN_OR_RETURN(at::Tensor input, PrepareInput(impl, features));
    return ForwardScaled(impl, input);
  });
}

Result<float> TrainStepTensor(Model& model, const at::Tensor& features, const at::Tensor& labels) {
  Model::Impl& impl = ImplOf(model);
  ApplyThreadsHere();
  return Guarded("train step", [&]() -> Result<float> {
    ST_ASSIGN_OR_RETURN(at::Tensor input, PrepareInput(impl, features));
    if (labels.scalar_type() != at::kLong || labels.dim() != 1 || labels.size(0) != input.size(0)) {
      return InvalidArgument("labels: expected int64 [" + std::to_string(input.size(0)) +
                             "], got " + std::string(c10::toString(labels.scalar_type())) + " " +
                             ShapeString(labels.sizes().vec()));
    }
    if (labels.min().item<int64_t>() < 0 ||
        labels.max().item<int64_t>() >= impl.options.num_classes) {
      return InvalidArgument("labels: values must be classes in [0, " +
                             std::to_string(impl.options.num_classes) + ")");
    }
    return TrainScaled(impl, input, labels, nullptr);
  });
}

std::vector<at::Tensor> ParameterTensors(Model& model) { return ImplOf(model).parameters; }

torch::optim::Optimizer& OptimizerOf(Model& model) { return *ImplOf(model).optimizer; }

}  // namespace streamtrain::model
