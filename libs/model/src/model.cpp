#include "streamtrain/model/model.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <malloc.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/cuda.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/archive.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <sstream>

#include "model_impl.h"
#include "network.h"
#include "streamtrain/model/torch_model.h"

namespace streamtrain::model {

Model::Impl& ImplOf(Model& model) { return *model.impl_; }

namespace {

constexpr int64_t kStateFormat = 1;

// With OpenMP, LibTorch's thread count is an attribute of the calling thread: a trainer
// thread would otherwise use every core whatever main() asked for. So SetIntraOpThreads
// records the wish, and each thread applies it before its next model call.
std::atomic<int> wanted_threads{0};
thread_local int applied_threads = 0;

// Weight initialisation draws from LibTorch's process-wide default generator; the lock keeps
// two concurrent CreateModel calls from interleaving their draws.
std::mutex& InitMutex() {
  static std::mutex mutex;
  return mutex;
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::vector<at::Tensor>& parameters,
                                                       const OptimizerOptions& o) {
  if (o.kind == OptimizerKind::kSgd) {
    return std::make_unique<torch::optim::SGD>(parameters, torch::optim::SGDOptions(o.learning_rate)
                                                               .momentum(o.momentum)
                                                               .nesterov(o.nesterov)
                                                               .weight_decay(o.weight_decay));
  }
  return std::make_unique<torch::optim::Adam>(parameters, torch::optim::AdamOptions(o.learning_rate)
                                                              .betas({o.beta1, o.beta2})
                                                              .eps(o.epsilon)
                                                              .weight_decay(o.weight_decay)
                                                              .amsgrad(o.amsgrad));
}

Status ValidateOptions(const ModelOptions& options) {
  if (options.input_shape.empty()) return InvalidArgument("input_shape: empty");
  int64_t features = 1;
  for (int64_t dim : options.input_shape) {
    if (dim < 1 || dim > (int64_t{1} << 24) || features > (int64_t{1} << 28) / dim) {
      return InvalidArgument("input_shape: " + ShapeString(options.input_shape) +
                             " needs every dimension >= 1 and at most 2^28 values");
    }
    features *= dim;
  }
  if (options.num_classes < 2 || options.num_classes > (1 << 20)) {
    return InvalidArgument("num_classes: must be in 2..1048576, got " +
                           std::to_string(options.num_classes));
  }
  if (!std::isfinite(options.feature_shift)) {
    return InvalidArgument("feature_shift: must be finite, got " +
                           std::to_string(options.feature_shift));
  }
  if (!std::isfinite(options.feature_scale) || options.feature_scale == 0.0f) {
    return InvalidArgument("feature_scale: must be finite and non-zero, got " +
                           std::to_string(options.feature_scale));
  }
  ST_RETURN_IF_ERROR(ValidateDevice(options.device));
  if (options.intra_op_threads < 0) {
    return InvalidArgument("intra_op_threads: must be >= 0, got " +
                           std::to_string(options.intra_op_threads));
  }
  return options.optimizer.Validate();
}

}  // namespace

void ApplyThreadsHere() {
  const int wanted = wanted_threads.load(std::memory_order_relaxed);
  if (wanted > 0 && wanted != applied_threads) {
    at::set_num_threads(wanted);
    applied_threads = wanted;
  }
}

void SetTraining(Model::Impl& impl, bool training) {
  if (impl.training == training) return;
  impl.network->SetTraining(training);
  impl.training = training;
}

// `t` on the model's device. Host batches are staged through pinned memory so the copy to
// a GPU runs asynchronously; on the CPU this returns `t` itself.
at::Tensor ToDevice(const Model::Impl& impl, const at::Tensor& t) {
  if (t.device() == impl.device) return t;
  if (t.is_cpu() && impl.device.is_cuda()) {
    return t.pin_memory().to(impl.device, /*non_blocking=*/true);
  }
  return t.to(impl.device);
}

// Raw float features [batch, anything with feature_count values each] -> scaled
// [batch, input_shape...].
Result<at::Tensor> PrepareInput(const Model::Impl& impl, const at::Tensor& features) {
  if (features.scalar_type() != at::kFloat || features.dim() < 1 || features.size(0) < 1 ||
      features.numel() != features.size(0) * impl.feature_count) {
    return InvalidArgument("features: expected float32 [batch, " +
                           ShapeString(impl.options.input_shape) + "], got " +
                           std::string(c10::toString(features.scalar_type())) + " " +
                           ShapeString(features.sizes().vec()));
  }
  std::vector<int64_t> shape{features.size(0)};
  shape.insert(shape.end(), impl.options.input_shape.begin(), impl.options.input_shape.end());
  at::Tensor input = ToDevice(impl, features.reshape(shape));
  if (impl.options.feature_scale != 1.0f) input = input * impl.options.feature_scale;
  if (impl.options.feature_shift != 0.0f) input = input + impl.options.feature_shift;
  return input;
}

Result<at::Tensor> FromSpan(const Model::Impl& impl, std::span<const float> features,
                            size_t batch_size) {
  if (batch_size == 0) return InvalidArgument("batch_size: must be >= 1");
  if (features.size() != batch_size * static_cast<size_t>(impl.feature_count)) {
    return InvalidArgument("features: expected " + std::to_string(batch_size) + " x " +
                           std::to_string(impl.feature_count) + " values, got " +
                           std::to_string(features.size()));
  }
  // from_blob does not copy; the tensor only lives for this call and is never written.
  return at::from_blob(const_cast<float*>(features.data()),
                       {static_cast<int64_t>(batch_size), impl.feature_count}, at::kFloat);
}

Status CheckLogits(const Model::Impl& impl, const at::Tensor& logits, int64_t batch) {
  if (logits.dim() == 2 && logits.size(0) == batch && logits.size(1) == impl.options.num_classes &&
      logits.scalar_type() == at::kFloat) {
    return Status::Ok();
  }
  return Internal("forward: logits of shape " + ShapeString(logits.sizes().vec()) + ", expected " +
                  std::to_string(batch) + "x" + std::to_string(impl.options.num_classes));
}

Result<at::Tensor> ForwardScaled(Model::Impl& impl, const at::Tensor& input) {
  SetTraining(impl, false);
  at::Tensor logits = impl.network->Forward(input);
  ST_RETURN_IF_ERROR(CheckLogits(impl, logits, input.size(0)));
  return logits;
}

// Forward and backward passes: the parameters' grad() hold the batch's mean gradient.
Result<float> ForwardBackward(Model::Impl& impl, const at::Tensor& input,
                              const at::Tensor& labels) {
  const int64_t batch = input.size(0);
  SetTraining(impl, true);
  // Dropping the gradients (instead of zeroing them) lets backward write fresh ones.
  for (at::Tensor& p : impl.parameters) p.mutable_grad().reset();
  const at::Tensor logits = impl.network->Forward(input);
  ST_RETURN_IF_ERROR(CheckLogits(impl, logits, batch));
  const at::Tensor loss = at::cross_entropy_loss(logits, ToDevice(impl, labels));
  const float value = loss.item<float>();
  if (!std::isfinite(value)) {
    return FailedPrecondition("train step: loss is " + std::to_string(value) +
                              "; parameters left unchanged (diverged? lower the learning rate)");
  }
  loss.backward();
  return value;
}

Result<float> TrainScaled(Model::Impl& impl, const at::Tensor& input, const at::Tensor& labels,
                          TrainStepTiming* timing) {
  const auto started = std::chrono::steady_clock::now();
  ST_ASSIGN_OR_RETURN(float value, ForwardBackward(impl, input, labels));
  const auto stepped = std::chrono::steady_clock::now();
  impl.optimizer->step();
  ++impl.steps;
  if (timing != nullptr) {
    const auto finished = std::chrono::steady_clock::now();
    timing->forward_backward_seconds = std::chrono::duration<double>(stepped - started).count();
    timing->optimizer_seconds = std::chrono::duration<double>(finished - stepped).count();
  }
  return value;
}

at::Tensor LabelsTensor(std::span<const int32_t> labels) {
  return at::from_blob(const_cast<int32_t*>(labels.data()), {static_cast<int64_t>(labels.size())},
                       at::kInt)
      .to(at::kLong);
}

Status CheckLabels(const Model::Impl& impl, const int32_t* labels, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= impl.options.num_classes) {
      return InvalidArgument("labels[" + std::to_string(i) + "]: " + std::to_string(labels[i]) +
                             " is not a class in [0, " + std::to_string(impl.options.num_classes) +
                             ")");
    }
  }
  return Status::Ok();
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

