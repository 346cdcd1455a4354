#include <torch/csrc/autograd/grad_mode.h>
#include <torch/script.h>

#include <filesystem>
#include <string>

#include "network.h"

namespace streamtrain::model {
namespace {

class ScriptNetwork : public Network {
 public:
  explicit ScriptNetwork(torch::jit::Module module) : module_(std::move(module)) {}

  at::Tensor Forward(const at::Tensor& input) override {
    return module_.forward({input}).toTensor();
  }
  void SetTraining(bool training) override { module_.train(training); }
  NamedTensors NamedParameters() const override {
    NamedTensors out;
    for (const auto& p : module_.named_parameters(/*recurse=*/true)) {
      out.emplace_back(p.name, p.value);
    }
    return out;
  }
  NamedTensors NamedBuffers() const override {
    NamedTensors out;
    for (const auto& b : module_.named_buffers(/*recurse=*/true)) out.emplace_back(b.name, b.value);
    return out;
  }

  void To(const c10::Device& device) override { module_.to(device); }

 private:
  torch::jit::Module module_;
};

}  // namespace

std::string TorchErrorMessage(const std::exception& e) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  std::string message = torch_error ? torch_error->what_without_backtrace() : e.what();
  const size_t newline = message.find('\n');
  if (newline != std::string::npos) message.resize(newline);
  return message;
}

Result<std::unique_ptr<Network>> LoadTorchScriptNetwork(const std::string& path,
                                                        const std::vector<int64_t>& input_shape,
                                                        int64_t num_classes) {
  const std::string where = "model: torchscript file '" + path + "'";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return NotFound(where + " does not exist or is not a regular file");
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(path);
  } catch (const std::exception& e) {
    return InvalidArgument(where +
                           " cannot be loaded as a TorchScript module: " + TorchErrorMessage(e));
  }

  size_t count = 0;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    if (p.value.scalar_type() != at::kFloat) {
      return InvalidArgument(where + ": parameter '" + p.name + "' is " +
                             std::string(c10::toString(p.value.scalar_type())) +
                             ", only float32 parameters are supported");
    }
    // A module saved from inference code may carry requires_grad=false; we train them all.
    p.value.requires_grad_(true);
    ++count;
  }
  if (count == 0) return InvalidArgument(where + " has no parameters to train");

  // One example through the module now, so a wrong input or output shape is a start-up
  // error naming the file instead of a failure at the first training step.
  std::vector<int64_t> shape{1};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  try {
    torch::NoGradGuard no_grad;
    module.eval();
    const c10::IValue output = module.forward({at::zeros(shape)});
    module.train();
    if (!output.isTensor()) {
      return InvalidArgument(where + ": forward returns " + output.tagKind() +
                             ", expected a tensor of logits");
    }
    const at::Tensor logits = output.toTensor();
    if (logits.dim() != 2 || logits.size(0) != 1 || logits.size(1) != num_classes) {
      return InvalidArgument(where + ": forward maps one " + ShapeString(input_shape) +
                             " example to logits of shape " + ShapeString(logits.sizes().vec()) +
                             ", expected 1x" + std::to_string(num_classes));
    }
  } catch (const std::exception& e) {
    return InvalidArgument(where + ": forward fails on a 1x" + ShapeString(input_shape) +
                           " input: " + TorchErrorMessage(e));
  }
  return std::unique_ptr<Network>(std::make_unique<ScriptNetwork>(std::move(module)));
}

}  // namespace streamtrain::model
