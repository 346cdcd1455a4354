// The tests that need LibTorch headers: TorchScript models, the tensor-level API, and
// gradients checked against stock LibTorch ops.
#include "streamtrain/model/torch_model.h"

#include <torch/script.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../support/temp_dir.h"
#include "streamtrain/model/model.h"

namespace streamtrain::model {
namespace {

// A two-layer perceptron written in TorchScript, as a user would script one in Python.
void SaveScriptedMlp(const std::string& path, int64_t in, int64_t hidden, int64_t out) {
  torch::manual_seed(3);
  torch::jit::Module module("ScriptedMlp");
  module.register_parameter("w1", torch::randn({hidden, in}) * 0.3, false);
  module.register_parameter("b1", torch::zeros({hidden}), false);
  module.register_parameter("w2", torch::randn({out, hidden}) * 0.3, false);
  module.register_parameter("b2", torch::zeros({out}), false);
  module.define(R"JIT(
def forward(self, x):
    h = torch.relu(torch.matmul(torch.flatten(x, 1), self.w1.t()) + self.b1)
    return torch.matmul(h, self.w2.t()) + self.b2
)JIT");
  module.save(path);
}

// Points in 8 dimensions labelled by which of 3 fixed directions they point most along.
void MakeProblem(size_t n, std::vector<float>& features, std::vector<int32_t>& labels) {
  std::mt19937 rng(17);
  auto uniform = [&] { return static_cast<float>(rng() % 2001) / 1000.0f - 1.0f; };
  float directions[3][8];
  for (auto& d : directions) {
    for (float& v : d) v = uniform();
  }
  for (size_t i = 0; i < n; ++i) {
    float x[8];
    for (float& v : x) v = uniform();
    features.insert(features.end(), x, x + 8);
    int32_t best = 0;
    float best_score = -1e9f;
    for (int32_t c = 0; c < 3; ++c) {
      float score = 0;
      for (int k = 0; k < 8; ++k) score += directions[c][k] * x[k];
      if (score > best_score) best = c, best_score = score;
    }
    labels.push_back(best);
  }
}

}  // namespace

TEST_CASE("A TorchScript model loaded from a file trains and its loss falls", "[model]") {
  testing::TempDir dir("model-test");
  const std::string path = (dir / "mlp.pt").string();
  SaveScriptedMlp(path, 8, 16, 3);

  auto created = CreateModel(
      {.model = "torchscript:" + path,
       .input_shape = {8},
       .num_classes = 3,
       .feature_scale = 1.0f,
       .optimizer = {.kind = OptimizerKind::kSgd, .learning_rate = 0.1, .momentum = 0.9},
       .intra_op_threads = 1});
  INFO(created.status().ToString());
  REQUIRE(created.ok());
  Model& model = **created;
  CHECK(model.ParameterCount() == 16 * 8 + 16 + 3 * 16 + 3);
  CHECK(model.layout().tensors()[0].name == "w1");

  std::vector<float> features;
  std::vector<int32_t> labels;
  MakeProblem(64, features, labels);
  const float first = model.TrainStep(features, labels).value();
  float last = first;
  for (int step = 1; step < 50; ++step) {
    auto loss = model.TrainStep(features, labels);
    REQUIRE(loss.ok());
    last = *loss;
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.5f * first);

  // Its state round-trips like a built-in model's.
  auto state = model.SaveState();
  REQUIRE(state.ok());
  const std::vector<float> saved = model.GetParameters();
  REQUIRE(model.TrainStep(features, labels).ok());
  REQUIRE(model.LoadState(*state).ok());
  const std::vector<float> restored = model.GetParameters();
  CHECK(std::memcmp(saved.data(), restored.data(), saved.size() * sizeof(float)) == 0);
}

TEST_CASE("A missing TorchScript file is NotFound naming the path", "[model]") {
  auto model = CreateModel({.model = "torchscript:/nonexistent/net.pt"});
  REQUIRE_FALSE(model.ok());
  CHECK(model.status().code() == ErrorCode::kNotFound);
  CHECK(model.status().message() ==
        "model: torchscript file '/nonexistent/net.pt' does not exist or is not a regular file");
}

TEST_CASE("TorchScript files that cannot be trained are rejected with the reason", "[model]") {
  testing::TempDir dir("model-test");
  const std::string path = (dir / "net.pt").string();
  ModelOptions options{.model = "torchscript:" + path, .input_shape = {10}};

  SECTION("no parameters") {
    torch::jit::Module module("NoParameters");
    module.define("def forward(self, x):\n    return torch.flatten(x, 1)\n");
    module.save(path);
    auto model = CreateModel(options);
    REQUIRE_FALSE(model.ok());
    CHECK(model.status().code() == ErrorCode::kInvalidArgument);
    CHECK(model.status().message() ==
          "model: torchscript file '" + path + "' has no parameters to train");
  }
  SECTION("not a TorchScript archive") {
    std::ofstream(path) << "definitely not a zip file";
    auto model = CreateModel(options);
    REQUIRE_FALSE(model.ok());
    CHECK(model.status().code() == ErrorCode::kInvalidArgument);
    CHECK_THAT(model.status().message(),
               Catch::StartsWith("model: torchscript file '" + path +
                                 "' cannot be loaded as a TorchScript module: "));
  }
  SECTION("wrong number of outputs") {
    SaveScriptedMlp(path, 10, 4, 5);
    auto model = CreateModel(options);
    REQUIRE_FALSE(model.ok());
    CHECK(model.status().code() == ErrorCode::kInvalidArgument);
    CHECK(model.status().message() == "model: torchscript file '" + path +
                                          "': forward maps one 10 example to logits of shape "
                                          "1x5, expected 1x10");
  }
  SECTION("wrong input shape") {
    SaveScriptedMlp(path, 7, 4, 10);
    auto model = CreateModel(options);
    REQUIRE_FALSE(model.ok());
    CHECK_THAT(model.status().message(), Catch::Contains("forward fails on a 1x10 input"));
  }
}

TEST_CASE("The tensor-level API computes what the span API does", "[model]") {
  const ModelOptions options{.model = "lenet5", .seed = 8, .intra_op_threads = 1};
  auto a = CreateModel(options).value();
  auto b = CreateModel(options).value();
  torch::manual_seed(5);
  const torch::Tensor pixels = torch::randint(0, 256, {6, 1, 28, 28}, torch::kFloat);
  const torch::Tensor labels = torch::randint(0, 10, {6}, torch::kLong);
  std::vector<float> flat(pixels.data_ptr<float>(), pixels.data_ptr<float>() + pixels.numel());
  std::vector<int32_t> flat_labels;
  for (int64_t i = 0; i < 6; ++i) flat_labels.push_back(labels[i].item<int32_t>());

  auto logits = ForwardTensor(*a, pixels);
  REQUIRE(logits.ok());
  CHECK(logits->sizes() == torch::IntArrayRef({6, 10}));
  const std::vector<float> span_logits = b->Forward(flat, 6).value();
  CHECK(std::memcmp(logits->contiguous().data_ptr<float>(), span_logits.data(),
                    span_logits.size() * sizeof(float)) == 0);

  const float tensor_loss = TrainStepTensor(*a, pixels, labels).value();
  const float span_loss = b->TrainStep(flat, flat_labels).value();
  CHECK(tensor_loss == span_loss);
  const std::vector<float> pa = a->GetParameters();
  const std::vector<float> pb = b->GetParameters();
  CHECK(std::memcmp(pa.data(), pb.data(), pa.size() * sizeof(float)) == 0);

  const std::vector<torch::Tensor> tensors = ParameterTensors(*a);
  REQUIRE(tensors.size() == a->layout().tensors().size());
  CHECK(tensors[0].sizes() == torch::IntArrayRef({6, 1, 5, 5}));
  CHECK(OptimizerOf(*a).param_groups().front().params().size() == tensors.size());

  CHECK(TrainStepTensor(*a, pixels, labels.to(torch::kInt)).status().code() ==
        ErrorCode::kInvalidArgument);
  CHECK(TrainStepTensor(*a, pixels, labels + 10).status().code() == ErrorCode::kInvalidArgument);
  CHECK(ForwardTensor(*a, pixels.to(torch::kDouble)).status().code() ==
        ErrorCode::kInvalidArgument);
}

TEST_CASE("LeNet-5 gradients match a reference built from stock LibTorch ops", "[model]") {
  // The library computes Linear layers as 1x1 convolutions and pools with its own kernel
  // (both for speed); the gradients must still be those of the textbook network.
  auto model = CreateModel({.model = "lenet5",
                            .feature_scale = 1.0f,
                            .optimizer = {.kind = OptimizerKind::kSgd},
                            .intra_op_threads = 1})
                   .value();
  torch::manual_seed(9);
  const torch::Tensor x = torch::rand({16, 1, 28, 28});
  const torch::Tensor y = torch::randint(0, 10, {16}, torch::kLong);

  std::vector<torch::Tensor> p;
  for (const torch::Tensor& t : ParameterTensors(*model)) {
    p.push_back(t.detach().clone().requires_grad_());
  }
  torch::Tensor h = torch::max_pool2d(torch::relu(torch::conv2d(x, p[0], p[1], 1, 2)), 2);
  h = torch::max_pool2d(torch::relu(torch::conv2d(h, p[2], p[3])), 2).flatten(1);
  h = torch::relu(torch::linear(h, p[4], p[5]));
  h = torch::relu(torch::linear(h, p[6], p[7]));
  const torch::Tensor loss = torch::cross_entropy_loss(torch::linear(h, p[8], p[9]), y);
  loss.backward();

  const float model_loss = TrainStepTensor(*model, x, y).value();
  CHECK(model_loss == Approx(loss.item<float>()).epsilon(1e-5));
  // TrainStep leaves the step's gradients on the parameters until the next step.
  const std::vector<torch::Tensor> live = ParameterTensors(*model);
  for (size_t i = 0; i < p.size(); ++i) {
    INFO(model->layout().tensors()[i].name);
    REQUIRE(live[i].grad().defined());
    CHECK(torch::allclose(live[i].grad(), p[i].grad(), /*rtol=*/1e-4, /*atol=*/1e-6));
  }
}

}  // namespace streamtrain::model
