// The built-in architectures. Parameter names and their order are part of the wire format
// (ParameterLayout): renaming or reordering a layer changes the layout fingerprint, so
// replicas of an older build refuse the new deltas instead of misapplying them.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <string>

#include "network.h"

namespace streamtrain::model {
namespace {

namespace nn = torch::nn;

// A Linear layer computed as a 1x1 convolution over a [batch, in, 1, 1] view. Debian's
// LibTorch sends addmm (nn::Linear) to the reference BLAS, about 1 GFLOP/s, while this shape
// goes to oneDNN: LeNet-5's fc1 forward+backward at batch 128 drops from ~6.7 ms to ~0.8 ms
// on one core. Same parameters, same math; for batches under 16 on one thread LibTorch
// itself falls back to the BLAS path, where the cost is small anyway.
at::Tensor Dense(const nn::Linear& fc, const at::Tensor& input) {
  const at::Tensor& w = fc->weight;
  return at::conv2d(input.reshape({input.size(0), input.size(1), 1, 1}),
                    w.view({w.size(0), w.size(1), 1, 1}), fc->bias)
      .flatten(1);
}

// 2x2 max-pooling, stride 2, floor mode, with the same values and gradients as
// at::max_pool2d. LibTorch 1.13's max_pool2d CPU kernel is slow for these shapes: ~2.5 ms
// forward+backward on LeNet-5's conv1 output at batch 128 on one core, a quarter of a whole
// training step. The elementwise max of the four strided corners of each window takes ~0.2
// ms forward; backward sends each gradient to the first corner (in row-major order) that
// holds the max, as max_pool2d's indices do: ~1.3 ms in all.
class MaxPool2 : public torch::autograd::Function<MaxPool2> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input) {
    at::Tensor output = at::maximum(at::maximum(Corner(input, 0), Corner(input, 1)),
                                    at::maximum(Corner(input, 2), Corner(input, 3)));
    ctx->save_for_backward({input, output});
    return output;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& input = saved[0];
    const at::Tensor& output = saved[1];
    at::Tensor grad_input = at::zeros_like(input);
    at::Tensor taken = at::zeros_like(output, at::kBool);
    for (int corner = 0; corner < 4; ++corner) {
      at::Tensor hit = Corner(input, corner).eq(output).logical_and_(taken.logical_not());
      Corner(grad_input, corner).copy_(grads[0] * hit);
      taken.logical_or_(hit);
    }
    return {grad_input};
  }

 private:
  // Corner 0..3 = (row, col) offsets (0,0), (0,1), (1,0), (1,1) of every window.
  static at::Tensor Corner(const at::Tensor& t, int corner) {
    const int64_t h = t.size(2) / 2 * 2;
    const int64_t w = t.size(3) / 2 * 2;
    return t.slice(2, corner / 2, h, 2).slice(3, corner % 2, w, 2);
  }
};

class Net : public nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& input) = 0;
};

// conv(C->6, 5x5, pad 2) -> ReLU -> maxpool 2 -> conv(6->16, 5x5) -> ReLU -> maxpool 2 ->
// fc(16*h*w -> 120) -> ReLU -> fc(120 -> 84) -> ReLU -> fc(84 -> classes). For 1x28x28 and 10
// classes that is 61,706 parameters, the thesis' model.
class LeNet5 : public Net {
 public:
  LeNet5(int64_t channels, int64_t flat_features, int64_t num_classes)
      : conv1_(register_module("conv1", nn::Conv2d(nn::Conv2dOptions(channels, 6, 5).padding(2)))),
        conv2_(register_module("conv2", nn::Conv2d(nn::Conv2dOptions(6, 16, 5)))),
        fc1_(register_module("fc1", nn::Linear(flat_features, 120))),
        fc2_(register_module("fc2", nn::Linear(120, 84))),
        fc3_(register_module("fc3", nn::Linear(84, num_classes))) {}

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor h = MaxPool2::apply(at::relu(conv1_->forward(input)));
    h = MaxPool2::apply(at::relu(conv2_->forward(h)));
    h = at::relu(Dense(fc1_, h.flatten(1)));
    h = at::relu(Dense(fc2_, h));
    return Dense(fc3_, h);
  }

 private:
  nn::Conv2d conv1_;
  nn::Conv2d conv2_;
  nn::Linear fc1_;
  nn::Linear fc2_;
  nn::Linear fc3_;
};

