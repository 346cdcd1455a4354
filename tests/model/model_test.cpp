#include "streamtrain/model/model.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace streamtrain::model {
namespace {

// A deterministic batch of raw "pixels" (0..255) and labels.
struct Batch {
  std::vector<float> features;
  std::vector<int32_t> labels;
};

Batch MakeBatch(const Model& model, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Batch b;
  b.features.resize(n * model.feature_count());
  for (float& f : b.features) f = static_cast<float>(rng() % 256);
  for (size_t i = 0; i < n; ++i) b.labels.push_back(static_cast<int32_t>(rng() % 10));
  return b;
}

std::unique_ptr<Model> Make(ModelOptions options) {
  auto model = CreateModel(options);
  INFO(model.status().ToString());
  REQUIRE(model.ok());
  return std::move(model).value();
}

bool BitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("ModelSpec parses every architecture and prints it back", "[model]") {
  const auto [text, architecture, hidden] =
      GENERATE(table<std::string, Architecture, std::vector<int64_t>>({
          {"lenet5", Architecture::kLeNet5, {}},
          {"mlp", Architecture::kMlp, {256, 128}},
          {"mlp:256,128", Architecture::kMlp, {256, 128}},
          {"mlp:32", Architecture::kMlp, {32}},
          {"logreg", Architecture::kLogReg, {}},
          {"resnet18", Architecture::kResNet18, {}},
      }));
  auto spec = ModelSpec::Parse(text);
  REQUIRE(spec.ok());
  CHECK(spec->architecture == architecture);
  CHECK(spec->mlp_hidden == hidden);
  CHECK(ModelSpec::Parse(spec->ToString()).value() == *spec);

  auto script = ModelSpec::Parse("torchscript:/models/net.pt");
  REQUIRE(script.ok());
  CHECK(script->architecture == Architecture::kTorchScript);
  CHECK(script->torchscript_path == "/models/net.pt");
  CHECK(script->ToString() == "torchscript:/models/net.pt");
}

TEST_CASE("ModelSpec rejects bad specs with InvalidArgument naming the model field", "[model]") {
  auto unknown = ModelSpec::Parse("foo");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().code() == ErrorCode::kInvalidArgument);
  CHECK(unknown.status().message() ==
        "model: unknown architecture 'foo' "
        "(expected lenet5|mlp[:H,..]|logreg|resnet18|torchscript:FILE)");

  const std::string bad =
      GENERATE(as<std::string>{}, "", "LeNet5", "mlp:", "mlp:0", "mlp:12,", "mlp:a", "mlp:-3",
               "mlp:1000000", "lenet5:3", "torchscript", "torchscript:", "resnet");
  auto spec = ModelSpec::Parse(bad);
  INFO("spec '" << bad << "'");
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.status().code() == ErrorCode::kInvalidArgument);
  CHECK(StartsWith(spec.status().message(), "model: "));
}

TEST_CASE("LeNet-5 has 61706 parameters in the thesis layout", "[model]") {
  auto model = Make({.model = "lenet5"});
  CHECK(model->ParameterCount() == 61706);
  CHECK(model->GetParameters().size() == 61706);

  const std::vector<TensorSlice> expected = {
      {"conv1.weight", {6, 1, 5, 5}, 0, 150},     {"conv1.bias", {6}, 150, 6},
      {"conv2.weight", {16, 6, 5, 5}, 156, 2400}, {"conv2.bias", {16}, 2556, 16},
      {"fc1.weight", {120, 400}, 2572, 48000},    {"fc1.bias", {120}, 50572, 120},
      {"fc2.weight", {84, 120}, 50692, 10080},    {"fc2.bias", {84}, 60772, 84},
      {"fc3.weight", {10, 84}, 60856, 840},       {"fc3.bias", {10}, 61696, 10},
  };
  CHECK(model->layout().tensors() == expected);
  // Pinned: replicas of other builds compare this number before applying deltas, so a
  // change here is a wire-format change.
  CHECK(model->layout().fingerprint() == 0x016013d4dc28a4f9ULL);
  CHECK(model->Describe() == "lenet5 1x28x28 -> 10 classes, 61706 parameters, adam lr=0.001");
}

