#include "streamtrain/deploy/served_model_spec.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

namespace streamtrain::deploy {
namespace {

constexpr int64_t kMaxDimension = int64_t{1} << 24;
constexpr int32_t kMaxClasses = 1 << 20;

Status Bad(std::string_view field, std::string_view reason) {
  return InvalidArgument("model_spec." + std::string(field) + ": " + std::string(reason));
}

Result<float> FiniteFloat(const nlohmann::json& j, std::string_view field) {
  if (!j.is_number()) return Bad(field, "not a number");
  const double value = j.get<double>();
  if (!(std::fabs(value) <= std::numeric_limits<float>::max())) {
    return Bad(field, "not a finite binary32 number");
  }
  return static_cast<float>(value);
}

std::string FloatText(float value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", static_cast<double>(value));
  return buffer;
}

}  // namespace

size_t ServedModelSpec::feature_count() const {
  size_t n = 1;
  for (int64_t d : input_shape) n *= static_cast<size_t>(d);
  return n;
}

Result<ServedModelSpec> ParseServedModelSpec(std::string_view text) {
  if (text.empty()) return InvalidArgument("model_spec: empty (the trainer sent none)");
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("model_spec: not valid JSON");
  if (!j.is_object()) return InvalidArgument("model_spec: not a JSON object");
  ServedModelSpec spec;

  auto model = j.find("model");
  if (model == j.end()) return Bad("model", "missing");
  if (!model->is_string() || model->get_ref<const std::string&>().empty()) {
    return Bad("model", "not a non-empty string");
  }
  spec.model = model->get<std::string>();

  auto shape = j.find("input_shape");
  if (shape == j.end()) return Bad("input_shape", "missing");
  if (!shape->is_array() || shape->empty() || shape->size() > 8) {
    return Bad("input_shape", "not an array of 1 to 8 dimensions");
  }
  spec.input_shape.clear();
  for (const auto& d : *shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > kMaxDimension) {
      return Bad("input_shape", "dimensions must be integers in [1, 2^24]");
    }
    spec.input_shape.push_back(d.get<int64_t>());
  }
  if (spec.feature_count() > static_cast<size_t>(kMaxDimension)) {
    return Bad("input_shape", "more than 2^24 values per example");
  }

  auto classes = j.find("num_classes");
  if (classes == j.end()) return Bad("num_classes", "missing");
  if (!classes->is_number_integer() || classes->get<int64_t>() < 2 ||
      classes->get<int64_t>() > kMaxClasses) {
    return Bad("num_classes", "not an integer in [2, 2^20]");
  }
  spec.num_classes = classes->get<int32_t>();

  if (auto scale = j.find("feature_scale"); scale != j.end()) {
    ST_ASSIGN_OR_RETURN(spec.feature_scale, FiniteFloat(*scale, "feature_scale"));
    if (spec.feature_scale == 0.0f) return Bad("feature_scale", "zero");
  }
  if (auto shift = j.find("feature_shift"); shift != j.end()) {
    ST_ASSIGN_OR_RETURN(spec.feature_shift, FiniteFloat(*shift, "feature_shift"));
  }
  return spec;
}

std::string ServedModelSpecToJson(const ServedModelSpec& spec) {
  // Built by hand so the floats keep exactly 9 significant digits.
  std::string out = "{\"model\":" + nlohmann::json(spec.model).dump() + ",\"input_shape\":[";
  for (size_t i = 0; i < spec.input_shape.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(spec.input_shape[i]);
  }
  out += "],\"num_classes\":" + std::to_string(spec.num_classes);
  out += ",\"feature_scale\":" + FloatText(spec.feature_scale);
  out += ",\"feature_shift\":" + FloatText(spec.feature_shift) + "}";
  return out;
}

}  // namespace streamtrain::deploy