// Flatten -> (Linear -> ReLU) per hidden width -> Linear to the classes. No hidden widths
// makes it multinomial logistic regression.
class Mlp : public Net {
 public:
  Mlp(int64_t in_features, const std::vector<int64_t>& hidden, int64_t num_classes, bool logreg) {
    int64_t width = in_features;
    for (size_t i = 0; i < hidden.size(); ++i) {
      layers_.push_back(
          register_module("fc" + std::to_string(i + 1), nn::Linear(width, hidden[i])));
      width = hidden[i];
    }
    const std::string out_name = logreg ? "fc" : "fc" + std::to_string(hidden.size() + 1);
    layers_.push_back(register_module(out_name, nn::Linear(width, num_classes)));
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor h = input.flatten(1);
    for (size_t i = 0; i + 1 < layers_.size(); ++i) h = at::relu(Dense(layers_[i], h));
    return Dense(layers_.back(), h);
  }

 private:
  std::vector<nn::Linear> layers_;
};

// BasicBlock of He et al. 2016: two 3x3 convs with BatchNorm, identity shortcut or a 1x1
// projection when the stride or width changes. Convs have no bias: BatchNorm's shift does
// that job.
class BasicBlockImpl : public nn::Module {
 public:
  BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride)
      : conv1_(register_module(
            "conv1",
            nn::Conv2d(
                nn::Conv2dOptions(in_planes, planes, 3).stride(stride).padding(1).bias(false)))),
        bn1_(register_module("bn1", nn::BatchNorm2d(planes))),
        conv2_(register_module(
            "conv2", nn::Conv2d(nn::Conv2dOptions(planes, planes, 3).padding(1).bias(false)))),
        bn2_(register_module("bn2", nn::BatchNorm2d(planes))) {
    if (stride != 1 || in_planes != planes) {
      shortcut_conv_ = register_module(
          "shortcut_conv",
          nn::Conv2d(nn::Conv2dOptions(in_planes, planes, 1).stride(stride).bias(false)));
      shortcut_bn_ = register_module("shortcut_bn", nn::BatchNorm2d(planes));
    }
  }

  at::Tensor forward(const at::Tensor& input) {
    at::Tensor h = at::relu(bn1_->forward(conv1_->forward(input)));
    h = bn2_->forward(conv2_->forward(h));
    h += shortcut_conv_ ? shortcut_bn_->forward(shortcut_conv_->forward(input)) : input;
    return at::relu(h);
  }

 private:
  nn::Conv2d conv1_;
  nn::BatchNorm2d bn1_;
  nn::Conv2d conv2_;
  nn::BatchNorm2d bn2_;
  nn::Conv2d shortcut_conv_{nullptr};
  nn::BatchNorm2d shortcut_bn_{nullptr};
};
TORCH_MODULE(BasicBlock);

// CIFAR-style ResNet-18 (the common kuangliu/pytorch-cifar variant): 3x3 stem without
// max-pool, stages of 2 BasicBlocks at 64/128/256/512 channels (stride 2 from stage 2 on),
// global average pool, fc. 11,173,962 parameters for 3x32x32 and 10 classes. BatchNorm
// running means and variances are buffers, not parameters: they are checkpointed by
// SaveState but are not in the flat parameter vector and never travel in deltas.
class ResNet18 : public Net {
 public:
  ResNet18(int64_t channels, int64_t num_classes)
      : conv1_(register_module(
            "conv1", nn::Conv2d(nn::Conv2dOptions(channels, 64, 3).padding(1).bias(false)))),
        bn1_(register_module("bn1", nn::BatchNorm2d(64))) {
    int64_t in_planes = 64;
    const int64_t widths[] = {64, 128, 256, 512};
    for (int stage = 0; stage < 4; ++stage) {
      nn::Sequential blocks;
      for (int block = 0; block < 2; ++block) {
        const int64_t stride = (stage > 0 && block == 0) ? 2 : 1;
        blocks->push_back(BasicBlock(in_planes, widths[stage], stride));
        in_planes = widths[stage];
      }
      stages_.push_back(register_module("layer" + std::to_string(stage + 1), blocks));
    }
    fc_ = register_module("fc", nn::Linear(512, num_classes));
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor h = at::relu(bn1_->forward(conv1_->forward(input)));
    for (auto& stage : stages_) h = stage->forward(h);
    h = at::adaptive_avg_pool2d(h, {1, 1}).flatten(1);
    return Dense(fc_, h);
  }