TEST_CASE("ResNet-18 has about 11.2M parameters and BatchNorm statistics are not among them",
          "[model]") {
  auto model = Make({.model = "resnet18", .input_shape = {3, 32, 32}});
  // The CIFAR-style ResNet-18 of kuangliu/pytorch-cifar has 11,173,962.
  CHECK(model->ParameterCount() >= 11'100'000);
  CHECK(model->ParameterCount() <= 11'250'000);
  for (const TensorSlice& t : model->layout().tensors()) {
    CHECK(t.name.find("running_") == std::string::npos);
  }
  // One input channel changes only the stem conv: 64*3*9 -> 64*1*9 weights.
  auto gray = Make({.model = "resnet18", .input_shape = {1, 28, 28}});
  CHECK(gray->ParameterCount() == model->ParameterCount() - 64 * 2 * 9);
}

TEST_CASE("Every architecture maps a batch to one row of logits per example", "[model]") {
  const auto [spec, shape, batch, params] =
      GENERATE(table<std::string, std::vector<int64_t>, size_t, uint64_t>({
          {"lenet5", {1, 28, 28}, 3, 61706},
          {"lenet5", {3, 32, 32}, 3, 83126},
          {"mlp:64,32", {1, 28, 28}, 3, 784 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10},
          {"logreg", {784}, 3, 7850},
          {"resnet18", {1, 28, 28}, 2, 0},
      }));
  INFO(spec);
  auto model = Make({.model = spec, .input_shape = shape, .intra_op_threads = 2});
  if (params != 0) CHECK(model->ParameterCount() == params);
  const Batch b = MakeBatch(*model, batch, 7);

  auto logits = model->Forward(b.features, batch);
  REQUIRE(logits.ok());
  REQUIRE(logits->size() == batch * 10);
  for (float v : *logits) CHECK(std::isfinite(v));

  auto predictions = model->Predict(b.features, batch);
  REQUIRE(predictions.ok());
  REQUIRE(predictions->size() == batch);
  for (size_t i = 0; i < batch; ++i) {
    const Prediction& p = (*predictions)[i];
    const float* row = logits->data() + i * 10;
    CHECK(p.label == std::max_element(row, row + 10) - row);
    float sum = 0;
    for (float q : p.probabilities) sum += q;
    CHECK(sum == Approx(1.0f).margin(1e-5));
    CHECK(p.confidence == p.probabilities[p.label]);
  }
}

TEST_CASE("Two models with the same seed on one thread train bit-identically", "[model]") {
  const auto [spec, optimizer] = GENERATE(table<std::string, OptimizerOptions>({
      {"lenet5", OptimizerOptions{}},
      {"mlp:64",
       OptimizerOptions{
           .kind = OptimizerKind::kSgd, .learning_rate = 0.05, .momentum = 0.9, .nesterov = true}},
  }));
  INFO(spec);
  const ModelOptions options{
      .model = spec, .seed = 42, .optimizer = optimizer, .intra_op_threads = 1};
  auto a = Make(options);
  auto b = Make(options);
  REQUIRE(BitIdentical(a->GetParameters(), b->GetParameters()));
  for (uint32_t step = 0; step < 5; ++step) {
    const Batch batch = MakeBatch(*a, 16, step);
    auto loss_a = a->TrainStep(batch.features, batch.labels);
    auto loss_b = b->TrainStep(batch.features, batch.labels);
    REQUIRE(loss_a.ok());
    REQUIRE(loss_b.ok());
    CHECK(std::memcmp(&*loss_a, &*loss_b, sizeof(float)) == 0);
  }
  CHECK(a->steps() == 5);
  CHECK(BitIdentical(a->GetParameters(), b->GetParameters()));

  auto other = Make({.model = spec, .seed = 43, .intra_op_threads = 1});
  CHECK_FALSE(BitIdentical(a->GetParameters(), other->GetParameters()));
}

