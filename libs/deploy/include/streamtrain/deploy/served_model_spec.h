// ServedModelSpec: how to build the inference model a snapshot's parameters belong to.
//
// The trainer writes it as JSON text into every snapshot chunk (wire::SnapshotInfo::
// model_spec), so a replica needs no model flags:
//   {"model":"lenet5","input_shape":[1,28,28],"num_classes":10,
//    "feature_scale":0.00392156886,"feature_shift":0}
// Floats are printed with 9 significant digits, which round-trips every binary32 value.
// A plain value type; the functions are pure and thread-safe.
//
//   ST_ASSIGN_OR_RETURN(ServedModelSpec spec, ParseServedModelSpec(info.model_spec));
//   ModelOptions options{.model = spec.model, .input_shape = spec.input_shape, ...};
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::deploy {

struct ServedModelSpec {
  // Architecture spec string, as model::ModelSpec parses it ("lenet5", "mlp:256,128").
  std::string model = "lenet5";
  // Shape of one example without the batch dimension; every dimension >= 1.
  std::vector<int64_t> input_shape{1, 28, 28};
  // Number of classes, >= 2.
  int32_t num_classes = 10;
  // Input normalisation applied inside the model: feature * scale + shift.
  float feature_scale = 1.0f / 255.0f;
  float feature_shift = 0.0f;

  // Product of input_shape: values per example.
  size_t feature_count() const;

  bool operator==(const ServedModelSpec&) const = default;
};

// Parses the JSON text; InvalidArgument naming the field ("model_spec.num_classes: ...").
// Unknown keys are ignored (a newer trainer may add some).
Result<ServedModelSpec> ParseServedModelSpec(std::string_view json);
// The JSON text, keys in the order above, floats with 9 significant digits.
std::string ServedModelSpecToJson(const ServedModelSpec& spec);

}  // namespace streamtrain::deploy