Result<std::unique_ptr<Model>> Model::Create(const ModelOptions& options) {
  ST_ASSIGN_OR_RETURN(ModelSpec spec, ModelSpec::Parse(options.model));
  ST_RETURN_IF_ERROR(ValidateOptions(options));
  if (options.intra_op_threads > 0) SetIntraOpThreads(options.intra_op_threads);
  if (options.retain_freed_memory) RetainFreedMemory();
  ApplyThreadsHere();

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.device != "cpu") {
    // ValidateDevice passed: cuda or cuda:N in a CUDA build. The device must exist here.
    const int ordinal = options.device == "cuda" ? 0 : std::stoi(options.device.substr(5));
    const auto available = static_cast<int>(torch::cuda::device_count());
    if (!torch::cuda::is_available() || ordinal >= available) {
      return FailedPrecondition("device: " + options.device + " requested, but LibTorch sees " +
                                std::to_string(available) + " CUDA device(s)");
    }
    impl->device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(ordinal));
    // Same seed, same batches, same results on the same GPU: no autotuned cuDNN kernels.
    at::globalContext().setBenchmarkCuDNN(false);
    at::globalContext().setDeterministicCuDNN(true);
  }
  impl->spec = spec;
  impl->feature_count = 1;
  for (int64_t dim : options.input_shape) impl->feature_count *= dim;

  return Guarded("model", [&]() -> Result<std::unique_ptr<Model>> {
    if (spec.architecture == Architecture::kTorchScript) {
      ST_ASSIGN_OR_RETURN(
          impl->network,
          LoadTorchScriptNetwork(spec.torchscript_path, options.input_shape, options.num_classes));
    } else {
      std::lock_guard lock(InitMutex());
      at::manual_seed(options.seed);
      ST_ASSIGN_OR_RETURN(impl->network,
                          BuildNetwork(spec, options.input_shape, options.num_classes));
    }
    impl->network->SetTraining(true);
    // Initialised on the CPU (the same weights as a CPU model of the same seed), then moved.
    if (impl->device.is_cuda()) impl->network->To(impl->device);

    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
    for (auto& [name, tensor] : impl->network->NamedParameters()) {
      shapes.emplace_back(name, tensor.sizes().vec());
      impl->parameters.push_back(tensor);
    }
    impl->layout = ParameterLayout(shapes);
    impl->buffers = impl->network->NamedBuffers();
    impl->optimizer = MakeOptimizer(impl->parameters, options.optimizer);
    return std::unique_ptr<Model>(new Model(std::move(impl)));
  });
}