TEST_CASE("SaveState then LoadState resumes training bit-identically", "[model]") {
  const auto [spec, shape] = GENERATE(table<std::string, std::vector<int64_t>>({
      {"lenet5", {1, 28, 28}},
      {"resnet18", {1, 12, 12}},  // small input: BatchNorm buffers must round-trip too
  }));
  INFO(spec);
  const ModelOptions options{.model = spec, .input_shape = shape, .intra_op_threads = 1};
  auto model = Make(options);
  auto train = [&](Model& m, uint32_t first, uint32_t count) {
    for (uint32_t i = first; i < first + count; ++i) {
      const Batch batch = MakeBatch(m, 8, i);
      REQUIRE(m.TrainStep(batch.features, batch.labels).ok());
    }
  };
  uint32_t warmup = GENERATE(0u, 2u);  // 0: the optimizer has no state yet when saved
  train(*model, 100, warmup);

  auto state = model->SaveState();
  REQUIRE(state.ok());
  train(*model, 0, 3);
  const std::vector<float> after = model->GetParameters();
  const std::vector<float> logits = model->Forward(MakeBatch(*model, 4, 9).features, 4).value();

  SECTION("into the same model") {
    REQUIRE(model->LoadState(*state).ok());
    CHECK(model->steps() == warmup);
    train(*model, 0, 3);
    CHECK(BitIdentical(model->GetParameters(), after));
    // Forward in eval mode uses the BatchNorm running statistics: buffers came back too.
    CHECK(BitIdentical(model->Forward(MakeBatch(*model, 4, 9).features, 4).value(), logits));
  }
  SECTION("into a fresh model with another seed") {
    ModelOptions fresh_options = options;
    fresh_options.seed = 999;
    auto fresh = Make(fresh_options);
    auto loaded = fresh->LoadState(*state);
    INFO(loaded.ToString());
    REQUIRE(loaded.ok());
    train(*fresh, 0, 3);
    CHECK(fresh->steps() == warmup + 3);
    CHECK(BitIdentical(fresh->GetParameters(), after));
    CHECK(BitIdentical(fresh->Forward(MakeBatch(*fresh, 4, 9).features, 4).value(), logits));
  }
}

TEST_CASE("LoadState refuses foreign or corrupt state and leaves the model unchanged", "[model]") {
  auto model = Make({.model = "lenet5"});
  const std::vector<float> before = model->GetParameters();

  auto mlp_state = Make({.model = "mlp:32"})->SaveState();
  REQUIRE(mlp_state.ok());
  Status s = model->LoadState(*mlp_state);
  CHECK(s.code() == ErrorCode::kFailedPrecondition);
  CHECK(StartsWith(s.message(), "state: "));

  auto sgd_state =
      Make({.model = "lenet5", .optimizer = {.kind = OptimizerKind::kSgd}})->SaveState();
  REQUIRE(sgd_state.ok());
  s = model->LoadState(*sgd_state);
  CHECK(s.code() == ErrorCode::kFailedPrecondition);
  CHECK(s.message() == "state: saved with optimizer sgd, this model uses adam");

  CHECK(model->LoadState("not a model state").code() == ErrorCode::kCorrupt);
  auto good = model->SaveState();
  REQUIRE(good.ok());
  CHECK(model->LoadState(good->substr(0, good->size() / 2)).code() == ErrorCode::kCorrupt);

  CHECK(BitIdentical(model->GetParameters(), before));
}

