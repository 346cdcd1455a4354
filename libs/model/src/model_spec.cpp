#include "streamtrain/model/model_spec.h"

#include <charconv>
#include <iterator>

namespace streamtrain::model {
namespace {

constexpr std::string_view kExpected =
    "(expected lenet5|mlp[:H,..]|logreg|resnet18|torchscript:FILE)";

Result<std::vector<int64_t>> ParseHiddenSizes(std::string_view list) {
  std::vector<int64_t> sizes;
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || value < 1 ||
        value > ModelSpec::kMaxMlpHidden) {
      return InvalidArgument("model: mlp hidden size '" + std::string(item) +
                             "' is not an integer in 1.." +
                             std::to_string(ModelSpec::kMaxMlpHidden));
    }
    sizes.push_back(value);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return sizes;
}

}  // namespace

std::string_view ArchitectureName(Architecture architecture) {
  switch (architecture) {
    case Architecture::kLeNet5:
      return "lenet5";
    case Architecture::kMlp:
      return "mlp";
    case Architecture::kLogReg:
      return "logreg";
    case Architecture::kResNet18:
      return "resnet18";
    case Architecture::kTorchScript:
      return "torchscript";
  }
  return "unknown";
}

Result<ModelSpec> ModelSpec::Parse(std::string_view text) {
  if (text.empty()) return InvalidArgument("model: empty spec " + std::string(kExpected));
  const size_t colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  const bool has_argument = colon != std::string_view::npos;
  const std::string_view argument = has_argument ? text.substr(colon + 1) : std::string_view();

  ModelSpec spec;
  if (name == "mlp") {
    spec.architecture = Architecture::kMlp;
    if (!has_argument) {
      spec.mlp_hidden.assign(std::begin(kDefaultMlpHidden), std::end(kDefaultMlpHidden));
      return spec;
    }
    ST_ASSIGN_OR_RETURN(spec.mlp_hidden, ParseHiddenSizes(argument));
    return spec;
  }
  if (name == "torchscript") {
    if (argument.empty()) {
      return InvalidArgument("model: torchscript needs a file, as torchscript:FILE");
    }
    spec.architecture = Architecture::kTorchScript;
    spec.torchscript_path = std::string(argument);
    return spec;
  }
  if (name == "lenet5") {
    spec.architecture = Architecture::kLeNet5;
  } else if (name == "logreg") {
    spec.architecture = Architecture::kLogReg;
  } else if (name == "resnet18") {
    spec.architecture = Architecture::kResNet18;
  } else {
    return InvalidArgument("model: unknown architecture '" + std::string(name) + "' " +
                           std::string(kExpected));
  }
  if (has_argument) {
    return InvalidArgument("model: " + std::string(name) + " takes no ':' argument, got '" +
                           std::string(text) + "'");
  }
  return spec;
}

std::string ModelSpec::ToString() const {
  std::string out(ArchitectureName(architecture));
  if (architecture == Architecture::kMlp) {
    for (size_t i = 0; i < mlp_hidden.size(); ++i) {
      out += i == 0 ? ':' : ',';
      out += std::to_string(mlp_hidden[i]);
    }
  } else if (architecture == Architecture::kTorchScript) {
    out += ':';
    out += torchscript_path;
  }
  return out;
}

}  // namespace streamtrain::model
