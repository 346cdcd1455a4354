// ModelSpec: which network to build, parsed from the user's `model` string.
//
// Grammar: lenet5 | mlp[:H,H,..] | logreg | resnet18 | torchscript:FILE. Parse() is the way
// in and reports errors that name the field ("model: ..."); ToString() gives a canonical
// spec that parses back to the same value. A plain value type: copy it, share it freely.
//
//   ST_ASSIGN_OR_RETURN(ModelSpec spec, ModelSpec::Parse("mlp:256,128"));
//   // spec.architecture == Architecture::kMlp, spec.mlp_hidden == {256, 128}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::model {

enum class Architecture {
  kLeNet5,       // LeNet-5 as in the thesis: 2 conv + 3 fully connected layers
  kMlp,          // flatten, hidden Linear+ReLU layers, Linear to the classes
  kLogReg,       // flatten, one Linear layer (multinomial logistic regression)
  kResNet18,     // CIFAR-style ResNet-18: 3x3 stem, no max-pool, 4 stages of 2 BasicBlocks
  kTorchScript,  // a scripted module loaded from a file, trained like the others
};

// Stable lower-case name: "lenet5", "mlp", "logreg", "resnet18", "torchscript".
std::string_view ArchitectureName(Architecture architecture);

struct ModelSpec {
  // Hidden sizes of a plain "mlp" spec.
  static constexpr int64_t kDefaultMlpHidden[] = {256, 128};
  // Largest accepted hidden layer width; beyond it a typo would allocate gigabytes.
  static constexpr int64_t kMaxMlpHidden = 65536;

  Architecture architecture = Architecture::kLeNet5;
  // kMlp only: widths of the hidden layers, in order. Default for plain "mlp": {256, 128}.
  std::vector<int64_t> mlp_hidden;
  // kTorchScript only: path of the file written by torch.jit.save / Module::save.
  std::string torchscript_path;

  // Parses a spec string; InvalidArgument with "model: ..." on a bad one.
  static Result<ModelSpec> Parse(std::string_view text);
  // "lenet5", "mlp:256,128", "torchscript:/path/net.pt".
  std::string ToString() const;

  bool operator==(const ModelSpec&) const = default;
};

}  // namespace streamtrain::model
