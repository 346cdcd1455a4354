#include "streamtrain/model/model_options.h"

#include <cmath>
#include <sstream>

namespace streamtrain::model {
namespace {

std::string Number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// `field: must be <rule>, got <value>` keeps every message in one shape users can grep.
Status Bad(std::string_view field, std::string_view rule, double value) {
  return InvalidArgument(std::string(field) + ": must be " + std::string(rule) + ", got " +
                         Number(value));
}

}  // namespace

std::string_view OptimizerKindName(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd:
      return "sgd";
    case OptimizerKind::kAdam:
      return "adam";
  }
  return "unknown";
}

Result<OptimizerKind> ParseOptimizerKind(std::string_view text) {
  if (text == "sgd") return OptimizerKind::kSgd;
  if (text == "adam") return OptimizerKind::kAdam;
  return InvalidArgument("optimizer.kind: unknown optimizer '" + std::string(text) +
                         "' (expected sgd|adam)");
}

bool BuiltWithCuda() {
#if defined(STREAMTRAIN_CUDA)
  return true;
#else
  return false;
#endif
}

Status ValidateDevice(std::string_view device) {
  if (device == "cpu") return Status::Ok();
  std::string_view ordinal;
  if (device.starts_with("cuda:")) {
    ordinal = device.substr(5);
    const bool digits = !ordinal.empty() && ordinal.size() <= 3 &&
                        ordinal.find_first_not_of("0123456789") == std::string_view::npos;
    if (!digits) {
      return InvalidArgument("device: '" + std::string(device) +
                             "' is not a device (expected cpu, cuda or cuda:N)");
    }
  } else if (device != "cuda") {
    return InvalidArgument("device: '" + std::string(device) +
                           "' is not a device (expected cpu, cuda or cuda:N)");
  }
  if (!BuiltWithCuda()) {
    return InvalidArgument("device: " + std::string(device) +
                           ": this build has no CUDA support (configure with "
                           "-DSTREAMTRAIN_CUDA=ON against a CUDA LibTorch)");
  }
  return Status::Ok();
}

Status OptimizerOptions::Validate() const {
  if (!std::isfinite(learning_rate) || learning_rate <= 0) {
    return Bad("optimizer.learning_rate", "a finite number > 0", learning_rate);
  }
  if (!std::isfinite(weight_decay) || weight_decay < 0) {
    return Bad("optimizer.weight_decay", "a finite number >= 0", weight_decay);
  }
  if (!(momentum >= 0 && momentum < 1)) return Bad("optimizer.momentum", "in [0, 1)", momentum);
  if (nesterov && momentum == 0) {
    return InvalidArgument("optimizer.nesterov: needs optimizer.momentum > 0");
  }
  if (!(beta1 >= 0 && beta1 < 1)) return Bad("optimizer.beta1", "in [0, 1)", beta1);
  if (!(beta2 >= 0 && beta2 < 1)) return Bad("optimizer.beta2", "in [0, 1)", beta2);
  if (!std::isfinite(epsilon) || epsilon <= 0) {
    return Bad("optimizer.epsilon", "a finite number > 0", epsilon);
  }
  return Status::Ok();
}

std::string OptimizerOptions::Describe() const {
  std::string out(OptimizerKindName(kind));
  out += " lr=" + Number(learning_rate);
  if (kind == OptimizerKind::kSgd && momentum > 0) {
    out += " momentum=" + Number(momentum);
    if (nesterov) out += " nesterov";
  }
  if (kind == OptimizerKind::kAdam && amsgrad) out += " amsgrad";
  if (weight_decay > 0) out += " weight_decay=" + Number(weight_decay);
  return out;
}

}  // namespace streamtrain::model
