// ParsePredictRequest: the body of POST /v1/predict, checked before any model sees it.
//
// The body is {"instances": [[f, f, ...], ...]}: each instance is one example's
// feature_count raw feature values (the same units producers put in records; the model
// applies its feature scale and shift). Errors are InvalidArgument with a message of the
// form "<field>: <reason>" that the replica returns as {"error": ...} with status 400.
// Pure and thread-safe.
//
//   ST_ASSIGN_OR_RETURN(PredictRequest r, ParsePredictRequest(body, {.feature_count = 784}));
//   model.Predict(r.features, r.instance_count);
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::deploy {

struct PredictRequestLimits {
  // Values per instance the model takes. No default.
  size_t feature_count = 0;
  // Most instances in one request. Default: 1024.
  size_t max_instances = 1024;
};

struct PredictRequest {
  size_t instance_count = 0;
  std::vector<float> features;  // instance_count * feature_count values, row-major
};

// InvalidArgument: "body: not valid JSON ...", "instances: missing", "instances: empty",
// "instances: 2000 instances, at most 1024", "instances[3]: 10 values, expected 784",
// "instances[3][5]: not a finite number".
Result<PredictRequest> ParsePredictRequest(std::string_view body,
                                           const PredictRequestLimits& limits);

}  // namespace streamtrain::deploy