TEST_CASE("Bad options give InvalidArgument naming the field", "[model]") {
  using Edit = std::function<void(ModelOptions&)>;
  const auto [edit, prefix] = GENERATE(table<Edit, std::string>({
      {[](ModelOptions& o) { o.model = "foo"; }, "model: unknown architecture 'foo'"},
      {[](ModelOptions& o) { o.input_shape = {}; }, "input_shape: "},
      {[](ModelOptions& o) {
         o.input_shape = {1, 0, 28};
       },
       "input_shape: "},
      {[](ModelOptions& o) { o.input_shape = {784}; }, "input_shape: lenet5 needs C x H x W"},
      {[](ModelOptions& o) {
         o.input_shape = {1, 8, 8};
       },
       "input_shape: 1x8x8 is too small"},
      {[](ModelOptions& o) { o.num_classes = 1; }, "num_classes: "},
      {[](ModelOptions& o) { o.feature_scale = 0; }, "feature_scale: "},
      {[](ModelOptions& o) { o.intra_op_threads = -1; }, "intra_op_threads: "},
      {[](ModelOptions& o) { o.optimizer.learning_rate = -1; }, "optimizer.learning_rate: "},
      {[](ModelOptions& o) { o.optimizer.weight_decay = NAN; }, "optimizer.weight_decay: "},
      {[](ModelOptions& o) { o.optimizer.momentum = 1.5; }, "optimizer.momentum: "},
      {[](ModelOptions& o) { o.optimizer.nesterov = true; }, "optimizer.nesterov: "},
      {[](ModelOptions& o) { o.optimizer.beta2 = 1; }, "optimizer.beta2: "},
      {[](ModelOptions& o) { o.optimizer.epsilon = 0; }, "optimizer.epsilon: "},
  }));
  ModelOptions options;
  edit(options);
  auto model = CreateModel(options);
  REQUIRE_FALSE(model.ok());
  INFO(model.status().message());
  CHECK(model.status().code() == ErrorCode::kInvalidArgument);
  CHECK(StartsWith(model.status().message(), prefix));

  CHECK(ParseOptimizerKind("adam").value() == OptimizerKind::kAdam);
  CHECK(ParseOptimizerKind("sgd").value() == OptimizerKind::kSgd);
  CHECK(ParseOptimizerKind("rmsprop").status().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("Forward and TrainStep reject wrong sizes and labels without changing the model",
          "[model]") {
  auto model = Make({.model = "logreg"});
  const std::vector<float> before = model->GetParameters();
  Batch b = MakeBatch(*model, 4, 1);

  CHECK(model->Forward(std::span(b.features).first(100), 4).status().code() ==
        ErrorCode::kInvalidArgument);
  CHECK(model->Forward(b.features, 0).status().code() == ErrorCode::kInvalidArgument);
  std::vector<float> small(39);
  CHECK(model->Forward(b.features, 4, small).code() == ErrorCode::kInvalidArgument);
  CHECK(model->TrainStep(b.features, std::span(b.labels).first(3)).status().code() ==
        ErrorCode::kInvalidArgument);

  b.labels[2] = 10;
  auto out_of_range = model->TrainStep(b.features, b.labels);
  CHECK(out_of_range.status().code() == ErrorCode::kInvalidArgument);
  CHECK(out_of_range.status().message() == "labels[2]: 10 is not a class in [0, 10)");
  b.labels[2] = -1;
  CHECK(model->TrainStep(b.features, b.labels).status().code() == ErrorCode::kInvalidArgument);

  CHECK(model->steps() == 0);
  CHECK(BitIdentical(model->GetParameters(), before));
}

TEST_CASE("SetParameters makes one model compute exactly what another does", "[model]") {
  auto a = Make({.model = "lenet5", .seed = 1});
  auto b = Make({.model = "lenet5", .seed = 2});
  const Batch batch = MakeBatch(*a, 5, 3);
  REQUIRE_FALSE(
      BitIdentical(a->Forward(batch.features, 5).value(), b->Forward(batch.features, 5).value()));

  std::vector<float> flat(a->ParameterCount());
  REQUIRE(a->CopyParametersTo(flat).ok());
  REQUIRE(b->SetParameters(flat).ok());
  CHECK(BitIdentical(b->GetParameters(), flat));
  CHECK(BitIdentical(a->Forward(batch.features, 5).value(), b->Forward(batch.features, 5).value()));

  // Flat index i is element i of the layout: the first fc1 weight sits at fc1's offset.
  flat[2572] = 0.5f;
  REQUIRE(b->SetParameters(flat).ok());
  CHECK(b->GetParameters()[2572] == 0.5f);
  CHECK(b->layout().TensorIndexOf(2572) == 4);
  CHECK(b->layout().TensorIndexOf(2571) == 3);
  CHECK(b->layout().TensorIndexOf(61705) == 9);

  flat.pop_back();
  CHECK(b->SetParameters(flat).code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("feature_scale lets producers send raw pixels", "[model]") {
  auto raw = Make({.model = "mlp:16", .seed = 5});
  auto unit = Make({.model = "mlp:16", .seed = 5, .feature_scale = 1.0f});
  const Batch batch = MakeBatch(*raw, 3, 4);
  std::vector<float> scaled = batch.features;
  for (float& f : scaled) f *= 1.0f / 255.0f;
  const std::vector<float> a = raw->Forward(batch.features, 3).value();
  const std::vector<float> b = unit->Forward(scaled, 3).value();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-5));
}

TEST_CASE("Training on a learnable batch drives its loss down", "[model]") {
  auto model = Make({.model = "lenet5", .intra_op_threads = 2});
  // Noise images with a bright band whose row says the class.
  std::mt19937 rng(11);
  Batch batch;
  for (int i = 0; i < 32; ++i) {
    const int32_t label = i % 10;
    for (int row = 0; row < 28; ++row) {
      for (int col = 0; col < 28; ++col) {
        const bool band = row >= 2 * label + 4 && row < 2 * label + 6;
        batch.features.push_back(band ? 255.0f : static_cast<float>(rng() % 64));
      }
    }
    batch.labels.push_back(label);
  }
  TrainStepTiming timing;
  const float first = model->TrainStep(batch.features, batch.labels, &timing).value();
  CHECK(timing.forward_backward_seconds > 0);
  CHECK(timing.optimizer_seconds > 0);
  float last = first;
  for (int i = 0; i < 30; ++i) last = model->TrainStep(batch.features, batch.labels).value();
  INFO("loss " << first << " -> " << last);
  CHECK(first == Approx(std::log(10.0f)).margin(0.3));
  CHECK(last < 0.5f * first);
}

TEST_CASE("Forward logits give the loss that TrainStep then reports", "[model]") {
  // LeNet-5 has no BatchNorm or dropout, so evaluation and training mode compute the same
  // function; Forward takes a faster pooling path than TrainStep and must agree with it.
  auto model = Make({.model = "lenet5", .input_shape = {1, 30, 30}, .intra_op_threads = 1});
  const Batch batch = MakeBatch(*model, 16, 21);
  const std::vector<float> logits = model->Forward(batch.features, 16).value();
  double loss = 0;
  for (size_t i = 0; i < 16; ++i) {
    const float* row = logits.data() + i * 10;
    const double max = *std::max_element(row, row + 10);
    double sum = 0;
    for (int c = 0; c < 10; ++c) sum += std::exp(row[c] - max);
    loss += std::log(sum) + max - row[batch.labels[i]];
  }
  loss /= 16;
  CHECK(model->TrainStep(batch.features, batch.labels).value() == Approx(loss).epsilon(1e-5));
}

TEST_CASE("Layout fingerprint follows names and shapes only", "[model]") {
  auto a = Make({.model = "mlp:64", .seed = 1});
  auto b = Make({.model = "mlp:64", .seed = 2, .optimizer = {.kind = OptimizerKind::kSgd}});
  auto c = Make({.model = "mlp:32"});
  auto d = Make({.model = "mlp:64", .num_classes = 5});
  CHECK(a->layout().fingerprint() == b->layout().fingerprint());
  CHECK(a->layout().fingerprint() != c->layout().fingerprint());
  CHECK(a->layout().fingerprint() != d->layout().fingerprint());

  const ParameterLayout renamed({{"w", {2, 3}}, {"c", {3}}});
  const ParameterLayout original({{"w", {2, 3}}, {"b", {3}}});
  const ParameterLayout reshaped({{"w", {3, 2}}, {"b", {3}}});
  CHECK(renamed.fingerprint() != original.fingerprint());
  CHECK(reshaped.fingerprint() != original.fingerprint());
  CHECK(original.parameter_count() == 9);
  CHECK(original.tensors()[1].offset == 6);
}

// Not a test: prints ms per LeNet-5 Adam step and per forward pass. Run it with
//   streamtrain_model_tests "[.bench]"
TEST_CASE("Bench LeNet-5 Adam train step at batch 128", "[.bench]") {
  auto ms_per_call = [](int calls, auto&& body) {
    for (int i = 0; i < 5; ++i) body();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) body();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
               .count() /
           calls;
  };
  for (int threads : {1, 2}) {
    auto model = Make({.model = "lenet5", .intra_op_threads = threads});
    const Batch batch = MakeBatch(*model, 128, 1);
    const double train_ms =
        ms_per_call(50, [&] { REQUIRE(model->TrainStep(batch.features, batch.labels).ok()); });
    std::string forward;
    for (size_t b : {1, 16, 128}) {
      const double ms = ms_per_call(
          50, [&] { REQUIRE(model->Forward(std::span(batch.features).first(b * 784), b).ok()); });
      forward += " b=" + std::to_string(b) + ": " + std::to_string(ms);
    }
    WARN("lenet5 adam threads=" << threads << ": train step b=128 " << train_ms << " ms; forward ms"
                                << forward);
  }
}

}  // namespace streamtrain::model

namespace streamtrain::model {
namespace {

TEST_CASE("The device option accepts cpu and rejects cuda in a build without CUDA", "[model]") {
  CHECK(ValidateDevice("cpu").ok());
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:1234", "CPU", ""}) {
    const Status status = ValidateDevice(bad);
    CHECK(status.code() == ErrorCode::kInvalidArgument);
    CHECK(status.message().find("expected cpu, cuda or cuda:N") != std::string::npos);
  }
  for (const char* cuda : {"cuda", "cuda:0", "cuda:7"}) {
    const Status status = ValidateDevice(cuda);
    if (BuiltWithCuda()) {
      CHECK(status.ok());
    } else {
      CHECK(status.code() == ErrorCode::kInvalidArgument);
      CHECK(status.message().find("this build has no CUDA support (configure with "
                                  "-DSTREAMTRAIN_CUDA=ON against a CUDA LibTorch)") !=
            std::string::npos);
      auto model = Model::Create({.model = "logreg", .device = cuda});
      CHECK(model.status().code() == ErrorCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace streamtrain::model