Result<std::unique_ptr<Model>> CreateModel(const ModelOptions& options) {
  return Model::Create(options);
}

const ModelOptions& Model::options() const { return impl_->options; }
const ModelSpec& Model::spec() const { return impl_->spec; }
size_t Model::feature_count() const { return static_cast<size_t>(impl_->feature_count); }
int32_t Model::num_classes() const { return impl_->options.num_classes; }
const ParameterLayout& Model::layout() const { return impl_->layout; }
uint64_t Model::ParameterCount() const { return impl_->layout.parameter_count(); }
uint64_t Model::steps() const { return impl_->steps; }

std::string Model::Describe() const {
  return impl_->spec.ToString() + " " + ShapeString(impl_->options.input_shape) + " -> " +
         std::to_string(impl_->options.num_classes) + " classes, " +
         std::to_string(ParameterCount()) + " parameters, " + impl_->options.optimizer.Describe();
}

Status Model::Forward(std::span<const float> features, size_t batch_size, std::span<float> logits) {
  const size_t want = batch_size * static_cast<size_t>(impl_->options.num_classes);
  if (logits.size() != want) {
    return InvalidArgument("logits: expected room for " + std::to_string(want) + " values, got " +
                           std::to_string(logits.size()));
  }
  ST_ASSIGN_OR_RETURN(at::Tensor raw, FromSpan(*impl_, features, batch_size));
  ApplyThreadsHere();
  return Guarded("forward", [&]() -> Status {
    // Inference mode skips autograd bookkeeping entirely; nothing computed here is ever
    // differentiated.
    c10::InferenceMode inference;
    ST_ASSIGN_OR_RETURN(at::Tensor input, PrepareInput(*impl_, raw));
    ST_ASSIGN_OR_RETURN(at::Tensor out, ForwardScaled(*impl_, input));
    at::Tensor dense = out.is_cpu() ? out.contiguous() : out.to(at::kCPU).contiguous();
    std::memcpy(logits.data(), dense.data_ptr<float>(), want * sizeof(float));
    return Status::Ok();
  });
}