 private:
  nn::Conv2d conv1_;
  nn::BatchNorm2d bn1_;
  std::vector<nn::Sequential> stages_;
  nn::Linear fc_{nullptr};
};

class ModuleNetwork : public Network {
 public:
  explicit ModuleNetwork(std::shared_ptr<Net> net) : net_(std::move(net)) {}

  at::Tensor Forward(const at::Tensor& input) override { return net_->forward(input); }
  void SetTraining(bool training) override { net_->train(training); }
  NamedTensors NamedParameters() const override { return Named(net_->named_parameters()); }
  NamedTensors NamedBuffers() const override { return Named(net_->named_buffers()); }
  void To(const c10::Device& device) override { net_->to(device); }

 private:
  static NamedTensors Named(const torch::OrderedDict<std::string, at::Tensor>& dict) {
    NamedTensors out;
    out.reserve(dict.size());
    for (const auto& item : dict) out.emplace_back(item.key(), item.value());
    return out;
  }

  std::shared_ptr<Net> net_;
};

Status NeedsImage(const ModelSpec& spec, const std::vector<int64_t>& shape) {
  if (shape.size() == 3) return Status::Ok();
  return InvalidArgument("input_shape: " + std::string(ArchitectureName(spec.architecture)) +
                         " needs C x H x W, got " + ShapeString(shape));
}

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string out;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += 'x';
    out += std::to_string(shape[i]);
  }
  return out;
}

Result<std::unique_ptr<Network>> BuildNetwork(const ModelSpec& spec,
                                              const std::vector<int64_t>& input_shape,
                                              int64_t num_classes) {
  int64_t features = 1;
  for (int64_t dim : input_shape) features *= dim;
  std::shared_ptr<Net> net;
  switch (spec.architecture) {
    case Architecture::kLeNet5: {
      ST_RETURN_IF_ERROR(NeedsImage(spec, input_shape));
      // conv1 keeps the size (padding 2); each pool halves it, conv2 takes 4 off.
      const int64_t h = (input_shape[1] / 2 - 4) / 2;
      const int64_t w = (input_shape[2] / 2 - 4) / 2;
      if (h < 1 || w < 1) {
        return InvalidArgument("input_shape: " + ShapeString(input_shape) +
                               " is too small for lenet5 (needs H and W >= 12)");
      }
      net = std::make_shared<LeNet5>(input_shape[0], 16 * h * w, num_classes);
      break;
    }
    case Architecture::kMlp:
      net = std::make_shared<Mlp>(features, spec.mlp_hidden, num_classes, /*logreg=*/false);
      break;
    case Architecture::kLogReg:
      net = std::make_shared<Mlp>(features, std::vector<int64_t>{}, num_classes,
                                  /*logreg=*/true);
      break;
    case Architecture::kResNet18:
      ST_RETURN_IF_ERROR(NeedsImage(spec, input_shape));
      net = std::make_shared<ResNet18>(input_shape[0], num_classes);
      break;
    case Architecture::kTorchScript:
      return Internal("BuildNetwork: torchscript models are loaded, not built");
  }
  return std::unique_ptr<Network>(std::make_unique<ModuleNetwork>(std::move(net)));
}

}  // namespace streamtrain::model