Result<std::vector<float>> Model::Forward(std::span<const float> features, size_t batch_size) {
  std::vector<float> logits(batch_size * static_cast<size_t>(impl_->options.num_classes));
  ST_RETURN_IF_ERROR(Forward(features, batch_size, logits));
  return logits;
}

Result<std::vector<Prediction>> Model::Predict(std::span<const float> features, size_t batch_size) {
  ST_ASSIGN_OR_RETURN(std::vector<float> logits, Forward(features, batch_size));
  const size_t classes = static_cast<size_t>(impl_->options.num_classes);
  std::vector<Prediction> out(batch_size);
  for (size_t i = 0; i < batch_size; ++i) {
    const float* row = logits.data() + i * classes;
    const size_t best = static_cast<size_t>(std::max_element(row, row + classes) - row);
    // Subtracting the max keeps exp() from overflowing for large logits.
    double sum = 0;
    for (size_t c = 0; c < classes; ++c) sum += std::exp(double{row[c]} - row[best]);
    Prediction& p = out[i];
    p.label = static_cast<int32_t>(best);
    p.probabilities.resize(classes);
    for (size_t c = 0; c < classes; ++c) {
      p.probabilities[c] = static_cast<float>(std::exp(double{row[c]} - row[best]) / sum);
    }
    p.confidence = p.probabilities[best];
  }
  return out;
}

Result<float> Model::TrainStep(std::span<const float> features, std::span<const int32_t> labels,
                               TrainStepTiming* timing) {
  ST_ASSIGN_OR_RETURN(at::Tensor raw, FromSpan(*impl_, features, labels.size()));
  ST_RETURN_IF_ERROR(CheckLabels(*impl_, labels.data(), labels.size()));
  ApplyThreadsHere();
  return Guarded("train step", [&]() -> Result<float> {
    ST_ASSIGN_OR_RETURN(at::Tensor input, PrepareInput(*impl_, raw));
    return TrainScaled(*impl_, input, LabelsTensor(labels), timing);
  });
}

std::vector<float> Model::GetParameters() const {
  std::vector<float> out(ParameterCount());
  Status status = CopyParametersTo(out);
  assert(status.ok());
  (void)status;
  return out;
}

Status Model::CopyParametersTo(std::span<float> out) const {
  if (out.size() != ParameterCount()) {
    return InvalidArgument("parameters: expected room for " + std::to_string(ParameterCount()) +
                           " values, got " + std::to_string(out.size()));
  }
  return Guarded("copy parameters", [&]() -> Status {
    torch::NoGradGuard no_grad;
    const auto& slices = impl_->layout.tensors();
    for (size_t i = 0; i < slices.size(); ++i) {
      // copy_ walks strides, so a parameter in another memory format still comes out in
      // logical row-major order.
      at::from_blob(out.data() + slices[i].offset, slices[i].shape, at::kFloat)
          .copy_(impl_->parameters[i]);
    }
    return Status::Ok();
  });
}

Status Model::CopyGradientsTo(std::span<float> out) const {
  if (out.size() != ParameterCount()) {
    return InvalidArgument("gradients: expected room for " + std::to_string(ParameterCount()) +
                           " values, got " + std::to_string(out.size()));
  }
  return Guarded("copy gradients", [&]() -> Status {
    torch::NoGradGuard no_grad;
    const auto& slices = impl_->layout.tensors();
    for (size_t i = 0; i < slices.size(); ++i) {
      at::Tensor target = at::from_blob(out.data() + slices[i].offset, slices[i].shape, at::kFloat);
      // TrainStep drops the gradients before the next backward, so these are the last step's.
      const at::Tensor& grad = impl_->parameters[i].grad();
      if (grad.defined()) {
        target.copy_(grad);
      } else {
        target.zero_();
      }
    }
    return Status::Ok();
  });
}

Status Model::SetParameters(std::span<const float> values) {
  if (values.size() != ParameterCount()) {
    return InvalidArgument("parameters: expected " + std::to_string(ParameterCount()) +
                           " values, got " + std::to_string(values.size()));
  }
  return Guarded("set parameters", [&]() -> Status {
    torch::NoGradGuard no_grad;
    const auto& slices = impl_->layout.tensors();
    for (size_t i = 0; i < slices.size(); ++i) {
      impl_->parameters[i].copy_(at::from_blob(const_cast<float*>(values.data()) + slices[i].offset,
                                               slices[i].shape, at::kFloat));
    }
    return Status::Ok();
  });
}

Result<std::string> Model::SaveState() const {
  return Guarded("save state", [&]() -> Result<std::string> {
    torch::serialize::OutputArchive archive;
    archive.write("format", c10::IValue(kStateFormat));
    archive.write("fingerprint", c10::IValue(static_cast<int64_t>(impl_->layout.fingerprint())));
    archive.write("optimizer_kind",
                  c10::IValue(std::string(OptimizerKindName(impl_->options.optimizer.kind))));
    archive.write("steps", c10::IValue(static_cast<int64_t>(impl_->steps)));
    // Index keys: parameter names contain dots, which archive keys do not allow; the
    // fingerprint already pins names and order.
    for (size_t i = 0; i < impl_->parameters.size(); ++i) {
      // .cpu() is the tensor itself on the CPU; from a GPU it makes the archive portable.
      archive.write("p" + std::to_string(i), impl_->parameters[i].detach().cpu(),
                    /*is_buffer=*/true);
    }
    for (size_t i = 0; i < impl_->buffers.size(); ++i) {
      archive.write("b" + std::to_string(i), impl_->buffers[i].second.cpu(), /*is_buffer=*/true);
    }
    torch::serialize::OutputArchive optimizer_archive(archive.compilation_unit());
    impl_->optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
    std::ostringstream out;
    archive.save_to(out);
    return std::move(out).str();
  });
}

Status Model::LoadState(std::string_view bytes) {
  Impl& impl = *impl_;
  torch::serialize::InputArchive archive;
  std::vector<at::Tensor> parameters(impl.parameters.size());
  std::vector<at::Tensor> buffers(impl.buffers.size());
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  int64_t steps = 0;
  // Everything is read and checked before anything is changed, so a bad state leaves the
  // model as it was.
  try {
    // Every tensor onto the model's device, wherever it was saved from.
    archive.load_from(bytes.data(), bytes.size(), impl.device);
    c10::IValue format, fingerprint, kind, step_count;
    archive.read("format", format);
    if (format.toInt() != kStateFormat) {
      return FailedPrecondition("state: format " + std::to_string(format.toInt()) +
                                " is not supported (expected " + std::to_string(kStateFormat) +
                                ")");
    }
    archive.read("fingerprint", fingerprint);
    if (static_cast<uint64_t>(fingerprint.toInt()) != impl.layout.fingerprint()) {
      return FailedPrecondition(
          "state: saved from a model with another parameter layout (architecture or input "
          "shape differ from " +
          impl.spec.ToString() + " " + ShapeString(impl.options.input_shape) + ")");
    }
    archive.read("optimizer_kind", kind);
    if (kind.toStringRef() != OptimizerKindName(impl.options.optimizer.kind)) {
      return FailedPrecondition("state: saved with optimizer " + kind.toStringRef() +
                                ", this model uses " +
                                std::string(OptimizerKindName(impl.options.optimizer.kind)));
    }
    archive.read("steps", step_count);
    steps = step_count.toInt();
    for (size_t i = 0; i < parameters.size(); ++i) {
      archive.read("p" + std::to_string(i), parameters[i], /*is_buffer=*/true);
      if (!parameters[i].sizes().equals(impl.parameters[i].sizes()) ||
          parameters[i].scalar_type() != impl.parameters[i].scalar_type()) {
        return Corrupt("state: parameter " + impl.layout.tensors()[i].name + " has shape " +
                       ShapeString(parameters[i].sizes().vec()));
      }
    }
    for (size_t i = 0; i < buffers.size(); ++i) {
      archive.read("b" + std::to_string(i), buffers[i], /*is_buffer=*/true);
      if (!buffers[i].sizes().equals(impl.buffers[i].second.sizes()) ||
          buffers[i].scalar_type() != impl.buffers[i].second.scalar_type()) {
        return Corrupt("state: buffer " + impl.buffers[i].first + " has shape " +
                       ShapeString(buffers[i].sizes().vec()));
      }
    }
    // A fresh optimizer over the same parameter tensors: loading into the live one would
    // keep state for parameters the saved one had not touched yet.
    torch::serialize::InputArchive optimizer_archive;
    archive.read("optimizer", optimizer_archive);
    optimizer = MakeOptimizer(impl.parameters, impl.options.optimizer);
    optimizer->load(optimizer_archive);
  } catch (const std::exception& e) {
    return Corrupt("state: cannot read model state: " + TorchErrorMessage(e));
  }

  return Guarded("load state", [&]() -> Status {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < parameters.size(); ++i) impl.parameters[i].copy_(parameters[i]);
    for (size_t i = 0; i < buffers.size(); ++i) impl.buffers[i].second.copy_(buffers[i]);
    impl.optimizer = std::move(optimizer);
    impl.steps = static_cast<uint64_t>(steps);
    return Status::Ok();
  });
}

void SetIntraOpThreads(int n) {
  n = std::max(n, 1);  // LibTorch throws on 0
  wanted_threads.store(n, std::memory_order_relaxed);
  at::set_num_threads(n);
  applied_threads = n;
}

int IntraOpThreads() {
  const int wanted = wanted_threads.load(std::memory_order_relaxed);
  return wanted > 0 ? wanted : at::get_num_threads();
}

void RetainFreedMemory() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    // Both together: a fixed mmap threshold alone switches off glibc's adaptive one, and a
    // trim threshold alone leaves multi-MiB tensors on mmap, freed and re-faulted per step.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
  });
#endif
}

}  // namespace streamtrain::model
